"""Freeze changes for a while: during a freeze a change needs break-glass (a reason and two approvers).

`/hello freeze <service|all> [<environment>] <duration> "<reason>"` (e.g. `/hello freeze all production 2h
"incident 42"`) freezes one service, or every service (`all`), in one environment or in all of them, for
`<duration>` (`30m`, `2h`, `1d`, `1h30m`; at most 31 days). The reason is required, last, in quotes.
Freezing the same service and environment again replaces that freeze (to extend or shorten it).
`/hello freeze` alone lists the locks, the freezes in force and the freeze windows of the catalogue
(a service's `freezes:`), with when each window next opens.
`/hello unfreeze` ends a freeze early; `/hello lock` stops changes altogether. Freezing needs deployer rights
for every service and environment it covers; `all` may also be frozen by the admins (`HELLO_ADMINS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.chat import views
from bot.chat.views import notice
from bot.core import args as checks
from bot.core.catalogue import ALL
from bot.core.config import Config
from bot.core.durations import duration, parse_duration
from bot.core.errors import UsageError
from bot.core.target import Target, Targets
from bot.core.text import foreign
from bot.release.holds import Holds, scope
from commands import Command, Context, Reply

NAME = "freeze"
USAGE = '/hello freeze <service|all> [<environment>] <duration> "<reason>" | /hello freeze (list)'
EXAMPLE = '/hello freeze helloworld production 2h "incident 42"'


@dataclass(frozen=True)
class Request:
    service: str = ""  # "": list the holds
    environment: str | None = None  # None: every environment
    duration: timedelta = timedelta(0)
    reason: str = ""

    @property
    def mutating(self) -> bool:
        return bool(self.service)


def target(args: Sequence[str], usage: str, *, every: bool) -> tuple[str, list[str]]:
    """The service named first (``all`` normalised when ``every``) and the arguments after it."""
    if not args:
        raise UsageError("name a service" + (" (or `all`)" if every else ""), usage)
    service = args[0]
    if service.lower() == ALL:
        if not every:
            raise UsageError("lock one service at a time (name it)", usage)
        service = ALL
    return service, list(args[1:])


@dataclass(frozen=True)
class Lift:
    """What `/hello unfreeze` and `/hello unlock` take: a service (or `all`) and, maybe, an environment."""

    service: str
    environment: str | None = None
    mutating: bool = True


def parse_lift(args: Sequence[str], usage: str, *, every: bool) -> Lift:
    """``<service> [<environment>]``; ``every``: the service may be ``all``."""
    service, rest = target(args, usage, every=every)
    if len(rest) > 1:
        name = usage.split()[1]
        raise UsageError(f"{name} takes a service{' (or `all`)' if every else ''} and at most one environment",
                         usage)
    return Lift(service=service, environment=rest[0] if rest else None)


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        return Request()
    service, rest = target(args, USAGE, every=True)
    environment: str | None = None
    if len(rest) >= 2 and parse_duration(rest[1]) is not None and parse_duration(rest[0]) is None:
        environment, rest = rest[0], rest[1:]
    if not rest or parse_duration(rest[0]) is None:
        raise UsageError(f"say how long the freeze lasts (like `30m`, `2h`, `1d`), then why: `{EXAMPLE}`", USAGE)
    length = checks.duration(rest[0], USAGE)
    reason = checks.reason(rest[1:], config, USAGE, example=EXAMPLE)
    if not reason:
        raise UsageError(f"a freeze needs a reason, last, in quotes: `{EXAMPLE}`", USAGE)
    return Request(service=service, environment=environment, duration=length, reason=reason)


def covered(usage: str) -> Callable[[Request | Lift, Targets], list[Target]]:
    """The ``change_targets`` of a hold command: every service and environment a hold (or its lifting) covers.

    The dispatcher checks that the person may change each of them from this channel (their deployers and
    channels), so `all` needs the rights everywhere. An unknown service or environment gets ``usage``.
    """
    def change_targets(request: Request | Lift, targets: Targets) -> list[Target]:
        if not request.service:
            return []  # the listing changes nothing
        with usage_of(usage):
            services = targets.catalogue.services if request.service == ALL else (
                targets.catalogue.service(request.service),)
            return [targets.resolve(service.name, env.name) for service in services for env in service.environments
                    if request.environment is None or env.name == service.environment(request.environment).name]

    return change_targets


def for_admins(request: Request | Lift) -> bool:
    """The ``admin_scope`` of a hold command: a hold on ``all`` (or its lifting), which ``HELLO_ADMINS`` may
    decide without the rights for every service and environment it covers."""
    return request.service == ALL


def holds_of(ctx: Context) -> Holds:
    """The bot's :class:`Holds` (the freeze commands use more of it than its interface to other parts)."""
    return ctx.services.holds  # type: ignore[return-value]


async def audit(ctx: Context, verb: str, phase: str, summary: str, reason: str = "", **facts: Any) -> None:
    await ctx.services.audit.record_hold(verb, phase, user=ctx.invocation.user_id, summary=summary,
                                         channel=ctx.invocation.channel_id, change_reason=reason, facts=facts)


@contextmanager
def usage_of(usage: str) -> Iterator[None]:
    """A :class:`UsageError` raised inside (an unknown service or environment) gets the command's usage line."""
    try:
        yield
    except UsageError as exc:
        raise UsageError(str(exc), exc.usage or usage) from None


async def run(request: Request, ctx: Context) -> Reply:
    holds = holds_of(ctx)
    if not request.service:
        return await listing(holds)
    user = ctx.invocation.user_id
    until = holds.clock() + request.duration
    with usage_of(USAGE):
        freeze = await holds.freeze(request.service, request.environment, until, request.reason, user)
    where = scope(freeze.service, freeze.environment)
    text = (f":snowflake: <@{user}> froze {where} until {views.when(freeze.until)}: "
            f"“{foreign(freeze.reason)}”. Until then a change there needs break-glass (a reason and two approvers).")
    await audit(ctx, "Freeze", "Set", f"froze {where} until {views.when(freeze.until)}", freeze.reason,
                service=freeze.service, environment=freeze.environment or "", until=views.when(freeze.until))
    return Reply(text=text, blocks=notice.blocks(text))


async def listing(holds: Holds) -> Reply:
    now = holds.clock()
    overview = await holds.overview(now)
    lines = []
    for lock in overview.locks:
        lines.append(f":lock: {scope(lock.service, lock.environment)}: locked by <@{lock.user}> since "
                     f"{views.when(lock.since)}: “{foreign(lock.reason)}”")
    for freeze in overview.freezes:
        lines.append(f":snowflake: {scope(freeze.service, freeze.environment)}: frozen by <@{freeze.user}> until "
                     f"{views.when(freeze.until)}: “{foreign(freeze.reason)}”")
    if not lines:
        lines.append("No locks and no freezes from chat.")
    if overview.windows:
        lines.append("*Freeze windows* (from the catalogue):")
    for item in overview.windows:
        window = item.window
        envs = ", ".join(window.environments) or "every environment"
        state = (f"*open* until {views.when(item.until)}" if item.until else f"next opens {views.when(item.next)}")
        lines.append(f"• {item.service} in {envs}: `{window.cron}` ({window.timezone or holds.timezone}) for "
                     f"{duration(window.duration.total_seconds())}, “{foreign(window.reason)}” — {state}")
    text = "\n".join(lines)
    return Reply(text=text, blocks=notice.blocks(text), ephemeral=True)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run,
                  change_targets=covered(USAGE), admin_scope=for_admins)
