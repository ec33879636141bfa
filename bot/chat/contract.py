"""The chat contract between the Slack side and the sub-commands.

- :class:`Invocation`: who typed what, where; :class:`Reply` and :class:`Upload`: what a command answers;
- :class:`Context`: what a handler receives (the invocation and the service objects, no clients);
- :class:`Command` and :class:`Registry`: the sub-commands by name. A sub-command is a module (see
  :mod:`commands`) turned into a :class:`Command` by :meth:`Command.from_module`;
- :func:`split`: the command text split like a shell.

The registry is an object, so tests build a fresh one (``commands.default_registry()`` or an empty
one plus the modules they need).
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bot.core.errors import UsageError
from bot.core.text import foreign

if TYPE_CHECKING:
    from bot.core.config import Config
    from bot.core.services import Services

@dataclass(frozen=True)
class Invocation:
    """Who typed what, where."""

    user_id: str
    channel_id: str
    text: str
    user_name: str = ""
    channel_name: str = ""
    response_url: str = ""
    team_id: str = ""
    trigger_id: str = ""  # lets the command open a modal, for 3 s


@dataclass
class Reply:
    """What a command answers: Block Kit blocks plus fallback text, and optional chart uploads.

    ``ephemeral`` replies are seen only by the person who typed the command. ``uploads`` are PNGs
    posted in a thread under the reply.
    """

    text: str
    blocks: list[dict] = field(default_factory=list)
    ephemeral: bool = False
    uploads: list[Upload] = field(default_factory=list)
    # Filled lazily (e.g. the chart) after the text reply is posted: awaited, then uploaded.
    followup: Callable[[], Awaitable[list[Upload]]] | None = None


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes
    title: str
    comment: str = ""


@dataclass
class Context:
    """What a handler receives: the invocation and the service objects (no Slack or Kubernetes clients)."""

    invocation: Invocation
    services: Services

    @property
    def config(self) -> Config:
        return self.services.config


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    help: str
    parse: Callable[[Sequence[str], Config], Any]
    run: Callable[[Any, Context], Awaitable[Reply | None]]
    module: ModuleType | None = None

    @classmethod
    def from_module(cls, module: ModuleType) -> Command:
        doc = inspect.cleandoc(module.__doc__ or "")
        summary = doc.splitlines()[0] if doc else module.NAME
        return cls(
            name=module.NAME,
            usage=module.USAGE,
            summary=summary,
            help=doc,
            parse=module.parse,
            run=module.run,
            module=module,
        )


class Registry:
    """Name -> :class:`Command`, in registration order."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._commands: dict[str, Command] = {}
        for command in commands:
            self.register(command)

    def register(self, command: Command | ModuleType) -> Command:
        if isinstance(command, ModuleType):
            command = Command.from_module(command)
        if command.name in self._commands:
            raise ValueError(f"sub-command {command.name!r} registered twice")
        self._commands[command.name] = command
        return command

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._commands.values())

    def __contains__(self, name: object) -> bool:
        return name in self._commands

    def names(self) -> list[str]:
        return list(self._commands)


def split(text: str) -> list[str]:
    """Split the command text like a shell (quotes group words); smart quotes count as quotes."""
    text = (text or "").replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    if not any(c in text for c in "\"'\\"):
        return text.split()  # nothing to unquote: the same as shlex, much faster
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot read the arguments: {foreign(exc, 80)}") from None
