"""Roll the stable helloworld Deployment to a new version, after approval.

`/hello deploy <version> ["<reason>"]` (e.g. `/hello deploy v2.1 "fix the login bug"`) asks to set the
stable Deployment's image to `<repository>:<version>` (and its `HELLO_VERSION`); `/hello deploy` alone opens
a form (with several services, where nothing names the service, it asks which one). An approver approves or
rejects with the buttons; the same message then follows the rolling update and ends with the result and a
Roll back button.

The reason is one quoted argument after the version; it is shown in the approval request, the release's
message, `/hello history` and the audit trail. Unquoted words, or an extra version or percentage, are
refused, so a typo never becomes a reason. `HELLO_REQUIRE_REASON=true` makes it mandatory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import args as checks
from bot.core.config import Config
from bot.release import actions
from bot.release.forms import open_form
from commands import Command, Context, Reply

NAME = "deploy"
USAGE = '/hello deploy <version> ["<reason>"]'
EXAMPLE = '/hello deploy v2 "fix the login bug"'


@dataclass(frozen=True)
class Request:
    version: str
    form: bool = False  # no version given: open the form
    reason: str = ""
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        return Request(version="", form=True)
    return Request(version=checks.version(args[0], config, USAGE),
                   reason=checks.reason(args[1:], config, USAGE, example=EXAMPLE))


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    if request.form:
        return await open_form(ctx, "deploy")
    await ctx.propose(lambda cluster: actions.plan_deploy(cluster, config, request.version,
                                                                                 reason=request.reason))
    return None


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True, form=True)
