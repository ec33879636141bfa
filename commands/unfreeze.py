"""End a freeze made in chat before its time.

`/hello unfreeze <service|all> [<environment>]` ends the freeze `/hello freeze` set on exactly that service
(or `all`) and environment (or every environment). A freeze window of the catalogue cannot be ended from
chat: the reply says when a freeze still holds. Needs deployer rights.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat.views import notice
from bot.core.config import Config
from bot.core.text import foreign
from bot.release.holds import scope
from commands import Command, Context, Reply
from commands.freeze import Lift, audit, covered, for_admins, holds_of, parse_lift, usage_of

NAME = "unfreeze"
USAGE = "/hello unfreeze <service|all> [<environment>]"
Request = Lift


def parse(args: Sequence[str], config: Config) -> Request:
    return parse_lift(args, USAGE, every=True)


async def run(request: Request, ctx: Context) -> Reply:
    holds = holds_of(ctx)
    with usage_of(USAGE):
        ended = await holds.unfreeze(request.service, request.environment)
    where = scope(ended.service, ended.environment)
    text = f":sunny: <@{ctx.invocation.user_id}> ended the freeze on {where} (“{foreign(ended.reason)}”)."
    await audit(ctx, "Freeze", "Lifted", f"ended the freeze on {where}", ended.reason,
                service=ended.service, environment=ended.environment or "")
    return Reply(text=text, blocks=notice.blocks(text))


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run,
                  change_targets=covered(USAGE), admin_scope=for_admins)
