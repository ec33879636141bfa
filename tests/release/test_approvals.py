"""Who may ask, who may approve, expiry, double clicks, one change at a time, and exactly-once runs."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.harness.wait import until

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


async def test_a_request_stored_but_never_admitted_is_cancelled_by_the_sweep(chat: Chat) -> None:
    # its replica died between storing the request and taking the lock or a place: it holds nothing, waits nowhere
    await chat.send("U1", "/hello deploy v2")
    await chat.approval()
    await chat.settle()
    approvals = chat.stack.services.approvals
    (holder,) = (await approvals.store.load()).values()
    stray = dataclasses.replace(holder, id="0123456789", state="queued", ts="")
    await approvals.store.create(stray)
    assert await approvals.sweep(datetime.now(UTC)) == 0
    assert (await approvals.store.get(stray.id)).state == "queued"  # not yet: its admission may be on its way
    await approvals.sweep(datetime.now(UTC) + timedelta(seconds=31))
    assert (await approvals.store.get(stray.id)).state == "cancelled"
    assert (await approvals.store.get(holder.id)).state == "pending"  # the holder is untouched
    assert (await approvals.store.lock(holder.key)).holder == holder.id


async def test_a_holder_cancelled_while_its_message_was_being_posted_shows_it_and_offers_no_buttons(
        chat: Chat) -> None:
    # Slack holds the post back; meanwhile the lock's holder, its ts not stored after the grace, is cancelled
    chat.slack.add_fault("chat.postMessage", status=429, count=1, retry_after=2)
    await chat.send("U1", "/hello deploy v2")
    approvals = chat.stack.services.approvals
    store = approvals.store

    async def holding() -> Any:
        records = list((await store.load()).values())
        return records[0] if records and records[0].state == "pending" and not records[0].ts else None

    holder = await until(holding, "the request holding the lock, not posted yet", 20)
    real = approvals.clock
    approvals.clock = lambda: real() + timedelta(seconds=31)
    try:
        await approvals.advance(holder.key)  # any look at the lock now cancels it
    finally:
        approvals.clock = real
    assert (await store.get(holder.id)).state == "cancelled"
    posted = await chat.wait(lambda m: "requested by" in m.text, 20)
    await chat.settle()
    shown = chat.message(posted.ts)
    assert chat.button(shown, "approve") is None, shown.text
    assert "Cancelled" in shown.text
    assert (await store.get(holder.id)).ts == posted.ts


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
