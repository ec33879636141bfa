"""Lift a lock set with `/hello lock`.

`/hello unlock <service> [<environment>]` removes the lock on exactly that service and environment (or
the service-wide one when no environment is given). Needs deployer rights.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat.views import notice
from bot.core.config import Config
from bot.core.text import foreign
from bot.release.holds import scope
from commands import Command, Context, Reply
from commands.freeze import Lift, audit, covered, holds_of, parse_lift, usage_of

NAME = "unlock"
USAGE = "/hello unlock <service> [<environment>]"
Request = Lift


def parse(args: Sequence[str], config: Config) -> Request:
    return parse_lift(args, USAGE, every=False)


async def run(request: Request, ctx: Context) -> Reply:
    with usage_of(USAGE):
        lifted = await holds_of(ctx).unlock(request.service, request.environment)
    where = scope(lifted.service, lifted.environment)
    text = (f":unlock: <@{ctx.invocation.user_id}> unlocked {where} (locked by <@{lifted.user}>: "
            f"“{foreign(lifted.reason)}”).")
    await audit(ctx, "Lock", "Lifted", f"unlocked {where}", lifted.reason, service=lifted.service,
                environment=lifted.environment or "")
    return Reply(text=text, blocks=notice.blocks(text))


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, change_targets=covered(USAGE))
