"""Many people asking for a change to one service and environment at the same moment.

``--people`` signed ``/hello deploy`` commands from as many people, ``--at-once`` at a time, over HTTP
through the Slack emulator (which enforces Slack's rate limits) into the real bot, whose state lives in the
Kubernetes emulator: once for a service whose catalogue entry says ``lock: queue`` (greeter) and once for
``lock: refuse`` (helloworld). Then the one request open for approval is approved; when its release ends, the
first in line must open, and no two releases of the pair may run at once (watched throughout from the records).

The places are read once the bot's messenger has drained (no edit in flight nor waiting to be sent again, and
the request messages unchanged for a second): the stored places (the lock's queue, by each queued record) and
the displayed ones (each request message's "Queued, Nth in line"), and whether each message shows its record's.

Prints, per lock mode: how many were answered and how (open, queued, refused — the lock held, the queue full
at ``--queue-limit`` or the person's cap — and failed, with the distinct failure texts), the stored and the
displayed places and whether each is exactly 1..N, how many requests ever ran at once, and the seconds it took.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.slack.state import Message
from tests.harness.several import APPROVE, World, two_clusters

PLACE = re.compile(r"Queued, (\d+)(?:st|nd|rd|th) in line")
REFUSED = ("One change at a time", "is full", "HELLO_QUEUE_PER_PERSON")
STABLE = 1.0  # seconds the request messages must stay unchanged once no edit is pending


def _requests(world: World, channel: str) -> list[Message]:
    return [m for m in world.slack.workspace.messages(channel) if "requested by" in m.text]


def _private(world: World, channel: str) -> list[str]:
    return [e.text for e in world.slack.workspace._ephemerals.get(channel, [])]


def _displayed(message: Message) -> int:
    found = PLACE.search(message.text)
    return int(found.group(1)) if found else 0


async def drained(world: World, channel: str, timeout: float = 300) -> float:
    """Wait until no replica's messenger has an edit pending and the request messages stayed unchanged for
    :data:`STABLE` seconds; returns the seconds waited."""
    t0 = loop_time = time.monotonic()
    last, since = None, loop_time
    while time.monotonic() - t0 < timeout:
        pending = sum(r.services.messenger.edits_pending for r in world.stack.replicas)
        shown = [(m.ts, m.text, len(m.edits)) for m in _requests(world, channel)]
        now = time.monotonic()
        if pending or shown != last:
            last, since = shown, now
        elif now - since >= STABLE:
            return round(now - t0, 1)
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the bot's messages did not settle in {timeout:g} s")


async def places(world: World, channel: str, key: tuple[str, str]) -> dict[str, object]:
    """The stored places (the lock's queue) and the displayed ones, and whether every queued message shows its own."""
    store = world.stack.services.approvals.store
    lock, records = await store.lock(key), await store.load()
    by_ts = {r.ts: r for r in records.values() if r.ts}
    queued = [r for r in records.values() if r.state == "queued"]
    stored = sorted(p for r in queued if (p := lock.place(r.id)))
    requests = _requests(world, channel)
    displayed = sorted(p for m in requests if (p := _displayed(m)))
    wrong = sum(1 for m in requests if m.ts in by_ts and by_ts[m.ts].state == "queued"
                and _displayed(m) != lock.place(by_ts[m.ts].id))
    return {"queued outside the lock": sum(1 for r in queued if not lock.place(r.id) and r.id != lock.holder),
            "stored places": stored, "stored 1..N": stored == list(range(1, len(stored) + 1)),
            "displayed places": displayed, "displayed 1..N": displayed == list(range(1, len(displayed) + 1)),
            "messages showing another place": wrong}


async def _watch_running(world: World, peak: list[int], stop: asyncio.Event) -> None:
    """The most requests of the pair in state running at one look, over the whole run."""
    while not stop.is_set():
        records = await world.stack.services.approvals.store.load()
        peak[0] = max(peak[0], sum(r.state == "running" for r in records.values()))
        await asyncio.sleep(0.05)


async def _ask_all(world: World, users: list[str], at_once: int, text: str, channel: str) -> None:
    gate = asyncio.Semaphore(at_once)

    async def ask(user: str) -> None:
        async with gate:
            await world.ask(user, text, channel)

    await asyncio.gather(*(ask(u) for u in users))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # every request answered: in the channel, or privately
        requests = _requests(world, channel)
        if len(requests) + len(_private(world, channel)) >= len(users) and all(
                PLACE.search(m.text) or APPROVE in str(m.blocks) or "Cancelled" in m.text for m in requests):
            return
        await asyncio.sleep(0.1)


async def _next_opens(world: World, channel: str, figures: dict[str, object]) -> None:
    """Approve the one open request; when it ends the first in line must be the one open."""
    requests = _requests(world, channel)
    head = next(m for m in requests if APPROVE in str(m.blocks))
    first = next((m for m in requests if _displayed(m) == 1), None)
    await world.stack.click("U2", head.ts, "approve", channel=channel)
    await world.finished(head)
    if first is not None:
        try:
            await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == first.ts
                                       and APPROVE in str(m.blocks), 120)
        except TimeoutError:
            figures["first in line opened"] = False
    await world.stack.settle(timeout=120)
    figures["drained after (s)"] = await drained(world, channel)
    figures["next open"] = sum(APPROVE in str(m.blocks) for m in _requests(world, channel))
    after = await places(world, channel, ("greeter", "staging") if channel == "CGREET" else ("helloworld", "staging"))
    figures.update({f"then {k}": v for k, v in after.items() if "places" not in k})


async def run(mode: str, people: int, at_once: int, queue_limit: int) -> dict[str, object]:
    service, channel = ("greeter", "CGREET") if mode == "queue" else ("helloworld", "CHELLO")
    users = [f"U{1000 + n}" for n in range(people)]
    env = {"HELLO_DEPLOYERS": ",".join(users), "HELLO_APPROVERS": "U2,U3", "HELLO_QUEUE_LIMIT": str(queue_limit)}
    with tempfile.TemporaryDirectory(prefix="bench-simultaneous-") as folder:
        async with two_clusters(Path(folder), env=env, people=tuple(users)) as world:
            peak, stop = [0], asyncio.Event()
            watcher = asyncio.create_task(_watch_running(world, peak, stop))
            try:
                t0 = time.perf_counter()
                await _ask_all(world, users, at_once, f"/hello deploy {service} staging v2", channel)
                await world.stack.settle(timeout=120)
                admitted = time.perf_counter() - t0
                waited = await drained(world, channel)
                requests, private = _requests(world, channel), _private(world, channel)
                failures = [t for t in private if not any(r in t for r in REFUSED)]
                failures += [m.text for m in requests if "Cancelled" in m.text]
                figures: dict[str, object] = {
                    "mode": mode, "people": people, "at once": at_once, "answered": len(requests) + len(private),
                    "open": sum(APPROVE in str(m.blocks) for m in requests),
                    "queued": sum(bool(PLACE.search(m.text)) for m in requests),
                    "refused": Counter(r for t in private for r in REFUSED if r in t), "failed": len(failures),
                    "failures": dict(Counter(t[:80] for t in failures)), "seconds": round(admitted, 1),
                    "drained after (s)": waited,
                    **await places(world, channel, (service, "staging")),
                    "states": dict(Counter(str(r.state) for r in
                                           (await world.stack.services.approvals.store.load()).values())),
                }
                if figures["open"] == 1:
                    await _next_opens(world, channel, figures)
            finally:
                stop.set()
                await watcher
            figures["most running at once"] = peak[0]
            return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--at-once", type=int, default=50)
    parser.add_argument("--mode", choices=("queue", "refuse", "both"), default="both")
    parser.add_argument("--queue-limit", type=int, default=10, help="HELLO_QUEUE_LIMIT (1-100)")
    args = parser.parse_args()
    for mode in ("queue", "refuse") if args.mode == "both" else (args.mode,):
        figures = await run(mode, args.people, args.at_once, args.queue_limit)
        print("  ".join(f"{k}: {v}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
