"""Lock a service: no change to it is accepted until someone unlocks it.

`/hello lock <service> [<environment>] "<reason>"` (e.g. `/hello lock payments production "database
migration"`) locks one service in one environment, or in all of them. The reason is required, last, in
quotes. A change asked for while the lock holds is refused, naming who locked it and why; a freeze (see
`/hello freeze`) only asks for break-glass. `/hello unlock` lifts it. Needs deployer rights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.views import notice
from bot.core import args as checks
from bot.core.config import Config
from bot.core.errors import UsageError
from bot.core.text import foreign
from bot.release.holds import scope
from commands import Command, Context, Reply
from commands.freeze import audit, covered, holds_of, target, usage_of

NAME = "lock"
USAGE = '/hello lock <service> [<environment>] "<reason>"'
EXAMPLE = '/hello lock payments production "database migration"'


@dataclass(frozen=True)
class Request:
    service: str
    environment: str | None
    reason: str
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    service, rest = target(args, USAGE, every=False)
    environment = rest.pop(0) if len(rest) >= 2 else None
    reason = checks.reason(rest, config, USAGE, example=EXAMPLE)
    if not reason:
        raise UsageError(f"a lock needs a reason, last, in quotes: `{EXAMPLE}`", USAGE)
    return Request(service=service, environment=environment, reason=reason)


async def run(request: Request, ctx: Context) -> Reply:
    holds = holds_of(ctx)
    with usage_of(USAGE):
        names = holds.catalogue.service(request.service).environment_names
        if request.environment is None and request.reason in names:
            raise UsageError(f"to lock {request.service} in {request.reason} only, give a reason too: `{EXAMPLE}`")
        lock = await holds.lock(request.service, request.environment, request.reason, ctx.invocation.user_id)
    where = scope(lock.service, lock.environment)
    text = (f":lock: <@{lock.user}> locked {where}: “{foreign(lock.reason)}”. Changes there are refused "
            f"until `/hello unlock {lock.service}{' ' + lock.environment if lock.environment else ''}`.")
    await audit(ctx, "Lock", "Set", f"locked {where}", lock.reason, service=lock.service,
                environment=lock.environment or "")
    return Reply(text=text, blocks=notice.blocks(text))


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, change_targets=covered(USAGE))
