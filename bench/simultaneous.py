"""Many people asking for a change to one service and environment at the same moment.

``--people`` signed ``/hello deploy`` commands from as many people, ``--at-once`` at a time, over HTTP
through the Slack emulator into the real bot, whose state lives in the Kubernetes emulator: once for a
service whose catalogue entry says ``lock: queue`` (greeter) and once for ``lock: refuse`` (helloworld).
Then the one request open for approval is approved; when its release ends, the first in line must open,
and no two releases of the pair may run at once (watched throughout from the requests' objects).

Prints, per lock mode: how many were answered and how (open, queued, refused — the lock held, or the queue
full at ``--queue-limit`` — and failed), whether the queue's places are exactly 1..N, how many requests ever
ran at once, and the seconds it took.
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
FAILED = ("could not", "Sorry", "gave up", "kept changing")


def _requests(world: World, channel: str) -> list[Message]:
    return [m for m in world.slack.workspace.messages(channel) if "requested by" in m.text]


def _answers(world: World, channel: str) -> tuple[list[Message], list[str]]:
    private = [e.text for e in world.slack.workspace._ephemerals.get(channel, [])]
    return _requests(world, channel), private


async def _watch_running(world: World, peak: list[int], stop: asyncio.Event) -> None:
    """The most requests of the pair in state running at one look, over the whole run."""
    while not stop.is_set():
        records = await world.stack.services.approvals.store.load()
        peak[0] = max(peak[0], sum(r.state == "running" for r in records.values()))
        await asyncio.sleep(0.05)


async def run(mode: str, people: int, at_once: int, queue_limit: int) -> dict[str, object]:
    service, channel = ("greeter", "CGREET") if mode == "queue" else ("helloworld", "CHELLO")
    users = [f"U{1000 + n}" for n in range(people)]
    env = {"HELLO_DEPLOYERS": ",".join(users), "HELLO_APPROVERS": "U2,U3", "HELLO_QUEUE_LIMIT": str(queue_limit)}
    with tempfile.TemporaryDirectory(prefix="bench-simultaneous-") as folder:
        async with two_clusters(Path(folder), env=env, people=tuple(users)) as world:
            gate = asyncio.Semaphore(at_once)
            peak, stop = [0], asyncio.Event()
            watcher = asyncio.create_task(_watch_running(world, peak, stop))

            async def ask(user: str) -> None:
                async with gate:
                    await world.ask(user, f"/hello deploy {service} staging v2", channel)

            t0 = time.perf_counter()
            await asyncio.gather(*(ask(u) for u in users))
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                requests, private = _answers(world, channel)
                if len(requests) + len(private) >= people and all(
                        PLACE.search(m.text) or APPROVE in str(m.blocks) or "Cancelled" in m.text for m in requests):
                    break
                await asyncio.sleep(0.1)
            await world.stack.settle(timeout=120)
            admitted = time.perf_counter() - t0
            requests, private = _answers(world, channel)
            open_ = [m for m in requests if APPROVE in str(m.blocks)]
            places = sorted(int(p.group(1)) for m in requests if (p := PLACE.search(m.text)))
            figures: dict[str, object] = {
                "mode": mode, "people": people, "at once": at_once, "answered": len(requests) + len(private),
                "open": len(open_), "queued": len(places),
                "refused": sum("One change at a time" in t or "is full" in t for t in private),
                "failed": sum(any(f in t for f in FAILED) for t in private) + sum("Cancelled" in m.text
                                                                                  for m in requests),
                "places 1..N": places == list(range(1, len(places) + 1)), "seconds": round(admitted, 1),
                "states": dict(Counter(str(r.state) for r in
                                       (await world.stack.services.approvals.store.load()).values())),
            }
            if len(open_) == 1:  # approve the holder; when it ends, the first in line must be the one open
                await world.stack.click("U2", open_[0].ts, "approve", channel=channel)
                await world.finished(open_[0])
                if places:
                    first = next(m for m in requests if (p := PLACE.search(m.text)) and p.group(1) == "1")
                    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == first.ts
                                               and APPROVE in str(m.blocks), 60)
                await world.stack.settle(timeout=120)
                now_open = [m.ts for m in _requests(world, channel) if APPROVE in str(m.blocks)]
                figures["next open"] = len(now_open)
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
