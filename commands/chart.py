"""Post a chart of helloworld's traffic, errors or latency per version, from Prometheus.

`/hello chart [traffic|errors|latency|all] [range]`: `all` (the default) draws requests/s, success % and
p99 latency in three aligned panels; the range is 15m, 1h (default), 6h, 24h or 7d. Markers show the
deploys, canary changes and rollbacks in that range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import args as checks
from bot.core.config import RANGES, Config
from bot.core.errors import CommandError, UsageError
from bot.observe import status as status_view
from commands import Command, Context, Reply

NAME = "chart"
USAGE = "/hello chart [traffic|errors|latency|all] [15m|1h|6h|24h|7d]"
KINDS = ("traffic", "errors", "latency", "all")


@dataclass(frozen=True)
class Request:
    kind: str = "all"
    range: str = "1h"
    mutating: bool = False


def parse(args: Sequence[str], config: Config) -> Request:
    kind, rng = "all", "1h"
    seen_kind = seen_range = False
    for arg in args:
        word = arg.lower()
        if word in KINDS and not seen_kind:
            kind, seen_kind = word, True
        elif word in RANGES and not seen_range:
            rng, seen_range = word, True
        else:
            raise UsageError(
                f"{checks.shown(arg)} is neither a chart ({', '.join(KINDS)}) nor a range ({', '.join(RANGES)})", USAGE
            )
    return Request(kind=kind, range=rng)


async def run(request: Request, ctx: Context) -> Reply:
    data = await status_view.gather(ctx.services, ctx.where, request.range, alerts=ctx.services.alerts)
    if data.snapshot is None:
        raise CommandError(data.metrics_error or "metrics unavailable")
    if not data.snapshot.has_traffic:
        return Reply(text=f"No traffic in the last {request.range}: nothing to chart.", ephemeral=True)
    uploads = await status_view.chart_uploads(ctx.services, data, request.kind, audit=ctx.services.audit)
    return Reply(text="", uploads=uploads)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True)
