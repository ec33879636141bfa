"""Show the release history: the last changes asked for, decided and carried out, newest first.

`/hello history [<count>]` (default 20, at most 50) reads the audit trail back from the cluster's
Events, so it is the same from every bot replica and survives restarts. Each entry shows the change's
reason, when one was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import views
from bot.chat.views import history as history_view
from bot.core import args as checks
from bot.core.config import Config
from bot.core.errors import UsageError
from commands import Command, Context, Reply
from commands.release import running_lines

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
        return Request(count=checks.whole_number(args[0], low=1, high=MOST, what="count", usage=USAGE))
    return Request()


async def run(request: Request, ctx: Context) -> Reply:
    entries = await ctx.services.audit.recent(request.count, ctx.where)
    blocks = history_view.blocks(entries, request.count, running=await running_lines(ctx))
    # The entries are read back from Events, which anyone with access to the namespace can write.
    lines = [f"{views.when(e.at, '%Y-%m-%d %H:%M:%S')} {views.foreign(e.reason, 80)} {views.foreign(e.user, 40)}: "
             f"{views.foreign(e.summary)}" + (f" — reason: “{views.foreign(e.change_reason)}”"
                                              if e.change_reason else "") for e in entries]
    return Reply(text="Release history\n" + ("\n".join(lines) if lines else "No releases recorded yet."),
                 blocks=blocks)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True)
