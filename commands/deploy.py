"""Roll the stable helloworld Deployment to a new version, after approval.

`/hello deploy <version>` (e.g. `v2.1`) asks to set the stable Deployment's image to
`<repository>:<version>` (and its `HELLO_VERSION`); `/hello deploy` alone opens a form. An approver
approves or rejects with the buttons; the same message then follows the rolling update and ends
with the result and a Roll back button.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import args as checks
from bot.core.config import Config
from bot.core.errors import UsageError
from bot.release import actions
from bot.release.forms import open_form
from commands import Context, Reply

NAME = "deploy"
USAGE = "/hello deploy <version>"


@dataclass(frozen=True)
class Request:
    version: str
    form: bool = False  # no version given: open the form
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        return Request(version="", form=True)
    if len(args) != 1:
        raise UsageError("deploy takes exactly one argument, the version (e.g. `v2`)", USAGE)
    return Request(version=checks.version(args[0], config, USAGE))


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    if request.form:
        return await open_form(ctx, "deploy")
    await ctx.services.approvals.propose(lambda cluster: actions.plan_deploy(cluster, config, request.version),
                                         ctx.invocation)
    return None


