"""List every sub-command with its usage, or explain one.

`/hello help` lists them all; `/hello help <command>` shows that command's full help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot import args as checks
from bot import render
from bot.config import Config
from bot.errors import UsageError
from commands import Context, Registry, Reply

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


def reply_for(registry: Registry, topic: str = "") -> Reply:
    """The help reply (pure: used by the ack path too, which must not wait on anything)."""
    if topic:
        command = registry.get(topic)
        if command is None:
            raise UsageError(f"there is no {checks.shown(topic)} command. Try `/hello help`.", USAGE)
        blocks = render.blocks("help", detail={"usage": command.usage, "help": command.help}, lines="")
        return Reply(text=f"{command.usage}\n{command.help}", blocks=blocks, ephemeral=True)
    lines = "\n".join(f"`{c.usage}`  {c.summary}" for c in registry)
    blocks = render.blocks("help", detail=None, lines=lines)
    return Reply(text=lines, blocks=blocks, ephemeral=True)


async def run(request: Request, ctx: Context) -> Reply:
    return reply_for(ctx.services.registry, request.topic)
