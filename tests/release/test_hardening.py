"""What an adversarial pass found (issue 12, findings 3-5), told as chat.

- Look-alike digits: a version, percentage or count with a non-ASCII digit is a usage error.
- Text the bot did not write (a Kubernetes error, a user's argument) never becomes mrkdwn markup.
- An Approve click counts only from the request's own message, in a channel where changes may be made.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from sandbox.slack.client import signed_headers
from sandbox.slack.state import Ephemeral, Message

Chat = Any

# What an admission webhook might answer: a channel-wide ping and a disguised link.
EVIL = "denied by policy <!channel> see <https://evil.example|the runbook> & retry"


def _everything(message: Any) -> str:
    """A message's fallback text and blocks, as one string to search."""
    return message.text + "\n" + json.dumps(message.blocks or [], ensure_ascii=False)


# ---------------------------------------------------------------- finding 3: look-alike digits


@pytest.mark.parametrize("text, says", [
    ("/hello deploy v２", "ASCII only"),  # full-width 2: reads as v2
    ("/hello canary v2 １０%", "not a percentage"),  # full-width 10
    ("/hello canary ５%", "not a percentage"),
    ("/hello history ²", "not a count"),  # isdigit() is true, int() fails
    ("/hello history ٣", "not a count"),  # Arabic-Indic 3: int() gives 3
    ("/hello schedule add \"０ 9 * * *\"", "ASCII"),
])
async def test_look_alike_digits_are_usage_errors_and_change_nothing(chat: Chat, text: str, says: str) -> None:
    before = chat.deployment()["metadata"]["resourceVersion"]
    await chat.send("U1", text)
    reply = await chat.private("U1", says)
    assert "Usage:" in reply.text
    await chat.settle()
    assert chat.slack.messages("C1") == []
    assert chat.deployment()["metadata"]["resourceVersion"] == before
    assert chat.audit_events() == []


async def test_a_configured_version_pattern_lets_no_look_alike_through(release: Any) -> None:
    # \w and \d would match any script's letters and digits; the bot matches patterns as ASCII.
    async with release(env={"HELLO_VERSION_PATTERN": r"^v\w+$"}) as chat:
        await chat.send("U1", "/hello deploy v٢")  # Arabic-Indic 2
        await chat.private("U1", "not a version")
        await chat.send("U1", "/hello deploy vＢ")  # full-width B
        await chat.private("U1", "not a version")
        await chat.settle()
        assert chat.slack.messages("C1") == []
        await chat.approve("U1", "/hello deploy v2b")  # ASCII still passes
        assert chat.container()["image"] == chat.image("v2b")


# ---------------------------------------------------------------- finding 4: foreign text is escaped


async def test_a_kubernetes_error_is_posted_escaped(chat: Chat) -> None:
    chat.kube.add_fault(verb="patch", resource="deployments", status=422, count=None, message=EVIL)
    final = await chat.approve("U1", "/hello deploy v2")
    chat.kube.clear_faults()
    posted = _everything(final)
    assert "denied by policy" in posted
    assert "<!channel>" not in posted and "<https://evil.example" not in posted
    assert "&lt;!channel&gt;" in final.text and "&lt;!channel&gt;" in json.dumps(final.blocks)
    assert "&amp;lt;" not in posted  # escaped once, not twice
    assert chat.container()["image"] != chat.image("v2")


async def test_a_long_kubernetes_error_is_cut(chat: Chat) -> None:
    chat.kube.add_fault(verb="patch", resource="deployments", status=422, count=None, message="no " * 2000)
    final = await chat.approve("U1", "/hello deploy v2")
    chat.kube.clear_faults()
    assert "…" in final.text
    assert len(final.text) < 800


@pytest.mark.parametrize("text", ["/hello status <!here>", "/hello chart <!channel>",
                                  "/hello help <https://evil.example|docs>",
                                  "/hello schedule add \"<!here> * * * *\""])
async def test_arguments_echoed_back_are_escaped(chat: Chat, text: str) -> None:
    await chat.send("U1", text)
    reply = await chat.wait(lambda m: isinstance(m, Ephemeral) and m.user == "U1", timeout=10)
    shown = _everything(reply)
    assert "&lt;" in shown
    assert "<!here>" not in shown and "<!channel>" not in shown and "<https://evil" not in shown


# ---------------------------------------------------------------- finding 5: where a click comes from


async def _forged_click(chat: Chat, user: str, request: Any, channel: str, message: Any) -> None:
    """A signed Approve click carrying ``request``'s id, sent from ``message`` in ``channel``.

    Whoever holds the signing secret (or a Slack app misconfigured to reach the bot) can send one."""
    sender = chat.slack.sender
    payload, _ = sender.build_block_actions(user=user, channel="C1", message_ts=request.ts, action_id="approve")
    payload["container"].update(channel_id=channel, message_ts=message.ts)
    payload["channel"] = {"id": channel, "name": sender.ws.channels[channel].name}
    payload["message"] = message.to_api()
    body = urlencode({"payload": json.dumps(payload)}).encode()
    async with aiohttp.ClientSession() as session, session.post(
            chat.stack.replicas[0].url, data=body, headers=signed_headers(chat.slack.signing_secret, body)) as resp:
        assert resp.status == 200


def _in(channel: str) -> Any:
    return lambda m: isinstance(m, Message) and m.channel == channel and not m.deleted and "status" in m.text


async def test_an_approve_click_from_another_channel_changes_nothing(release: Any) -> None:
    async with release(env={"HELLO_OPS_CHANNELS": "C1"}) as chat:
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        await chat.stack.command("U3", "/hello status", channel="C2")  # a status message in #general
        elsewhere = await chat.wait(_in("C2"))
        await _forged_click(chat, "U2", request, "C2", elsewhere)
        await chat.wait(lambda m: isinstance(m, Ephemeral) and m.user == "U2" and "HELLO_OPS_CHANNELS" in m.text)
        await chat.settle()
        assert chat.container()["image"] != chat.image("v2")
        assert chat.button(chat.message(request.ts), "approve") is not None  # still pending
        assert not chat.audit_events("HelloDeployApproved")
        await chat.click("U2", request, "approve")  # the request's own message still works
        await chat.finished(request)
        await chat.settle()
        assert chat.container()["image"] == chat.image("v2")


async def test_an_approve_click_from_another_message_in_the_channel_changes_nothing(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.send("U3", "/hello status")
    other = await chat.wait(_in("C1"))
    await _forged_click(chat, "U2", request, "C1", other)
    await chat.private("U2", "did not come from the message")
    await chat.settle()
    assert chat.container()["image"] != chat.image("v2")
    assert chat.button(chat.message(request.ts), "approve") is not None
    assert not chat.audit_events("HelloDeployApproved")


def _forget_message_ts(chat: Chat) -> None:
    """As right after posting, before the request's message ts is stored."""
    for cm in chat.kube.list("", "v1", "configmaps", "hello"):
        if cm["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "request":
            continue
        record = json.loads(cm["data"]["record.json"])
        record["ts"] = ""
        chat.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": cm["metadata"]["name"], "namespace": "hello",
                                      "labels": cm["metadata"]["labels"]},
                         "data": {"record.json": json.dumps(record)}})


async def test_before_the_message_ts_is_stored_only_a_click_in_the_requests_channel_counts(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.stack.command("U3", "/hello status", channel="C2")
    elsewhere = await chat.wait(_in("C2"))
    _forget_message_ts(chat)
    await _forged_click(chat, "U2", request, "C2", elsewhere)
    await chat.private("U2", "did not come from the message")
    await chat.settle()
    assert chat.container()["image"] != chat.image("v2")
    await chat.click("U2", request, "approve")
    await chat.finished(request)
    await chat.settle()
    assert chat.container()["image"] == chat.image("v2")
