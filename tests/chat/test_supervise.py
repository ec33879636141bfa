"""The supervisor of background work, and the watch that fails a chat test on an unretrieved exception."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.chat import metrics
from bot.chat.messenger import SlackError
from bot.chat.supervise import Supervisor, guard
from tests.asyncio_checks import UnretrievedWatch


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def fails_like_a_lost_reply() -> None:
    await asyncio.sleep(0)
    raise ConnectionRefusedError("the response URL cannot be reached")


@pytest.mark.parametrize("debug", [True, False], ids=["debug mode", "without debug mode (as the autouse watch)"])
async def test_the_watch_hears_a_task_exception_nobody_retrieved(debug: bool) -> None:
    """What the chat tests' autouse watch would fail on: a bare task whose exception nobody reads."""
    loop = asyncio.get_running_loop()
    loop.set_debug(False)
    watch = UnretrievedWatch(debug=debug)
    watch.start(loop)
    assert loop.get_debug() is debug
    try:
        task = asyncio.ensure_future(fails_like_a_lost_reply())
        await asyncio.wait([task])
        del task
    finally:
        found = watch.stop()
    assert len(found) == 1 and "never retrieved" in found[0] and "ConnectionRefusedError" in found[0], found


async def test_the_same_work_under_the_supervisor_leaves_nothing_unretrieved(
    caplog: pytest.LogCaptureFixture
) -> None:
    before = value("hello_chatops_background_errors_total", task="reply")
    supervisor = Supervisor()
    watch = UnretrievedWatch()
    watch.start(asyncio.get_running_loop())
    try:
        with caplog.at_level(logging.WARNING, logger="bot.chat.supervise"):
            supervisor.spawn(fails_like_a_lost_reply(), "reply to U1")
            await supervisor.drain(timeout=10)
    finally:
        found = watch.stop()
    assert found == []
    assert not supervisor.tasks
    assert value("hello_chatops_background_errors_total", task="reply") == before + 1
    (line,) = [r for r in caplog.records if r.name == "bot.chat.supervise"]
    assert line.levelno == logging.ERROR and "reply to U1" in line.getMessage() and "reference" in line.getMessage()
    assert "\n" not in line.getMessage()


async def test_a_slack_failure_is_one_warning_line_counted_once(caplog: pytest.LogCaptureFixture) -> None:
    """A SlackError was counted by whoever called Slack; the supervisor logs it without a traceback."""
    before = value("hello_chatops_background_errors_total", task="home")

    async def publish() -> None:
        raise SlackError("views.publish", "ratelimited")

    with caplog.at_level(logging.WARNING, logger="bot.chat.supervise"):
        assert await guard(publish(), "home U1") is None
    (line,) = caplog.records
    assert line.levelno == logging.WARNING and not line.exc_info
    assert "views.publish" in line.getMessage() and "ratelimited" in line.getMessage()
    assert value("hello_chatops_background_errors_total", task="home") == before


async def test_on_error_is_told_the_reference_and_cannot_fail_either(caplog: pytest.LogCaptureFixture) -> None:
    told: list[str] = []

    async def tell(ref: str, exc: BaseException) -> None:
        told.append(ref)
        raise SlackError("response_url", "expired_url")

    with caplog.at_level(logging.WARNING, logger="bot.chat.supervise"):
        await guard(fails_like_a_lost_reply(), "action approve", on_error=tell)
    assert len(told) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert told[0] in messages[0] and told[0] in messages[1] and "expired_url" in messages[1], messages


async def test_cancelling_supervised_work_is_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    supervisor.spawn(forever(), "progress 1.2")
    never_started = supervisor.spawn(forever(), "progress 3.4")
    never_started.cancel()
    await asyncio.wait_for(started.wait(), timeout=10)
    with caplog.at_level(logging.DEBUG, logger="bot.chat.supervise"):
        await supervisor.cancel()
    assert not supervisor.tasks and not caplog.records
