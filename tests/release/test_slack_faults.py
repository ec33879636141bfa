"""Slack failing under a release: its rate limits and error pages never slow the release, and the message that
Slack did not take is sent again until it shows how the release ended."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

Chat = Any


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def _state(chat: Chat, ts: str) -> str:
    """The state of the request whose message is ``ts``, as stored."""
    records = await chat.stack.replicas[0].services.approvals.store.load()
    return next((str(r.state) for r in records.values() if r.ts == ts), "")


async def _swept(chat: Chat, ts: str) -> Any:
    """Sweep as every 30 s, until the message ``ts`` has no Approve button (ten sweeps at most)."""
    for _ in range(10):
        await chat.stack.replicas[0].services.approvals.sweep()
        if chat.button(chat.message(ts), "approve") is None:
            break
        await asyncio.sleep(0.2)
    return chat.message(ts)


def _edits(chat: Chat) -> list[int]:
    return [c["status"] for c in chat.slack.calls if c["method"] == "chat.update"]


async def test_steps_do_not_wait_for_rate_limited_progress_edits(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    chat.slack.add_fault("chat.update", status=429, count=None, retry_after=5)  # every edit, from the click on
    await chat.click("U2", request, "approve")
    # the image is set while the first progress edit still waits out its 5 s
    await _until(lambda: chat.container()["image"] == chat.image("v2"), 3.5,
                 f"the step waited for Slack: edits {_edits(chat)}")
    assert 200 not in _edits(chat)
    chat.slack.clear_faults()
    final = await chat.finished(request)
    assert "Approve" not in json.dumps(final.blocks)


async def test_a_final_edit_slack_refused_is_sent_again_by_the_sweeper(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    chat.slack.add_fault("chat.update", status=500, count=None)  # an HTML 500 for every edit, from the click on
    await chat.click("U2", request, "approve")
    deadline = asyncio.get_running_loop().time() + 30
    while await _state(chat, request.ts) != "succeeded":  # the release ends; Slack takes none of its edits
        assert asyncio.get_running_loop().time() < deadline, "the release never ended"
        await asyncio.sleep(0.1)
    await chat.settle()
    assert chat.container()["image"] == chat.image("v2")
    stale = chat.message(request.ts)
    assert "Finished ·" not in str(stale.blocks) and chat.button(stale, "approve") is not None
    chat.slack.clear_faults()
    final = await _swept(chat, request.ts)
    assert "Finished ·" in str(final.blocks)
    assert chat.button(final, "approve") is None and chat.button(final, "reject") is None


async def test_a_rejected_request_whose_edit_was_lost_loses_its_buttons_at_the_next_sweep(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    chat.slack.add_fault("chat.update", status=429, count=4, retry_after=1)  # every try of the edit
    await chat.click("U2", request, "reject")
    await _until(lambda: _edits(chat) == [429] * 4, 10, f"edits {_edits(chat)}")
    assert chat.button(chat.message(request.ts), "approve") is not None
    shown = await _swept(chat, request.ts)
    assert chat.button(shown, "approve") is None and chat.button(shown, "reject") is None
    assert "reject" in shown.text.lower()


async def _kill(chat: Chat, replica: Any) -> None:
    """As a replica whose process dies: its tasks stop where they are, what it kept in memory (the edits Slack
    did not take) is lost, and its Lease is not given back (the other replica takes over when it expires)."""
    from sanic import Sanic

    await replica.services.releases.stop()
    await replica.server.stop()
    await replica.services.close()
    Sanic._app_registry.pop(replica.server.app.name, None)
    chat.stack.replicas.remove(replica)


async def test_a_replica_dying_after_the_release_ended_and_before_slack_took_its_final_edit(release: Any) -> None:
    # #25 item 14: the message is part of the release's state; the record says whether Slack took its final edit
    async with release(replicas=2, env={"HELLO_LEASE_SECONDS": "2"}) as chat:
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        chat.slack.add_fault("chat.update", status=500, count=None)  # Slack takes no edit from the click on
        await chat.click("U2", request, "approve")
        store, rid = chat.stack.services.approvals.store, chat.button(request, "approve")["value"]
        deadline = asyncio.get_running_loop().time() + 30
        while (record := await store.get(rid)).state != "succeeded":
            assert asyncio.get_running_loop().time() < deadline, "the release never ended"
            await asyncio.sleep(0.1)
        assert record.reported and not record.shown
        driver = next(r for r in chat.stack.replicas if r.services.releases.identity == record.driver)
        survivor = next(r for r in chat.stack.replicas if r is not driver)
        # the driver gave the final edit up: only its memory has it
        await _until(lambda: "Finished ·" in str(driver.services.messenger.unsent.get((record.channel, record.ts))),
                     30, "Slack never refused the final edit for good")
        await _kill(chat, driver)
        chat.slack.clear_faults()
        assert chat.button(chat.message(request.ts), "approve") is not None  # it still asks for approval
        # the other replica's memory has no final state of it (at most an older edit it did not get through)
        assert "Finished ·" not in str(survivor.services.messenger.unsent)

        final = await chat.finished(request, timeout=30)  # the new leader sends the final edit again
        assert chat.button(final, "approve") is None and "runs `v2`" in final.text
        deadline = asyncio.get_running_loop().time() + 10
        while not (await survivor.services.approvals.store.get(record.id)).shown:
            assert asyncio.get_running_loop().time() < deadline, "the record never says its message shows the end"
            await asyncio.sleep(0.1)
        assert await survivor.services.releases.repair() == 0  # shown: never sent again
        assert (record.channel, record.ts) not in survivor.services.messenger.unsent  # no older state sent after it
