"""Show the release: each track's version and readiness, the canary weight, the certificate, metrics and a chart.

`/hello status [range]` posts in the channel; the range (15m, 1h, 6h, 24h, 7d; default 1h) applies to
the metrics and the chart, which is uploaded in a thread under the status.

With several services (HELLO_SERVICES), `/hello status [<service>] [<environment>] [range]` shows one;
in a channel of several services (or one of none) `/hello status` alone gives one line per service and
environment: live versions, canary and health.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.views import status as status_blocks
from bot.core import args as checks
from bot.core.config import RANGES, Config
from bot.core.errors import UsageError
from bot.observe import status as status_view
from bot.release import analysis
from commands import EVERY, Command, Context, Reply
from commands.release import running_lines

NAME = "status"
USAGE = "/hello status [15m|1h|6h|24h|7d]"


@dataclass(frozen=True)
class Request:
    range: str = "1h"
    mutating: bool = False


def parse(args: Sequence[str], config: Config) -> Request:
    if len(args) > 1:
        raise UsageError("status takes at most one argument, the time range", USAGE)
    if args:
        rng = args[0].lower()
        if rng not in RANGES:
            raise UsageError(f"unknown range {checks.shown(args[0])}: use one of {', '.join(RANGES)}", USAGE)
        return Request(range=rng)
    return Request()


async def run(request: Request, ctx: Context) -> Reply:
    services = ctx.services
    if ctx.service == EVERY:
        return await overview(ctx)
    data = await status_view.gather(services, ctx.where, request.range, alerts=services.alerts)
    if data.state is not None:
        warning = await analysis.canary_warning(ctx.where, data.state)
        if warning:
            data.warnings.insert(0, warning)
    blocks = status_view.blocks(data, ctx.config, running=await running_lines(ctx))
    reply = Reply(text=status_view.summary_text(data), blocks=blocks)
    if data.snapshot is not None and getattr(data.snapshot, "has_traffic", False):
        reply.followup = lambda: status_view.chart_uploads(services, data, audit=services.audit)
    return reply


async def overview(ctx: Context) -> Reply:
    """One line per service and environment: those of this channel, or all when it has none."""
    catalogue = ctx.services.catalogue
    assert catalogue is not None
    services = catalogue.in_channel(ctx.invocation.channel_id) or catalogue.services
    targets = ctx.services.targets.every(services)
    lines = [line.text() for line in await status_view.overview(targets)]
    text = "Services\n" + "\n".join(lines)
    return Reply(text=text, blocks=status_blocks.overview(lines, [t.names for t in targets]))


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True, overview=True)
