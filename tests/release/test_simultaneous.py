"""Many people asking for a change to one service and environment at the same moment, over HTTP through the
Slack emulator: every request is queued or refused with a clear answer, exactly one is open for approval, the
queue's places are 1..N without duplicates, and the releases never overlap."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sandbox.slack.state import Ephemeral, Message
from tests.harness.several import APPROVE, World, two_clusters
from tests.harness.wait import until

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
        for version in ("v2", "v3", "v4"):  # one holds the lock, two wait
            await world.ask("U100", f"/hello deploy greeter staging {version}", "CGREET")
            await world.stack.settle()
        store = world.stack.services.approvals.store
        lock = await store.lock(("greeter", "staging"))
        assert list(lock.who.values()) == ["U100", "U100"]  # the lock says whose each queued request is
        # as a lock stored by an earlier version (no requesters): the queued requests' records say whose they are
        await store.update_lock(("greeter", "staging"), lambda lock: setattr(lock, "who", {}))
        await world.ask("U100", "/hello deploy greeter staging v5", "CGREET")  # the fourth is refused
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


def _place(world: World, ts: str) -> int:
    """The place in line the request's message shows now (0: none)."""
    message = next(m for m in _requests(world, "CGREET") if m.ts == ts)
    found = PLACE.search(message.text)
    return int(found.group(1)) if found else 0


async def test_the_messages_show_the_places_as_they_move_up_even_when_the_queue_moved_before_one_was_posted(
        tmp_path: Path) -> None:
    people = PEOPLE[:4]
    env = {"HELLO_DEPLOYERS": ",".join(people), "HELLO_APPROVERS": "U2,U3"}
    async with two_clusters(tmp_path, env=env, people=tuple(people)) as world:
        for user in people[:3]:  # one holds the lock, two wait
            await world.ask(user, "/hello deploy greeter staging v2", "CGREET")
            await world.stack.settle()
        store = world.stack.services.approvals.store
        records = await store.load()
        lock = await store.lock(("greeter", "staging"))
        first, second = (records[rid].ts for rid in lock.queue)
        assert (_place(world, first), _place(world, second)) == (1, 2)
        await world.stack.click(people[1], first, "reject", channel="CGREET")  # the first in line withdraws
        await world.stack.settle()
        await until(lambda: _place(world, second) == 1 or None, "the second in line shown 1st", 20)

        # a request admitted 2nd whose message Slack holds back; meanwhile the one before it withdraws
        world.slack.add_fault("chat.postMessage", retry_after=3)
        await world.ask(people[3], "/hello deploy greeter staging v2", "CGREET")

        async def queued_two() -> bool | None:
            return len((await store.lock(("greeter", "staging"))).queue) == 2 or None

        await until(queued_two, "the fourth request queued", 20)
        await world.stack.click(people[2], second, "reject", channel="CGREET")
        await world.slack.wait_for(lambda _: len(_requests(world, "CGREET")) == 4, ANSWERED)
        await world.stack.settle()
        (last,) = [m.ts for m in _requests(world, "CGREET") if m.ts not in (first, second) and m.text.count("Queued")]
        await until(lambda: _place(world, last) == 1 or None, "the last request shown 1st", 20)
