"""The journey of `/hello canary v2` through the bot's code, from the signed request to the approval message.

Runs the sandbox's stack (the emulated cluster and Slack, the real bot on loopback HTTP), sends the command
and records, with a profile hook, every call into the project's own code (bot/, commands/) until the
approval request is in the channel. Prints:

- the files crossed, in the order they are first entered, each with its package;
- the packages crossed, and the layer changes: how often consecutive files of that list belong to different
  packages;
- how often the names are resolved in the catalogue (``Catalogue.resolve``), a service's Config is derived for an
  environment (``Service.config_for``), and a release's steps are computed (``plan.steps_for``).

A file is counted once, however often it is called into; set-up (connecting, warming up) is done before the
command is sent. `python bench/journey.py` (the same Python and packages as the test command).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.stack import Stack  # noqa: E402

# where a name pair becomes the catalogue's service and environment, and where a release's steps are computed
RESOLUTIONS = {"Targets.resolve": ("bot/core/target.py", "resolve"),
               "Catalogue.resolve": ("bot/core/catalogue.py", "resolve"),
               "Service.config_for": ("bot/core/catalogue.py", "config_for")}
STEPS = {"steps_for": ("bot/release/plan.py", "steps_for")}


class Recorder:
    """Records the project files called into, in first-entry order, and counts resolutions."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.seen: set[str] = set()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.callers: dict[tuple[str, str], Counter[str]] = {key: Counter() for key in RESOLUTIONS.values()}
        self.on = False

    def __call__(self, frame, event, arg):  # type: ignore[no-untyped-def]
        if not self.on or event != "call":
            return
        path = frame.f_code.co_filename
        if not path.startswith(str(ROOT)):
            return
        rel = path[len(str(ROOT)) + 1:]
        if not rel.startswith(("bot/", "commands/")):
            return
        if rel not in self.seen:
            self.seen.add(rel)
            self.files.append(rel)
        self.calls[(rel, frame.f_code.co_name)] += 1
        if (rel, frame.f_code.co_name) in RESOLUTIONS.values():
            caller = frame.f_back
            self.callers[(rel, frame.f_code.co_name)][
                f"{caller.f_code.co_filename.rsplit('/', 2)[-2:][-1]}:{caller.f_code.co_name}"] += 1


def package(rel: str) -> str:
    parts = rel.split("/")
    return parts[0] if parts[0] == "commands" else ".".join(parts[:2]).removesuffix(".py")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="/hello canary v2")
    parser.add_argument("--catalogue", action="store_true",
                        help="a catalogue of two services in two emulated clusters; the command is typed in "
                             "helloworld's channel")
    args = parser.parse_args()
    recorder = Recorder()
    # no release engine: only the command's own work is recorded
    stack = Stack(engine=False, environments=("staging", "production")) if args.catalogue else Stack(engine=False)
    channel = "C3" if args.catalogue else "C1"
    async with stack:
        await stack.command("U1", "/hello help", channel=channel)  # warm up: imports, the first connection
        await stack.settle()
        before = len(stack.slack.messages(channel))
        sys.setprofile(recorder)
        threading.setprofile(recorder)
        recorder.on = True
        await stack.command("U1", args.command, channel=channel)
        deadline = time.monotonic() + 30
        while not any("Approve" in str(m.blocks) for m in stack.slack.messages(channel)[before:]):
            if time.monotonic() > deadline:
                raise RuntimeError("no approval request was posted within 30 s")
            await asyncio.sleep(0.01)
        recorder.on = False
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        await stack.settle()
    packages = [package(f) for f in recorder.files]
    changes = sum(1 for a, b in itertools.pairwise(packages) if a != b)
    print(f"{args.command}{' (a catalogue of two services)' if args.catalogue else ''}: from the signed request "
          "to the approval message")
    for rel, pkg in zip(recorder.files, packages, strict=True):
        print(f"  {pkg:<14} {rel}")
    print(f"files crossed: {len(recorder.files)}")
    print(f"packages crossed: {len(set(packages))} ({', '.join(sorted(set(packages)))})")
    print(f"layer changes (consecutive files in different packages): {changes}")
    outer = [p for p in packages if p != "bot.core"]
    outer_changes = sum(1 for a, b in itertools.pairwise(outer) if a != b)
    print(f"without bot.core (the kit every layer uses): {len(outer)} files, {outer_changes} layer changes")
    for title, key in {**RESOLUTIONS, **STEPS}.items():
        callers = recorder.callers.get(key)
        where = f" (from {', '.join(f'{c} ×{n}' for c, n in callers.most_common())})" if callers else ""
        print(f"calls of {title}: {recorder.calls[key]}{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
