"""Show the release: each track's version and readiness, the canary weight, the certificate, metrics and a chart.

`/hello status [range]` posts in the channel; the range (15m, 1h, 6h, 24h, 7d; default 1h) applies to
the metrics and the chart, which is uploaded in a thread under the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import render
from bot.core import args as checks
from bot.core.config import RANGES, Config
from bot.core.errors import UsageError
from bot.observe import status as status_view
from bot.release import analysis
from commands import Context, Reply
from commands.release import running_section

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
    data = await status_view.gather(services, request.range)
    if data.state is not None:
        warning = await analysis.canary_warning(services, data.state)
        if warning:
            data.warnings.insert(0, warning)
    blocks = status_view.blocks(data, ctx.config)
    running = await running_section(ctx)
    if running:
        blocks = render.validate([*blocks[:-1], *running, blocks[-1]])
    reply = Reply(text=status_view.summary_text(data), blocks=blocks)
    if data.snapshot is not None and getattr(data.snapshot, "has_traffic", False):
        reply.followup = lambda: status_view.chart_uploads(services, data)
    return reply
