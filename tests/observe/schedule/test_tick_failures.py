"""A scheduled status tick that fails (the API server answers 503): one WARNING line when the ticks start
failing, one INFO line when they work again, and no traceback on every tick in between."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sandbox.stack import Stack
from tests.harness.clock import SimClock, attach


class CountingClock(SimClock):
    """The simulated clock, counting the loop's sleeps (one per tick)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0
        self.slept = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        async with self.slept:
            self.sleeps += 1
            self.slept.notify_all()
        await super().sleep(seconds)


async def ticks(clock: CountingClock, more: int, timeout: float = 30.0) -> None:
    target = clock.sleeps + more
    async with asyncio.timeout(timeout), clock.slept:
        await clock.slept.wait_for(lambda: clock.sleeps >= target)


async def test_a_failing_tick_warns_once_and_says_when_it_works_again(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.observe.schedule")
    clock = CountingClock()
    scheduler = await attach(stack.services, clock)
    await scheduler.start()
    await ticks(clock, 1)
    stack.kube.add_fault(verb="get", resource="configmaps", status=503, count=None)
    await ticks(clock, 4)
    lines = [r for r in caplog.records if r.name == "bot.observe.schedule"]
    assert [r.levelno for r in lines] == [logging.WARNING], [r.getMessage() for r in lines]
    assert "scheduled status ticks are failing" in lines[0].getMessage()
    assert not lines[0].exc_info, "no traceback for an outage"

    stack.kube.clear_faults()
    await ticks(clock, 3)
    await scheduler.stop()
    lines = [r for r in caplog.records if r.name == "bot.observe.schedule"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO], [r.getMessage() for r in lines]
    assert "work again" in lines[1].getMessage()
