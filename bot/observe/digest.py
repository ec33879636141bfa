"""What a scheduled status post contains: the status, what changed since the last post, and a chart.

The status is the same as ``/hello status <range>`` (:mod:`bot.status`). The changes are the bot's
own audit records, read through :class:`bot.audit.Audit` (deploys, canary weight changes,
certificate renewals, rollbacks), whose time falls after the previous post. A schedule whose range is
a week or more also gets one line of delivery figures over that range (:mod:`bot.observe.delivery`, as
``/hello stats`` gives them). The chart over the schedule's range is uploaded in a thread under the post.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.chat import views
from bot.chat.views import digest as digest_view
from bot.core.durations import duration
from bot.core.errors import ClusterError, SlackError
from bot.observe import delivery
from bot.observe import status as status_view

if TYPE_CHECKING:
    from bot.core.ports import AlertDesk, AuditTrail
    from bot.core.services import Shared
    from bot.observe.schedule import Claim

log = logging.getLogger(__name__)

RANGE_SECONDS = {"15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800}
ICONS = (("rollback", ":rewind:"), ("canary", ":hatching_chick:"), ("cert", ":lock:"), ("renew", ":lock:"),
         ("deploy", ":rocket:"), ("promot", ":rocket:"), ("abort", ":no_entry:"))


@dataclass(frozen=True)
class Change:
    at: datetime
    reason: str
    message: str
    object: str = ""

    def line(self) -> str:
        lowered = f"{self.reason} {self.message}".lower()
        icon = next((i for key, i in ICONS if key in lowered), ":memo:")
        text = views.foreign(self.message, 280)  # cut before escaping: no entity is cut in half
        return f"{icon} `{views.when(self.at, '%m-%d %H:%M')}` *{views.foreign(self.reason, 80)}* {text}"


@dataclass
class Digest:
    text: str
    blocks: list[dict]
    data: status_view.StatusData
    chart: bool = True
    changes: list[Change] = field(default_factory=list)


async def changes_between(audit: AuditTrail, after: datetime, until: datetime) -> list[Change]:
    """The bot's audit records (:meth:`bot.audit.Audit.entries`) with a time in ``(after, until]``, oldest first."""
    return _changes(await audit.entries(), after, until)


def _changes(entries: list, after: datetime, until: datetime) -> list[Change]:
    out = [Change(at=e.at, reason=e.reason, message=e.message or e.summary, object=e.object)
           for e in entries if after < e.at <= until]
    out.sort(key=lambda c: c.at)
    return out


WEEK = 7 * 86400


async def build(services: Shared, audit: AuditTrail, alerts: AlertDesk, claim: Claim, *, now: datetime,
                chart: bool = True) -> Digest:
    """Gather the status for the schedule's range and render the post."""
    entry = claim.entry
    data = await status_view.gather(services, services.targets.default, entry.range, now=now, alerts=alerts)
    after = claim.previous or (claim.slot - timedelta(seconds=RANGE_SECONDS.get(entry.range, 3600)))
    changes: list[Change] = []
    changes_error = ""
    figures = ""
    try:
        entries, problems = await audit.everywhere()
        if entries is None:
            raise ClusterError("; ".join(problems))
    except ClusterError as exc:
        changes_error = str(exc)
    else:
        changes = _changes(entries, after, now)
        seconds = RANGE_SECONDS.get(entry.range, 3600)
        if seconds >= WEEK:
            figures = delivery.summary_line(delivery.compute(entries, end=now, days=seconds // 86400))
    services_lines: tuple[str, ...] = ()
    if services.targets.named:  # every service in every environment, one line each
        services_lines = tuple(line.text() for line in await status_view.overview(services.targets.every(), now=now))
    post = digest_view.Digest(
        id=entry.id, cron=entry.cron, timezone=services.config.timezone, range=entry.range,
        slot=views.when(claim.slot, "%Y-%m-%d %H:%M UTC"), since=views.when(after, "%Y-%m-%d %H:%M UTC"),
        changes=tuple(c.line() for c in changes), changes_error=views.escape(changes_error), delivery=figures,
        catch_up=claim.catch_up, skipped=claim.skipped, services=services_lines)
    blocks = digest_view.blocks(post, status_view.view(data, services.config))
    late = " (posted late)" if claim.catch_up else ""
    text = f"Scheduled status{late}: {status_view.summary_text(data)}"
    if changes:
        text += f" · {len(changes)} change(s) since the last post"
    return Digest(text=text, blocks=blocks, data=data, chart=chart, changes=changes)


async def chart_png(services: Shared, audit: AuditTrail, data: status_view.StatusData) -> bytes | None:
    """The chart for the digest's range, or ``None`` when there is no traffic to draw."""
    if data.snapshot is None or not getattr(data.snapshot, "has_traffic", False):
        return None
    uploads = await status_view.chart_uploads(services, data, "all", audit=audit)
    return uploads[0].content if uploads else None


async def upload_followups(services: Shared, audit: AuditTrail, channel: str, ts: str, digest: Digest) -> None:
    """Upload the chart in the post's thread; a failure is logged and said in the thread, never raised."""
    if not digest.chart:
        return
    try:
        png = await chart_png(services, audit, digest.data)
    except Exception:
        log.exception("cannot draw the chart of a scheduled status")
        png = None
        try:
            await services.messenger.post(channel, "The chart could not be drawn.", thread_ts=ts)
        except SlackError:
            pass
    if png is None:
        return
    rng = digest.data.range
    try:
        await services.messenger.upload(channel, png, f"helloworld-{rng}.png", f"helloworld, last {rng} (UTC)",
                                        thread_ts=ts)
    except SlackError as exc:
        log.warning("cannot upload the chart of a scheduled status to %s: %s", channel, exc.error)


def describe_age(now: datetime, then: datetime | None) -> str:
    """``"3m ago"``-style text for ``/hello schedule list``."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    return f"{duration(seconds)} ago" if seconds >= 0 else views.when(then)

