"""Show the release history: the last changes asked for, decided and carried out, newest first.

`/hello history [<count>]` (default 20, at most 50) reads the audit trail back from the cluster's
Events, so it is the same from every bot replica and survives restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import render
from bot.core.config import Config
from bot.core.errors import UsageError
from commands import Context, Reply

NAME = "history"
USAGE = "/hello history [<count>]"
DEFAULT = 20
MOST = 50


@dataclass(frozen=True)
class Request:
    count: int = DEFAULT
    mutating: bool = False


def parse(args: Sequence[str], config: Config) -> Request:
    if len(args) > 1:
        raise UsageError("history takes at most one argument, how many entries to show", USAGE)
    if args:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= MOST:
            raise UsageError(f"the count must be a whole number from 1 to {MOST}", USAGE)
        return Request(count=int(args[0]))
    return Request()


async def run(request: Request, ctx: Context) -> Reply:
    entries = await ctx.services.audit.recent(request.count)
    blocks = render.blocks("history", entries=entries, count=request.count)
    lines = [f"{render.when(e.at, '%Y-%m-%d %H:%M:%S')} {e.reason} {e.user}: {e.summary}" for e in entries]
    return Reply(text="Release history\n" + ("\n".join(lines) if lines else "No releases recorded yet."),
                 blocks=blocks)
