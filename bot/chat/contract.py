"""The chat contract between the Slack side and the sub-commands.

- :class:`Invocation`: who typed what, where; :class:`Reply` and :class:`Upload`: what a command answers;
- :class:`Context`: what a handler receives (the invocation and the service objects, no clients);
- :class:`Command` and :class:`Registry`: the sub-commands by name. A sub-command is a module (see
  :mod:`commands`) that describes itself once, typed, in its ``COMMAND``; :class:`Request` is what its
  ``parse`` returns;
- :func:`split`: the command text split like a shell.

The registry is an object, so tests build a fresh one (``commands.default_registry()`` or an empty
one plus the modules they need).
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.errors import UsageError
from bot.core.text import foreign

if TYPE_CHECKING:
    from bot.cluster.kube import Cluster
    from bot.core.config import Config
    from bot.core.policy import Policy
    from bot.core.services import Services
    from bot.core.target import Target, Targets


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


EVERY = "*"  # Context.service of a command covering every service (``/hello status`` in a shared channel)
# Context.service of a form opened where nothing determines the service (``/hello deploy`` in a shared channel):
# the person chooses the service and environment in it, among those they may change from there
CHOOSE = "?"
DETAILS = "status_details"  # action id of the status overview's select of a service and environment


@dataclass
class Context:
    """What a handler receives: the invocation, the target and the service objects (no Slack or Kubernetes clients).

    ``target`` is the service and environment the command acts on, resolved once where the command came in
    (None: the bot's own); :attr:`config`, :attr:`policy` and :meth:`cluster` are its. ``scope`` is
    :data:`EVERY` for an overview of every service, :data:`CHOOSE` for a form that lets the person choose.
    """

    invocation: Invocation
    services: Services
    target: Target | None = None
    scope: str = ""

    @property
    def where(self) -> Target:
        """The target, or the bot's own for an overview, a form that chooses, or a command with no target."""
        if self.target is None or self.scope:
            return self.services.targets.default
        return self.target

    @property
    def service(self) -> str:
        """The target's service as recorded ("" in a catalogue of one), or the scope (:data:`EVERY`, :data:`CHOOSE`)."""
        return self.scope or (self.target.names[0] if self.target else "")

    @property
    def environment(self) -> str:
        return "" if self.scope or self.target is None else self.target.names[1]

    @property
    def config(self) -> Config:
        return self.where.config

    @property
    def policy(self) -> Policy:
        return self.where.policy

    async def cluster(self) -> Cluster:
        """The cluster and namespace of the service and environment the command acts on."""
        return await self.where.cluster()

    async def propose(self, plan: Callable[[Cluster], Awaitable[Any]]) -> None:
        """Ask for the change ``plan`` makes from the cluster's state, for this service and environment."""
        await self.services.approvals.propose(plan, self.invocation, self.where)


class Request(Protocol):
    """What a command's ``parse`` returns: a frozen dataclass of the command's own, which says whether it changes
    the cluster or the bot's stored state (then the deployer policy applies, see :meth:`Dispatcher.check_change`)."""

    @property
    def mutating(self) -> bool: ...


@dataclass(frozen=True)
class Targeted:
    """A parsed request for one service in one environment (what the dispatcher hands to ``run``)."""

    request: Request
    target: Target | None
    scope: str = ""

    @property
    def mutating(self) -> bool:
        return self.request.mutating


@dataclass(frozen=True, kw_only=True)
class Command:
    """One sub-command, described once by its module (``COMMAND = Command(...)``, see :mod:`commands`).

    ``doc`` is the module's docstring: its first line is the one-line :attr:`summary`, the whole is
    ``/hello help <name>``. The rest says how the dispatcher treats the command; each defaults to the plain case.
    """

    name: str
    usage: str
    doc: str | None
    parse: Callable[[Sequence[str], Config], Request]
    run: Callable[[Any, Context], Awaitable[Reply | None]]  # takes what its own ``parse`` returned
    # takes ``[<service>] [<environment>]`` first: the dispatcher resolves them once into Context.target
    targeted: bool = False
    # given no service where several could be meant, the command covers every one (ctx.scope is EVERY)
    overview: bool = False
    # given nothing at all where several could be meant, the command's form asks for the pair (ctx.scope is CHOOSE)
    form: bool = False
    # a command naming its own pair (``/hello promote``): whose deployers and channels decide
    change_scope: Callable[[Any], tuple[str, str]] | None = None
    # a change covering several pairs (``/hello freeze all``): each must allow the person to change it
    change_targets: Callable[[Any, Targets], list[Target]] | None = None
    # such a change that HELLO_ADMINS may make instead, from a channel of HELLO_OPS_CHANNELS (a hold on ``all``)
    admin_scope: Callable[[Any], bool] | None = None

    @property
    def help(self) -> str:
        return inspect.cleandoc(self.doc or "")

    @property
    def summary(self) -> str:
        return self.help.splitlines()[0] if self.help else self.name


class Registry:
    """Name -> :class:`Command`, in registration order."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._commands: dict[str, Command] = {}
        for command in commands:
            self.register(command)

    def register(self, command: Command) -> Command:
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


def take_target(args: Sequence[str], targets: Targets, channel: str) -> tuple[Target, list[str]]:
    """Peel ``[<service>] [<environment>]`` off the front of a targeted command's arguments: the target, resolved.

    A first word naming a catalogue service is the service; then a word naming one of that service's
    environments (or, with the service left out, of the service the channel means) is the environment.
    Without a catalogue file nothing is peeled and the target is the bot's own. An unknown or ambiguous
    service raises :class:`UsageError` listing what exists.
    """
    rest = list(args)
    if not targets.named:
        return targets.default, rest
    catalogue = targets.catalogue
    service = rest.pop(0) if rest and rest[0] in catalogue.names else None
    try:
        chosen = catalogue.service(service) if service else catalogue.resolve(None, None, channel)[0]
    except UsageError:
        chosen = None  # no service meant here: resolve() below says which exist
    environment = rest.pop(0) if chosen is not None and rest and rest[0] in chosen.environment_names else None
    if service is None and environment is None and len(rest) > 1 and rest[0] not in catalogue.names \
            and any(rest[1] in s.environment_names for s in catalogue.services):
        catalogue.service(rest[0])  # "<word> <environment> …": a service name, misspelt or not of the catalogue
    return targets.resolve(service, environment, channel), rest


def split(text: str) -> list[str]:
    """Split the command text like a shell (quotes group words); smart quotes count as quotes."""
    text = (text or "").replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    if not any(c in text for c in "\"'\\"):
        return text.split()  # nothing to unquote: the same as shlex, much faster
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot read the arguments: {foreign(exc, 80)}") from None
