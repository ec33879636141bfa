"""Release a version as a canary and move traffic to it by the gateway Mapping's weight.

- `/hello canary <version>`: an analysed canary. Set the canary Deployment to the version, scale it up,
  wait until it is ready, then walk the traffic steps of HELLO_CANARY_STEPS (10% → 25% → 50%): at each
  step the canary is judged against stable from Prometheus every HELLO_ANALYSIS_INTERVAL, and goes on
  when the evidence shows it within the limits, waits while it cannot tell yet (nothing to judge for
  HELLO_ANALYSIS_MAX_INCONCLUSIVE checks, or undecided for HELLO_ANALYSIS_MAX_WAIT: a person is asked)
  or is aborted when it shows it beyond them (HELLO_ANALYSIS_MODE=advise pauses for a person instead).
  After the last step it offers the promotion. HELLO_CANARY_ANALYSIS=false makes the manual canary
  below the default.
- `/hello canary <version> <percent>%`: a manual canary at that share, no analysis.
- `/hello canary <percent>%`: change the canary's share (raising it needs a ready canary).
- `/hello canary promote`: roll the stable Deployment to the canary's version, then take the
  canary's traffic away and scale it to 0.
- `/hello canary abort`: take the canary's traffic away and scale it to 0 at once (no approval
  needed unless HELLO_ABORT_NEEDS_APPROVAL is set).

Each form takes a reason last, in quotes: `/hello canary v2 10% "try the new cache"`,
`/hello canary abort "p99 doubled"`. The reason is one argument after the form's own ones: quote it
(unquoted words, or an extra version, percentage or `promote`/`abort`, are refused, so a typo never
becomes a reason). It is shown in the approval request, the release's message, `/hello history` and the
audit trail.
`HELLO_REQUIRE_REASON=true` makes it mandatory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import args as checks
from bot.core.config import Config
from bot.release import actions
from bot.release.forms import open_form
from commands import Command, Context, Reply

NAME = "canary"
USAGE = '/hello canary <version> [<percent>%] | <percent>% | promote | abort  ["<reason>"]'
EXAMPLE = '/hello canary v2 10% "try the new cache"'
KEYWORDS = ("promote", "abort")


@dataclass(frozen=True)
class Request:
    kind: str  # "set" | "shift" | "promote" | "abort"
    version: str = ""
    percent: int = 0
    analysed: bool = False  # walk HELLO_CANARY_STEPS with analysis (no percent given)
    form: bool = False  # nothing given: open the form
    reason: str = ""
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        return Request(kind="set", form=True)
    first = args[0]

    def why(extra: Sequence[str]) -> str:
        return checks.reason(extra, config, USAGE, example=EXAMPLE, keywords=KEYWORDS)

    if first.lower() in KEYWORDS:
        kind = first.lower()
        return Request(kind=kind, reason=why(args[1:]))
    if first.endswith("%"):
        return Request(kind="shift", percent=checks.percent(first, USAGE), reason=why(args[1:]))
    version = checks.version(first, config, USAGE)
    if len(args) >= 2 and args[1].endswith("%"):
        return Request(kind="set", version=version, percent=checks.percent(args[1], USAGE), reason=why(args[2:]))
    reason = why(args[1:])
    if config.canary_analysis:
        return Request(kind="set", version=version, analysed=True, reason=reason)
    return Request(kind="set", version=version, percent=config.default_canary_percent, reason=reason)


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    if request.form:
        return await open_form(ctx, "canary")
    reason = request.reason
    plans = {
        "set": lambda cluster: actions.plan_canary(cluster, config, request.version,
                                                   None if request.analysed else request.percent, reason=reason),
        "shift": lambda cluster: actions.plan_shift(cluster, config, request.percent, reason=reason),
        "promote": lambda cluster: actions.plan_promote(cluster, config, reason=reason),
        "abort": lambda cluster: actions.plan_abort(cluster, config, reason=reason),
    }
    await ctx.propose(plans[request.kind])
    return None


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True, form=True)
