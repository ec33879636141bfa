"""Show one release step by step, or the releases running now.

`/hello release <id>` (the request id shown under every approval and progress message) lists the
release's steps: when each began and ended and how it went, who asked and who approved, and how it
ended. `/hello release` alone lists the releases running now with their current step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import views
from bot.chat.views import release as release_view
from bot.core import args as checks
from bot.core.config import Config
from bot.core.errors import CommandError, DependencyUnavailable, UsageError
from bot.core.times import parse_time
from bot.release.lifecycle import RUNNING, State
from bot.release.plan import StepState
from bot.release.record import Record
from commands import Command, Context, Reply

NAME = "release"
USAGE = "/hello release [<id>]"
_ID = re.compile(r"[0-9a-f]{6,32}", re.ASCII)
MARKS = {StepState.DONE: ":white_check_mark:", StepState.FAILED: ":x:", StepState.RUNNING: ":hourglass_flowing_sand:",
         StepState.WAITING: ":white_circle:"}
STATES = {State.RUNNING: "running", State.SUCCEEDED: "succeeded", State.FAILED: "failed",
          State.SUPERSEDED: "superseded"}


@dataclass(frozen=True)
class Request:
    id: str = ""
    mutating: bool = False


def parse(args: Sequence[str], config: Config) -> Request:
    if len(args) > 1:
        raise UsageError("release takes at most one argument, the request id", USAGE)
    if args:
        rid = args[0].strip("`").lower()
        if not rid.isascii() or not _ID.fullmatch(rid):
            raise UsageError(f"{checks.shown(args[0])} is not a request id (like `3f9c2a1b7e`)", USAGE)
        return Request(id=rid)
    return Request()


def _time(text: str) -> str:
    moment = parse_time(text)
    return views.when(moment, "%H:%M:%S") if moment else "–"


def step_lines(release: Record) -> list[str]:
    """One line per step: mark, title, began, ended, what it saw (pure)."""
    lines = []
    for index, step in enumerate(release.steps, 1):
        line = f"{MARKS[step.state]} {index}. {views.escape(step.title)}"
        if step.started:
            line += f" · {_time(step.started)} → {_time(step.finished) if step.finished else 'now'}"
        if step.note:
            line += f" · {views.escape(step.note)}"
        if step.runs > 1:
            line += f" · begun {step.runs} times (taken over)"
        lines.append(line)
    return lines


async def running_lines(ctx: Context) -> list[str]:
    """A line per release running now (none when there are none or they cannot be read)."""
    engine = ctx.services.releases
    if engine is None:
        return []
    try:
        running = await engine.open_releases()
    except DependencyUnavailable:
        return []
    return [r.running_line() for r in running]


async def run(request: Request, ctx: Context) -> Reply:
    engine = ctx.services.releases
    if not request.id:
        running = await engine.open_releases()
        if not running:
            return Reply(text="No release is running.", ephemeral=True)
        lines = [r.running_line() for r in running]
        return Reply(text="Releases running\n" + "\n".join(lines), blocks=release_view.running(lines), ephemeral=True)
    release = await engine.load(request.id)
    if release is None or not (release.state == RUNNING or release.began):  # asked for, never carried out
        raise CommandError(f"There is no release `{request.id}`: it was never approved, or it is too old.")
    who = f"requested by <@{release.requester}>" + (f", approved by <@{release.approver}>" if release.approver else "")
    state = STATES.get(release.state, str(release.state))
    head = f"*{release.label}* {views.escape(release.summary)}\n{who} · {state}"
    if release.reason:
        head += f"\n:speech_balloon: Reason: “{views.foreign(release.reason)}”"
    if release.outcome is not None:
        mark = ":white_check_mark: " if release.outcome.ok else ":x: "
        head += "\n" + mark + views.escape(release.outcome.headline)
    if release.problem and release.state == RUNNING:
        head += f"\n:warning: {views.escape(release.problem)}"
    blocks = release_view.detail(head, step_lines(release), release.id, release.driver or "nobody yet")
    return Reply(text=f"{release.label}: {release.summary} — {state}", blocks=blocks)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run)
