"""Who may ask, who may approve, expiry, double clicks, one change at a time, and exactly-once runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

Chat = Any


@pytest.mark.parametrize("text, says", [
    ("/hello deploy latest", "not a version"),
    ("/hello deploy v2 fix the bug", "put the reason in quotes"),
    ("/hello canary v2 101%", "101% is not a traffic share"),
    ("/hello canary v2 10", "not a percentage"),
    ("/hello canary promote abort", "one argument too many"),
    ("/hello rollback v1", "one argument too many"),
    ("/hello cert renew 10%", "one argument too many"),
    ("/hello cert now", "unknown cert argument"),
])
async def test_refused_inputs_change_nothing(chat: Chat, text: str, says: str) -> None:
    before = chat.deployment()["metadata"]["resourceVersion"]
    await chat.send("U1", text)
    reply = await chat.private("U1", says)
    assert "Usage:" in reply.text
    assert chat.slack.messages("C1") == []
    assert chat.deployment()["metadata"]["resourceVersion"] == before
    assert chat.audit_events() == []


async def test_a_non_deployer_cannot_ask(chat: Chat) -> None:
    await chat.send("U3", "/hello deploy v2")
    await chat.private("U3", "not a deployer")
    await chat.settle()
    assert chat.slack.messages("C1") == []


async def test_requester_and_non_approvers_cannot_approve(release: Any) -> None:
    async with release(env={"HELLO_APPROVERS": "U1,S1"}) as chat:  # U1 may approve, but not their own
        await _refused_approvals(chat)


async def _refused_approvals(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.click("U1", request, "approve")
    await chat.private("U1", "cannot approve your own request")
    await chat.click("U3", request, "approve")
    await chat.private("U3", "Only approvers")
    await chat.click("U3", request, "reject")
    await chat.private("U3", "Only approvers")
    await chat.settle()
    assert chat.container()["image"] != chat.image("v2")
    assert chat.button(chat.message(request.ts), "approve") is not None  # still pending
    assert not chat.audit_events("HelloDeployApproved")


async def test_self_approval_when_allowed(release: Any) -> None:
    async with release(env={"HELLO_APPROVERS": "U1", "HELLO_SELF_APPROVAL": "true"}) as chat:
        await chat.approve("U1", "/hello deploy v2", approver="U1")
        assert chat.container()["image"] == chat.image("v2")


async def test_reject_changes_nothing_and_frees_the_lock(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.click("U2", request, "reject")
    await chat.message_saying("Rejected by <@U2>")
    await chat.settle()
    assert chat.container()["image"] != chat.image("v2")
    assert chat.audit_events("HelloDeployRejected")
    await chat.approve("U1", "/hello deploy v2", exclude=[request.ts])
    assert chat.container()["image"] == chat.image("v2")


async def test_a_click_after_expiry_says_expired_and_changes_nothing(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    chat.stack.services.approvals.clock = lambda: datetime.now(UTC) + timedelta(
        seconds=chat.config.approval_ttl_seconds + 1)
    await chat.click("U2", request, "approve")
    edited = await chat.message_saying("Expired")
    assert edited.ts == request.ts and chat.button(edited, "approve") is None
    await chat.private("U2", "expired")
    await chat.settle()
    assert chat.container()["image"] != chat.image("v2")
    assert chat.audit_events("HelloDeployExpired") and not chat.audit_events("HelloDeployApproved")


async def test_expired_requests_lose_their_buttons_without_a_click(release: Any) -> None:
    async with release(replicas=2) as chat:
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        await chat.settle()  # the request is stored with its message ts
        later = datetime.now(UTC) + timedelta(seconds=chat.config.approval_ttl_seconds + 1)
        first, second = (r.services.approvals for r in chat.stack.replicas)
        assert await first.sweep(datetime.now(UTC)) == 0  # not yet
        counts = await asyncio.gather(first.sweep(later), second.sweep(later))
        assert sorted(counts) == [0, 1]  # each expiry is done once, whichever replica sweeps
        edited = await chat.message_saying("Expired")
        assert edited.ts == request.ts and chat.button(edited, "approve") is None
        assert len(chat.audit_events("HelloDeployExpired")) == 1
        await chat.settle()
        assert chat.container()["image"] != chat.image("v2")


async def test_one_change_at_a_time(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.send("U1", "/hello canary v3 10%")
    busy = await chat.private("U1", "One change at a time")
    assert "Deploy" in busy.text and "waiting for approval" in busy.text
    await chat.click("U2", request, "approve")
    await chat.finished(request)
    await chat.settle()
    assert chat.mapping()["spec"]["weight"] == 0


async def test_a_double_click_runs_once(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.click("U2", request, "approve")
    await chat.click("U2", request, "approve")
    await chat.private("U2", "already approved by <@U2>")
    await chat.finished(request)
    await chat.settle()
    assert len(chat.audit_events("HelloDeployApproved")) == 1


async def test_two_replicas_and_twenty_clicks_run_once(release: Any) -> None:
    async with release(replicas=2) as chat:
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        generation = chat.deployment()["metadata"]["generation"]
        await asyncio.gather(*(chat.click("U2", request, "approve", replica=i % 2) for i in range(20)))
        final = await chat.finished(request)
        await chat.settle()
        assert "approved by <@U2>" in str(final.blocks)
        assert len(chat.audit_events("HelloDeployApproved")) == 1
        assert len(chat.audit_events("HelloDeploySucceeded")) == 1
        assert chat.deployment()["metadata"]["generation"] == generation + 1
        refusals = [e for e in chat.slack.ephemerals("C1", "U2") if "already" in e.text]
        assert len(refusals) == 19
