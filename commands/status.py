"""Show the release: each track's version and readiness, the canary weight, the certificate, metrics and a chart.

`/hello status [range]` posts in the channel; the range (15m, 1h, 6h, 24h, 7d; default 1h) applies to
the metrics and the chart, which is uploaded in a thread under the status.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot import args as checks
from bot import status as status_view
from bot.config import RANGES, Config
from bot.errors import UsageError
from commands import Context, Reply, Upload

NAME = "status"
USAGE = "/hello status [15m|1h|6h|24h|7d]"

log = logging.getLogger(__name__)


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
    reply = Reply(text=status_view.summary_text(data), blocks=status_view.blocks(data, ctx.config))
    if data.snapshot is not None and getattr(data.snapshot, "has_traffic", False):
        reply.followup = lambda: chart_uploads(ctx, data)
    return reply


async def chart_uploads(ctx: Context, data: status_view.StatusData, kind: str = "all") -> list[Upload]:
    """Render the chart for ``data`` off the event loop; audit markers when an audit trail exists."""
    from bot import charts

    markers = []
    audit = ctx.services.audit
    if audit is not None and hasattr(audit, "markers"):
        try:
            markers = await audit.markers(data.snapshot.start, data.snapshot.end)
        except Exception:
            log.exception("cannot read release markers for the chart")
    state = data.state
    png = await charts.render_chart_async(
        data.snapshot,
        service=ctx.config.stable_deployment,
        kind=kind,
        markers=markers,
        stable_version=state.stable.version if state and state.stable else None,
        canary_version=state.canary.version if state and state.canary and status_view.canary_weight(state) else None,
    )
    return [Upload(filename=f"helloworld-{kind}-{data.range}.png", content=png,
                   title=f"helloworld {kind}, last {data.range} (UTC)")]
