"""List every sub-command with its usage, or explain one.

`/hello help` lists them all; `/hello help <command>` shows that command's full help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.help import reply_for
from bot.core.config import Config
from bot.core.errors import UsageError
from commands import Command, Context, Reply

NAME = "help"
USAGE = "/hello help [command]"


@dataclass(frozen=True)
class Request:
    topic: str = ""
    mutating: bool = False


def parse(args: Sequence[str], config: Config) -> Request:
    if len(args) > 1:
        raise UsageError("help takes at most one command name", USAGE)
    return Request(topic=args[0].lower() if args else "")


async def run(request: Request, ctx: Context) -> Reply:
    return reply_for(ctx.services.registry, request.topic)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run)
