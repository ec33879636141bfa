"""Two replicas over a simulated day: every slot posted exactly once, across a leader's death."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta

import aiohttp

from sandbox.slack.client import signed_headers
from sandbox.stack import Stack
from tests.harness.clock import DAY, SimClock, attach, digests, slot_of

STEP = 150  # simulated seconds between ticks: a third of the 450 s lease (HELLO_LEASE_SECONDS)


def every_slot() -> list[str]:
    return [(DAY + timedelta(minutes=15 * i)).strftime("%Y-%m-%d %H:%M") for i in range(96)]


async def add_schedule(stack: Stack) -> str:
    scheduler = stack.services.schedules
    entry = await scheduler.add("*/15 * * * *", "C1", "15m", user="U1")
    return entry.id


async def test_a_day_with_two_replicas_and_the_leader_killed_at_noon(pair: Stack) -> None:
    """96 slots, each posted once; bot-0 leads until it dies (no release), bot-1 takes over in time."""
    clock = SimClock(DAY)
    # 96 digests into one channel over a day: Slack's per-channel limit counts the simulated day too
    pair.slack.limits.follow(lambda: clock.now.timestamp())
    a = await attach(pair.replicas[0].services, clock, chart=False)
    await a.tick(clock.now)  # bot-0 leads first
    b = await attach(pair.replicas[1].services, clock, chart=False)
    await add_schedule(pair)
    alive = [a, b]
    leaders_before_kill = set()
    kill_at = DAY + timedelta(hours=11, minutes=58, seconds=20)  # just before the 12:00 slot
    last_renew_of_dead = None
    took_over = None
    while clock.now < DAY + timedelta(days=1) - timedelta(seconds=1):
        if a in alive and clock.now >= kill_at:
            alive.remove(a)  # stops renewing; no release
            last_renew_of_dead = a.elector._last_renew
        await asyncio.gather(*(s.tick(clock.now) for s in alive))
        if a in alive:
            leaders_before_kill.update(s.identity for s in alive if s.is_leader(clock.now))
        if took_over is None and b.is_leader(clock.now):
            took_over = clock.now
        clock.advance(STEP)
    assert a.elector.leading_since == DAY
    assert leaders_before_kill == {"bot-0"}  # a live lease is never stolen
    assert took_over is not None and last_renew_of_dead is not None
    assert took_over > kill_at
    assert (took_over - last_renew_of_dead).total_seconds() <= 450 + STEP
    posted = Counter(slot_of(m) for m in digests(pair))
    assert sorted(posted) == every_slot()
    assert set(posted.values()) == {1}
    noon = next(m for m in digests(pair) if slot_of(m) == "2030-01-07 12:00")
    assert "Posted late" in str(noon.blocks)  # the 12:00 slot came due while nobody led
    before = next(m for m in digests(pair) if slot_of(m) == "2030-01-07 11:45")
    assert "Posted late" not in str(before.blocks)
    by = {h.slot.strftime("%H:%M"): s.identity for s in (a, b) for h in s.history if h.ts}
    assert by["11:45"] == "bot-0" and by["12:00"] == "bot-1"
    lease = pair.kube.get("coordination.k8s.io", "v1", "leases", "hello", "hello-chatops-leader")
    assert lease["spec"]["holderIdentity"] == "bot-1"
    assert lease["spec"]["leaseTransitions"] == 1


async def test_even_two_leaders_cannot_post_a_slot_twice(pair: Stack) -> None:
    """Misconfigured replicas (different Lease names) both lead; the recorded slot still decides."""
    clock = SimClock(DAY)
    a = await attach(pair.replicas[0].services, clock, chart=False)
    b = await attach(pair.replicas[1].services, clock, chart=False)
    b.elector.name = "another-lease"
    await add_schedule(pair)
    outcomes = []
    while clock.now < DAY + timedelta(hours=2):
        results = await asyncio.gather(a.tick(clock.now), b.tick(clock.now))
        assert a.is_leader(clock.now) and b.is_leader(clock.now)
        outcomes.append(sum(len(r) for r in results))
        clock.advance(300)
    posted = Counter(slot_of(m) for m in digests(pair))
    assert sorted(posted) == every_slot()[:8]
    assert set(posted.values()) == {1}
    assert sum(outcomes) == 8
    assert all(not h.error for s in (a, b) for h in s.history)


async def test_a_workspace_that_uninstalled_the_app_gets_no_more_scheduled_posts(stack: Stack) -> None:
    """Slack's signed ``app_uninstalled`` event reaches the leader: the slots after it are not posted."""
    clock = SimClock(DAY)
    scheduler = await attach(stack.services, clock, chart=False)
    await add_schedule(stack)
    while clock.now < DAY + timedelta(minutes=31):
        await scheduler.tick(clock.now)
        clock.advance(300)
    assert sorted(slot_of(m) for m in digests(stack)) == every_slot()[:3]

    body = json.dumps({"token": "verification-token", "team_id": "T0001", "api_app_id": "A0001",
                       "event": {"type": "app_uninstalled"}, "type": "event_callback",
                       "event_id": "Ev0UNINSTALL", "event_time": 1893974400}).encode()
    headers = signed_headers(stack.slack.signing_secret, body, content_type="application/json")
    async with aiohttp.ClientSession() as http, http.post(stack.slack.request_url, data=body,
                                                          headers=headers) as answer:
        assert answer.status == 200
    assert stack.services.messenger.stopped
    while clock.now < DAY + timedelta(hours=2):
        assert await scheduler.tick(clock.now) == []
        clock.advance(300)
    assert sorted(slot_of(m) for m in digests(stack)) == every_slot()[:3]
