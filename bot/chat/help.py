"""The help reply, built from the registry: pure, so the ack path can answer it without waiting."""

from __future__ import annotations

from bot.chat.contract import Registry, Reply
from bot.chat.views import help as help_view
from bot.core import args as checks
from bot.core.errors import UsageError

USAGE = "/hello help [command]"
TARGET = ("With several services (HELLO_SERVICES), name the service and environment first, e.g. "
          "`/hello {name} greeter production …`; in a channel of one service it may be left out.")


def reply_for(registry: Registry, topic: str = "") -> Reply:
    """The help reply (pure: used by the ack path too, which must not wait on anything)."""
    if topic:
        command = registry.get(topic)
        if command is None:
            raise UsageError(f"there is no {checks.shown(topic)} command. Try `/hello help`.", USAGE)
        text = command.help + ("\n\n" + TARGET.format(name=command.name) if command.targeted else "")
        blocks = help_view.topic(command.usage, text)
        return Reply(text=f"{command.usage}\n{text}", blocks=blocks, ephemeral=True)
    lines = "\n".join(f"`{c.usage}`  {c.summary}" for c in registry)
    blocks = help_view.overview(lines)
    return Reply(text=lines, blocks=blocks, ephemeral=True)
