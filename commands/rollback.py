"""Roll the stable helloworld Deployment back to its previous revision, after approval.

`/hello rollback` finds the previous revision in the Deployment's ReplicaSet history (ordered by
`deployment.kubernetes.io/revision`) and asks to set the stable image back to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.config import Config
from bot.core.errors import UsageError
from bot.release import actions
from commands import Context, Reply

NAME = "rollback"
USAGE = "/hello rollback"


@dataclass(frozen=True)
class Request:
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    if args:
        raise UsageError("rollback takes no arguments: it goes back to the previous revision", USAGE)
    return Request()


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    await ctx.services.approvals.propose(lambda cluster: actions.plan_rollback(cluster, config), ctx.invocation)
    return None


