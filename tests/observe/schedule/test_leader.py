"""Lease-based leader election against the Kubernetes emulator: two candidates, one Lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.cluster.leader import LeaderElector
from bot.core.errors import Conflict
from bot.core.times import parse_time
from sandbox.stack import Stack
from tests.harness.clock import DAY
from tests.harness.wait import until

LEASE = ("coordination.k8s.io", "v1", "leases", "hello", "test-lease")


def electors(pair: Stack, seconds: int = 30) -> tuple[LeaderElector, LeaderElector]:
    return tuple(  # type: ignore[return-value]
        LeaderElector(r.services.cluster, name="test-lease", identity=f"cand-{r.index}", lease_seconds=seconds)
        for r in pair.replicas
    )


async def test_acquire_hold_renew_and_take_over_after_expiry(pair: Stack) -> None:
    a, b = electors(pair)
    assert await a.step(DAY) is True
    lease = pair.kube.get(*LEASE)
    assert lease["spec"]["holderIdentity"] == "cand-0" and lease["spec"]["leaseDurationSeconds"] == 30
    assert parse_time(lease["spec"]["renewTime"]) == DAY
    assert await b.step(DAY + timedelta(seconds=1)) is False and b.holder == "cand-0"
    assert await a.step(DAY + timedelta(seconds=10)) is True  # renewed (a third of 30 s)
    assert parse_time(pair.kube.get(*LEASE)["spec"]["renewTime"]) == DAY + timedelta(seconds=10)
    assert pair.kube.get(*LEASE)["spec"]["leaseDurationSeconds"] == 30, "quick renewals add nothing"
    assert await b.step(DAY + timedelta(seconds=39)) is False  # 10 + 30 not yet past
    assert await b.step(DAY + timedelta(seconds=41)) is True  # a stopped renewing
    spec = pair.kube.get(*LEASE)["spec"]
    assert spec["holderIdentity"] == "cand-1" and spec["leaseTransitions"] == 1
    assert parse_time(spec["acquireTime"]) == DAY + timedelta(seconds=41)
    assert a.is_leader(DAY + timedelta(seconds=41)) is False  # its renew deadline (20 s) has passed
    assert await a.step(DAY + timedelta(seconds=42)) is False and a.holder == "cand-1"


async def test_release_lets_the_other_take_over_at_once(pair: Stack) -> None:
    a, b = electors(pair)
    assert await a.step(DAY)
    assert await a.release(DAY + timedelta(seconds=5)) is True
    assert pair.kube.get(*LEASE)["spec"]["holderIdentity"] == ""
    assert await b.step(DAY + timedelta(seconds=6)) is True
    assert await b.release(DAY + timedelta(seconds=7)) is True
    assert await a.release(DAY + timedelta(seconds=8)) is False  # not the holder: nothing to do


async def test_a_stale_write_loses_the_race(pair: Stack) -> None:
    a, _ = electors(pair)
    assert await a.step(DAY)
    cluster = await pair.replicas[1].services.cluster()
    stale = await cluster.leases.get("test-lease")
    assert await a.step(DAY + timedelta(seconds=10))  # a renews: resourceVersion moves on
    stale["spec"]["holderIdentity"] = "cand-1"
    try:
        await cluster.leases.replace(stale)
    except Conflict:
        pass
    else:
        raise AssertionError("a PUT with a stale resourceVersion must be refused")
    assert pair.kube.get(*LEASE)["spec"]["holderIdentity"] == "cand-0"


async def test_the_background_loop_leads_and_releases_on_stop(stack: Stack) -> None:
    """`start()` runs on the real clock; `stop()` clears holderIdentity so a successor need not wait."""
    lease_name = stack.services.config.lease_name
    held = asyncio.Event()
    unsubscribe = stack.kube.subscribe(
        lambda _type, obj: held.set() if obj.get("kind") == "Lease" and obj["metadata"]["name"] == lease_name
        else None)
    scheduler = stack.services.schedules  # the wiring's, on the real clock
    await scheduler.start()
    await asyncio.wait_for(held.wait(), 10)
    unsubscribe()
    name = ("coordination.k8s.io", "v1", "leases", "hello", lease_name)
    assert stack.kube.get(*name)["spec"]["holderIdentity"] == "bot-0"
    await scheduler.stop()
    assert stack.kube.get(*name)["spec"]["holderIdentity"] == ""
    assert not scheduler.is_leader()


async def test_a_slow_renewal_writes_when_it_was_sent_and_the_next_one_comes_earlier(pair: Stack) -> None:
    a, b = electors(pair)
    assert await a.step(DAY)
    pair.kube.add_fault(verb="get", resource="leases", status=None, delay=2.0, count=1)  # the read takes 2 s
    assert await a.step(DAY + timedelta(seconds=10))
    # the renewal went 2 s into the step: the Lease lives from then, so it does not look older than it is
    assert parse_time(pair.kube.get(*LEASE)["spec"]["renewTime"]) >= DAY + timedelta(seconds=12)
    assert await a.step(DAY + timedelta(seconds=18.5))  # due 2 s early: the calls take that long
    assert parse_time(pair.kube.get(*LEASE)["spec"]["renewTime"]) == DAY + timedelta(seconds=18.5)
    assert await b.step(DAY + timedelta(seconds=41)) is False and b.holder == "cand-0"


async def test_no_take_over_while_the_holders_renewal_is_on_its_way(pair: Stack) -> None:
    a, _ = electors(pair)
    looks: list[float] = []

    def slow_reads() -> float:  # b's read of the Lease takes 1.5 s by this timer (the cluster answers slowly)
        looks.append(1.5 * len(looks))
        return looks[-1]

    b = LeaderElector(pair.replicas[1].services.cluster, name="test-lease", identity="cand-1", lease_seconds=30,
                      timer=slow_reads)
    assert await a.step(DAY)
    late = asyncio.ensure_future(b.step(DAY + timedelta(seconds=31)))  # the Lease looks expired to b
    await until(lambda: len(looks) >= 2, "b to read the Lease and wait before it looks again", 10)
    assert await a.step(DAY + timedelta(seconds=31))  # the holder's renewal lands meanwhile
    assert await late is False and b.holder == "cand-0"
    assert pair.kube.get(*LEASE)["spec"]["holderIdentity"] == "cand-0"


async def test_no_take_over_while_a_slow_holders_renewal_is_on_its_way_however_fast_the_candidate_reads(
        pair: Stack) -> None:
    """The holder's writes of the Lease are slow, the candidate's reads fast: a renewal the holder sent
    before the Lease expired is not overtaken while the API server still holds it."""
    a, b = electors(pair)
    assert await a.step(DAY)

    async def slow_renewal(now: timedelta, seconds: float) -> asyncio.Future:
        fault = pair.kube.add_fault(verb="update", resource="leases", status=None, delay=seconds, count=1)
        renewal = asyncio.ensure_future(a.step(DAY + now))
        await until(lambda: not fault.count, "the renewal to be sent", 10)
        return renewal

    assert await (await slow_renewal(timedelta(seconds=10), 1.5))  # the holder learns its writes are slow
    assert await (await slow_renewal(timedelta(seconds=18.5), 1.5))
    spec = pair.kube.get(*LEASE)["spec"]
    assert parse_time(spec["renewTime"]) == DAY + timedelta(seconds=18.5)
    assert spec["leaseDurationSeconds"] == 30 + 3, "twice the slowest renewal (1.5 s) is added to the duration"
    on_its_way = await slow_renewal(timedelta(seconds=47), 3.0)  # sent before 18.5 + 30 s, lands 3 s later
    assert await b.step(DAY + timedelta(seconds=49)) is False, "taken over while the renewal was on its way"
    assert await on_its_way is True
    spec = pair.kube.get(*LEASE)["spec"]
    assert spec["holderIdentity"] == "cand-0" and spec["leaseTransitions"] == 0
    assert parse_time(spec["renewTime"]) == DAY + timedelta(seconds=47)
