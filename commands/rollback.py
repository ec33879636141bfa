"""Roll the stable helloworld Deployment back to its previous revision, after approval.

`/hello rollback ["<reason>"]` finds the previous revision in the Deployment's ReplicaSet history
(ordered by `deployment.kubernetes.io/revision`) and asks to set the stable image back to it.

The reason is one quoted argument after `rollback`, e.g. `/hello rollback "500s on login"`; it is
shown in the approval request, the release's message, `/hello history` and the audit trail.
`HELLO_REQUIRE_REASON=true` makes it mandatory. The Roll back button under a finished change gives the
reason "from the Roll back button under request <id>".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import args as checks
from bot.core.config import Config
from bot.release import actions
from commands import Command, Context, Reply

NAME = "rollback"
USAGE = '/hello rollback ["<reason>"]'
EXAMPLE = '/hello rollback "500s on login since v2"'


@dataclass(frozen=True)
class Request:
    reason: str = ""
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    return Request(reason=checks.reason(args, config, USAGE, example=EXAMPLE))


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    await ctx.propose(lambda cluster: actions.plan_rollback(cluster, config, reason=request.reason))
    return None


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True)
