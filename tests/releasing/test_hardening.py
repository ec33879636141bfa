"""What an adversarial pass found (issue 12, findings 3 and 4), told as chat.

- Look-alike digits: a version, percentage or count with a non-ASCII digit is a usage error.
- Text the bot did not write (a Kubernetes error, a user's argument) never becomes mrkdwn markup.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.slack.state import Ephemeral

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
