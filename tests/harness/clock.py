"""Scheduled posts' harness: a simulated clock, schedulers attached to it, and reading digests back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cluster.leader import LeaderElector, default_identity
from bot.core.services import Services
from bot.observe.schedule import Scheduler
from sandbox.stack import Stack

DAY = datetime(2030, 1, 7, tzinfo=UTC)  # a Monday, midnight UTC
SLOT = re.compile(r"slot (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")


class SimClock:
    """A clock the test moves by hand; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: datetime = DAY) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


async def attach(services: Services, clock: SimClock, **options: Any) -> Scheduler:
    """A scheduler on the simulated clock for a replica, on its own Lease elector, in place of the wiring's
    (stopped, with the release engine: the simulated clock drives the Lease here, real time must not step it too).

    Commands still reach the wiring's scheduler, which reads and writes the same schedules ConfigMap.
    """
    await services.schedules.stop()
    await services.releases.stop()
    return scheduler_for(services, clock, **options)


def scheduler_for(services: Services, clock: SimClock, **options: Any) -> Scheduler:
    """A scheduler built alone for ``services``'s configuration and cluster, on the simulated clock."""
    config = services.config
    elector = LeaderElector(services.shared.cluster, name=config.lease_name,
                            identity=config.identity or default_identity(), lease_seconds=config.lease_seconds)
    return Scheduler(services.shared, services.audit, services.alerts, elector, clock=clock, sleep=clock.sleep,
                     **options)


def slot_of(message: Any) -> str | None:
    """The slot a digest message says it is for (``None`` for other messages)."""
    for block in message.blocks:
        for element in block.get("elements", []):
            found = SLOT.search(element.get("text", "") if isinstance(element, dict) else "")
            if found and "Scheduled status" in element.get("text", ""):
                return found.group(1)
    return None


def digests(stack: Stack, channel: str = "C1") -> list[Any]:
    return [m for m in stack.slack.messages(channel) if m.thread_ts in (None, m.ts) and slot_of(m)]


def ephemeral_to(user: str, needle: str) -> Callable[[Any], bool]:
    from sandbox.slack import Ephemeral

    return lambda m: isinstance(m, Ephemeral) and m.user == user and needle in m.text


def message_with(needle: str) -> Callable[[Any], bool]:
    from sandbox.slack import Message

    return lambda m: isinstance(m, Message) and needle in m.text


KUBE = {"tick": 2.0}  # controllers idle here: fewer passes over the store
ENV = {"HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2", "HELLO_LEASE_SECONDS": "450"}
