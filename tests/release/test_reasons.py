"""Every change carries a reason, typed last in quotes: shown in the request, the release, the history, the audit."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import pytest

from bot.core.config import Config
from bot.core.errors import UsageError
from bot.release.actions import Change
from bot.release.plan import ChangeParams
from bot.release.record import Record
from commands import canary, cert, deploy, rollback

Chat = Any
CONFIG = Config(slack_bot_token="xoxb-test", slack_signing_secret="secret")
STRICT = replace(CONFIG, require_reason=True)


# ------------------------------------------------------------------ parsing (pure)


@pytest.mark.parametrize("module, args, want", [
    (deploy, ["v2", "fix the login bug"], ("fix the login bug", "v2")),
    (deploy, ["v2"], ("", "v2")),
    (deploy, ["v2", "v3 broke   the\tlogin"], ("v3 broke the login", "v2")),  # quoted: one argument
    (canary, ["v2", "10%", "try the cache"], ("try the cache", "v2")),
    (canary, ["v2", "try the cache"], ("try the cache", "v2")),
    (canary, ["25%", "more traffic"], ("more traffic", "")),
    (canary, ["promote", "looks good"], ("looks good", "")),
    (canary, ["abort", "p99 doubled"], ("p99 doubled", "")),
    (rollback, ["500s on login"], ("500s on login", None)),
    (cert, ["renew", "key rotation"], ("key rotation", None)),
    (deploy, ["v2", "réparer la connexion ✓"], ("réparer la connexion ✓", "v2")),  # free text, any script
])
def test_the_reason_is_the_quoted_argument_after_the_commands_own(module: Any, args: list[str], want: tuple) -> None:
    request = module.parse(args, CONFIG)
    reason, version = want
    assert request.reason == reason
    if version is not None:
        assert request.version == version


def test_the_canary_forms_keep_their_meaning_with_a_reason() -> None:
    manual = canary.parse(["v2", "10%", "why"], CONFIG)
    assert (manual.kind, manual.percent, manual.analysed) == ("set", 10, False)
    analysed = canary.parse(["v2", "why"], CONFIG)
    assert (analysed.kind, analysed.analysed) == ("set", True)
    assert canary.parse(["promote", "why"], CONFIG).kind == "promote"
    assert cert.parse(["renew", "why"], CONFIG).renew


@pytest.mark.parametrize("module, args, says", [
    (deploy, ["v2", "fix", "the", "bug"], "put the reason in quotes"),  # unquoted words: ambiguous
    (deploy, ["v2", "v3"], "one argument too many"),  # a second version is not a reason
    (canary, ["v2", "10"], "not a percentage"),  # a forgotten % is not a reason
    (canary, ["v2", "10%", "25%"], "one argument too many"),
    (canary, ["promote", "abort"], "one argument too many"),
    (canary, ["10%", "5"], "not a percentage"),
    (rollback, ["v1"], "one argument too many"),
    (cert, ["renew", "10%"], "one argument too many"),
    (deploy, ["v2", "x" * 301], "keep it to 300"),
])
def test_what_could_be_a_mistyped_argument_is_never_taken_for_a_reason(module: Any, args: list[str],
                                                                       says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        module.parse(args, CONFIG)
    assert caught.value.usage == module.USAGE
    assert '"<reason>"' in module.USAGE and '"<reason>"' in module.__doc__ + module.USAGE


@pytest.mark.parametrize("module, args", [
    (deploy, ["v2"]), (deploy, ["v2", "  "]), (canary, ["v2"]), (canary, ["v2", "10%"]), (canary, ["10%"]),
    (canary, ["promote"]), (canary, ["abort"]), (rollback, []), (cert, ["renew"]),
])
def test_hello_require_reason_refuses_a_change_without_one_and_names_the_form(module: Any, args: list[str]) -> None:
    with pytest.raises(UsageError, match="HELLO_REQUIRE_REASON") as caught:
        module.parse(args, STRICT)
    assert module.EXAMPLE in str(caught.value)
    assert module.parse([*args, "because"], STRICT).reason == "because"


def test_reading_the_certificate_needs_no_reason() -> None:
    assert cert.parse([], STRICT).reason == ""


def test_records_stored_before_reasons_still_load() -> None:
    change = Change(command="deploy", action="deploy", verb="Deploy", summary="helloworld: v1 → v2",
                    params=ChangeParams(version="v2"), reason="why")
    stored = json.loads(Record(id="abc123", change=change, requester="U1", channel="C1",
                               created="2026-12-01T00:00:00+00:00", expires="2026-12-01T00:30:00+00:00").to_json())
    assert Record.from_json(json.dumps(stored)).reason == "why"
    del stored["change"]["reason"]
    assert Record.from_json(json.dumps(stored)).reason == ""


# ------------------------------------------------------------------ end to end


async def test_a_deploys_reason_is_in_the_request_the_release_the_history_and_the_audit_trail(chat: Chat,
                                                                                             caplog) -> None:
    caplog.set_level(logging.INFO, logger="bot.release.audit")
    await chat.send("U1", '/hello deploy v2 "fix the login bug"')
    request = await chat.approval()
    assert "fix the login bug" in str(request.blocks) and "fix the login bug" in request.text
    await chat.click("U2", request, "approve")
    final = await chat.finished(request)
    await chat.settle()
    assert chat.container()["image"] == chat.image("v2")
    assert "Reason: “fix the login bug”" in json.dumps(final.blocks, ensure_ascii=False)
    assert "fix the login bug" in final.text
    assert all("fix the login bug" in json.dumps(edit.blocks, ensure_ascii=False) for edit in final.edits)

    for reason in ("HelloDeployRequested", "HelloDeployApproved", "HelloDeploySucceeded"):
        event = chat.audit_events(reason)[0]
        assert event["message"].endswith('because "fix the login bug"'), event["message"]
        assert json.loads(event["metadata"]["annotations"]["hello-chatops/audit"])["change_reason"] == \
            "fix the login bug"
    lines = [r.audit for r in caplog.records if r.name == "bot.release.audit"]
    assert lines and all(line["change_reason"] == "fix the login bug" for line in lines)

    await chat.send("U3", "/hello history")
    history = await chat.message_saying("Release history")
    assert "reason: “fix the login bug”" in history.text
    assert "fix the login bug" in json.dumps(history.blocks, ensure_ascii=False)
    entries = await chat.stack.services.audit.entries()
    assert {e.change_reason for e in entries} == {"fix the login bug"}

    rid = final.blocks[-1]["elements"][0]["text"].split("`")[1]
    await chat.send("U3", f"/hello release {rid}")
    step_by_step = await chat.message_saying("— succeeded")
    assert "Reason: “fix the login bug”" in json.dumps(step_by_step.blocks, ensure_ascii=False)


async def test_a_reason_is_escaped_and_cut_where_it_is_shown(chat: Chat) -> None:
    await chat.send("U1", '/hello canary v2 10% "<!channel> see <https://evil.example|the doc> & more"')
    request = await chat.approval()
    shown = json.dumps(request.blocks, ensure_ascii=False) + request.text
    assert "<!channel>" not in shown and "<https://" not in shown
    assert "&lt;!channel&gt; see &lt;https://evil.example|the doc&gt; &amp; more" in shown
    await chat.click("U2", request, "approve")
    final = await chat.finished(request)
    await chat.settle()
    assert "<!channel>" not in json.dumps(final.blocks) + final.text
    assert "&lt;!channel&gt;" in final.text


async def test_every_kind_of_change_carries_its_reason(chat: Chat) -> None:
    seen: list[str] = []
    for text in ('/hello canary v2 10% "try the new cache"', '/hello canary 20% "more traffic"',
                 '/hello canary promote "canary looks good"', '/hello rollback "login slower"',
                 '/hello cert renew "key rotation"', '/hello canary v3 5% "second try"'):
        if "cert" in text:
            await chat.issued()
        seen.append((await chat.approve("U1", text, exclude=seen)).ts)
    await chat.send("U1", '/hello canary abort "done looking"')
    await chat.finished(await chat.message_saying("done looking"))
    await chat.settle()
    want = {"HelloCanarySucceeded": {"try the new cache", "more traffic", "second try"},
            "HelloPromoteSucceeded": {"canary looks good"}, "HelloRollbackSucceeded": {"login slower"},
            "HelloCertRenewSucceeded": {"key rotation"}, "HelloAbortSucceeded": {"done looking"}}
    for reason, reasons in want.items():
        got = {json.loads(e["metadata"]["annotations"]["hello-chatops/audit"])["change_reason"]
               for e in chat.audit_events(reason)}
        assert got == reasons, reason


async def test_hello_require_reason_refuses_without_one_and_the_buttons_still_work(release: Any) -> None:
    async with release(env={"HELLO_REQUIRE_REASON": "true"}) as chat:
        first = chat.container()["image"]
        await chat.send("U1", "/hello deploy v2")
        refused = await chat.private("U1", "HELLO_REQUIRE_REASON")
        assert '/hello deploy v2 "fix the login bug"' in refused.text and "Usage:" in refused.text
        assert chat.slack.messages("C1") == [] and chat.audit_events() == []

        deployed = await chat.approve("U1", '/hello deploy v2 "fix the login bug"')
        assert chat.container()["image"] == chat.image("v2")
        await chat.click("U1", deployed, "release_rollback")  # nobody types a reason under a button
        request = await chat.approval(exclude=[deployed.ts])
        said = f"from the Roll back button under request {deployed.blocks[-1]['elements'][0]['text'].split('`')[1]}"
        assert said in request.text
        await chat.click("U2", request, "approve")
        final = await chat.finished(request)
        await chat.settle()
        assert chat.container()["image"] == first
        assert said in final.text
        event = chat.audit_events("HelloRollbackSucceeded")[0]
        assert json.loads(event["metadata"]["annotations"]["hello-chatops/audit"])["change_reason"] == said
