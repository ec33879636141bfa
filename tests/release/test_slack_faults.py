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
