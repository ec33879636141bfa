"""Many people asking for a change to one service and environment at the same moment, over HTTP through the
Slack emulator: every request is queued or refused with a clear answer, exactly one is open for approval, the
queue's places are 1..N without duplicates, and the releases never overlap."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sandbox.slack.state import Ephemeral, Message
from tests.harness.several import APPROVE, World, two_clusters

PEOPLE = [f"U{100 + n}" for n in range(24)]
ANSWERED = 90  # seconds every request may take to be answered: 24 at once, on a shared 2-core machine
PLACE = re.compile(r"Queued, (\d+)(?:st|nd|rd|th) in line")


def _requests(world: World, channel: str) -> list[Message]:
    return [m for m in world.slack.workspace.messages(channel) if "requested by" in m.text]


def _refusals(world: World, channel: str) -> list[Ephemeral]:
    return [e for e in world.slack.workspace._ephemerals.get(channel, []) if "One change at a time" in e.text]


async def _all_answered(world: World, channel: str, count: int) -> tuple[list[Message], list[Ephemeral]]:
    if len(_requests(world, channel)) + len(_refusals(world, channel)) < count:
        await world.slack.wait_for(
            lambda _: len(_requests(world, channel)) + len(_refusals(world, channel)) >= count, ANSWERED)
    return _requests(world, channel), _refusals(world, channel)


async def test_simultaneous_requests_queue_with_unique_places_and_one_open(tmp_path: Path) -> None:
    env = {"HELLO_DEPLOYERS": ",".join(PEOPLE), "HELLO_APPROVERS": "U2,U3", "HELLO_QUEUE_LIMIT": str(len(PEOPLE))}
    async with two_clusters(tmp_path, env=env, people=tuple(PEOPLE)) as world:
        await asyncio.gather(*(world.ask(user, "/hello deploy greeter staging v2", "CGREET") for user in PEOPLE))
        await world.slack.wait_for(lambda _: len(_requests(world, "CGREET")) >= len(PEOPLE)
                                   and all(m.text.count("Queued") or APPROVE in str(m.blocks)
                                           for m in _requests(world, "CGREET")), ANSWERED)
        await world.stack.settle()
        requests = _requests(world, "CGREET")
        assert len(requests) == len(PEOPLE)
        open_ = [m for m in requests if APPROVE in str(m.blocks)]
        assert len(open_) == 1, [m.text for m in requests]
        places = sorted(int(PLACE.search(m.text).group(1)) for m in requests if PLACE.search(m.text))
        assert places == list(range(1, len(PEOPLE))), places
        records = await world.stack.services.approvals.store.load()
        assert sorted(r.state for r in records.values()) == ["pending"] + ["queued"] * (len(PEOPLE) - 1)
        assert all(r.ts for r in records.values())

        # the holder is approved and runs; when it ends, the first in line (and only it) opens
        head = open_[0]
        # the first in line, read before anything moves (the emulator edits its messages in place)
        first = next(m for m in requests if PLACE.search(m.text) and PLACE.search(m.text).group(1) == "1")
        await world.stack.click("U2", head.ts, "approve", channel="CGREET")
        await world.finished(head)
        await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == first.ts and APPROVE in str(m.blocks),
                                   30)
        await world.stack.settle()
        requests = _requests(world, "CGREET")
        assert [m.ts for m in requests if APPROVE in str(m.blocks)] == [first.ts]
        places = sorted(int(PLACE.search(m.text).group(1)) for m in requests if PLACE.search(m.text))
        assert places == list(range(1, len(PEOPLE) - 1)), places


async def test_simultaneous_requests_under_lock_refuse_leave_exactly_one(tmp_path: Path) -> None:
    env = {"HELLO_DEPLOYERS": ",".join(PEOPLE), "HELLO_APPROVERS": "U2,U3"}
    async with two_clusters(tmp_path, env=env, people=tuple(PEOPLE)) as world:  # helloworld: `lock: refuse`
        await asyncio.gather(*(world.ask(user, "/hello deploy helloworld staging v2", "CHELLO") for user in PEOPLE))
        requests, refused = await _all_answered(world, "CHELLO", len(PEOPLE))
        await world.stack.settle()
        assert len(requests) == 1 and len(refused) == len(PEOPLE) - 1, ([m.text for m in requests],
                                                                         [e.text for e in refused])
        assert APPROVE in str(requests[0].blocks)
        records = await world.stack.services.approvals.store.load()
        assert [r.state for r in records.values()] == ["pending"]  # the refused ones left nothing behind


async def test_a_full_queue_refuses_with_a_clear_answer_and_a_withdrawal_moves_the_places_up(tmp_path: Path) -> None:
    people = PEOPLE[:5]
    env = {"HELLO_DEPLOYERS": ",".join(people), "HELLO_APPROVERS": "U2,U3", "HELLO_QUEUE_LIMIT": "2"}
    async with two_clusters(tmp_path, env=env, people=tuple(people)) as world:
        for user in people:  # one after the other: the holder, two queued, then two refused
            await world.ask(user, "/hello deploy greeter staging v2", "CGREET")
            await world.stack.settle()
        requests = _requests(world, "CGREET")
        assert len(requests) == 3
        full = [e for e in world.slack.workspace._ephemerals.get("CGREET", []) if "queue" in e.text]
        assert len(full) == 2 and all("is full: 2 requests wait" in e.text for e in full), [e.text for e in full]
        assert {int(p.group(1)) for m in requests if (p := PLACE.search(m.text))} == {1, 2}
        first = next(m for m in requests if (p := PLACE.search(m.text)) and p.group(1) == "1")
        await world.stack.click(people[1], first.ts, "reject", channel="CGREET")  # withdrawn by its requester
        await world.stack.settle()
        lock = await world.stack.services.approvals.store.lock(("greeter", "staging"))
        assert len(lock.queue) == 1  # its place went with it
        await world.ask(people[3], "/hello deploy greeter staging v2", "CGREET")  # so there is room again
        await world.stack.settle()
        assert len(_requests(world, "CGREET")) == 4


async def test_one_person_may_have_only_so_many_requests_waiting(tmp_path: Path) -> None:
    # #25 item 5: a queue is capped per person too, so one person cannot fill it
    env = {"HELLO_DEPLOYERS": "U100,U101", "HELLO_APPROVERS": "U2,U3", "HELLO_QUEUE_PER_PERSON": "2"}
    async with two_clusters(tmp_path, env=env, people=("U100", "U101")) as world:
        for version in ("v2", "v3", "v4", "v5"):  # one holds the lock, two wait, the fourth is refused
            await world.ask("U100", f"/hello deploy greeter staging {version}", "CGREET")
            await world.stack.settle()
        assert len(_requests(world, "CGREET")) == 3
        [refused] = [e for e in world.slack.workspace._ephemerals.get("CGREET", [])
                     if "HELLO_QUEUE_PER_PERSON" in e.text]
        assert refused.text.startswith("<@U100> has 2 requests waiting in the queue of this service and environment")
        records = await world.stack.services.approvals.store.load()
        assert sorted(r.state for r in records.values()) == ["pending", "queued", "queued"]  # the refused left nothing
        await world.ask("U101", "/hello deploy greeter staging v6", "CGREET")  # another person still may
        await world.stack.settle()
        assert len(_requests(world, "CGREET")) == 4


async def test_two_requests_from_one_person_at_the_same_moment_cannot_both_pass_the_per_person_cap(
        tmp_path: Path) -> None:
    # #25 item 5: the cap is checked in the lock's compare-and-swap, on the queue as it is then
    env = {"HELLO_DEPLOYERS": "U100", "HELLO_APPROVERS": "U2,U3", "HELLO_QUEUE_PER_PERSON": "2"}
    async with two_clusters(tmp_path, env=env, people=("U100",)) as world:
        for version in ("v2", "v3"):  # one holds the lock, one waits
            await world.ask("U100", f"/hello deploy greeter staging {version}", "CGREET")
            await world.stack.settle()
        assert len(_requests(world, "CGREET")) == 2
        # the requests are listed slowly: both new ones are stored before either has looked at the others
        world.clusters["production"].add_fault(verb="list", resource="configmaps", status=None, delay=1.0,
                                               count=None)
        await asyncio.gather(*(world.ask("U100", f"/hello deploy greeter staging {v}", "CGREET")
                               for v in ("v4", "v5")))

        def refusals() -> list[Ephemeral]:
            return [e for e in world.slack.workspace._ephemerals.get("CGREET", [])
                    if "HELLO_QUEUE_PER_PERSON" in e.text]

        await world.slack.wait_for(lambda _: len(_requests(world, "CGREET")) + len(refusals()) >= 4, ANSWERED)
        world.clusters["production"].clear_faults()
        await world.stack.settle()
        assert len(_requests(world, "CGREET")) == 3 and len(refusals()) == 1, "exactly one of the two is queued"
        assert refusals()[0].text.startswith("<@U100> has 2 requests waiting")
        records = await world.stack.services.approvals.store.load()
        assert sorted(r.state for r in records.values()) == ["pending", "queued", "queued"]
