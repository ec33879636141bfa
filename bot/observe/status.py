"""Status of the release: gather (cluster + metrics) and assess. Shared by `/hello status` and digests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.chat import views
from bot.chat.contract import Upload
from bot.chat.views import status as status_blocks
from bot.cluster.kube import Deployed
from bot.core import times
from bot.core.durations import duration
from bot.core.errors import ClusterError, DependencyUnavailable
from bot.core.target import Target
from bot.core.text import foreign
from bot.observe import grafana

if TYPE_CHECKING:
    from bot.core.ports import AlertDesk, AuditTrail
    from bot.core.services import Services, Shared

log = logging.getLogger(__name__)

CERT_WARN_DAYS = 14


@dataclass
class StatusData:
    now: datetime
    range: str
    state: Deployed | None
    cluster_error: str = ""
    snapshot: Any = None  # bot.prom.Snapshot
    metrics_error: str = ""
    warnings: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)  # bot.observe.alert_group.AlertGroup, firing, oldest first
    alerts_error: str = ""
    config: Any = None  # the configuration of the service and environment described (its Target's)
    target: Target | None = None  # the service and environment described (None: the bot's own)


def assess(state: Deployed, now: datetime) -> list[str]:
    """Warnings a person should act on, in plain words."""
    out: list[str] = [state.stale] if state.stale else []
    for part, why in state.missing.items():
        if part == "events":
            continue
        out.append(f"{part}: {why}")
    for track in (state.stable, state.canary):
        if track is None:
            continue
        if track.stuck:
            cond = track.condition("Progressing")
            why = foreign(cond.message) if cond else "ProgressDeadlineExceeded"
            out.append(f"{track.name} rollout is stuck: {why}")
        elif track.desired and track.ready < track.desired and track.name == "stable":
            out.append(f"stable has {track.ready}/{track.desired} pods ready")
    cert = state.certificate
    if cert is not None:
        days = cert.days_left(now)
        if days is not None and days < CERT_WARN_DAYS:
            out.append(f"certificate {cert.name} expires in {max(days, 0):.0f} days ({views.when(cert.not_after)})")
        if not cert.ready:
            out.append(f"certificate {cert.name} is not ready: {foreign(cert.reason or 'unknown', 80)} "
                       f"{foreign(cert.message)}".strip())
    sw = state.stable_route.weight if state.stable_route else None
    cw = state.canary_route.weight if state.canary_route else None
    if sw is not None and cw is not None and sw + cw != 100:
        out.append(f"route weights don't add up: stable {sw}% + canary {cw}% = {sw + cw}%")
    elif (sw or 0) + (cw or 0) > 100:
        out.append(f"route weights exceed 100%: stable {sw or 0}% + canary {cw or 0}%")
    if cw and state.canary is not None and state.canary.ready == 0:
        out.append(f"canary has {cw}% of traffic but no ready pods")
    elif cw and state.canary is None:
        out.append(f"canary route has {cw}% of traffic but the canary Deployment is missing")
    return out


def canary_weight(state: Deployed | None) -> int:
    if state is None or state.canary_route is None:
        return 0
    return state.canary_route.weight or 0


async def gather(services: Services | Shared, target: Target, range_text: str = "1h", *,
                 now: datetime | None = None, alerts: AlertDesk | None = None) -> StatusData:
    """Read ``target``'s cluster and Prometheus concurrently; a failure of either is recorded, not raised.

    The firing alerts shown (from ``alerts``) are those of the target (all of them for the bot's own).
    """
    now = now or times.now()
    config = target.config
    data = StatusData(now=now, range=range_text, state=None, config=config, target=target)
    prometheus = target.prometheus
    pair = target.names

    async def read_cluster() -> None:
        try:
            cluster = await target.cluster()
            data.state = await cluster.deployed()
        except ClusterError as exc:
            data.cluster_error = str(exc)

    async def read_metrics() -> None:
        if prometheus is None:
            data.metrics_error = "metrics unavailable: Prometheus is not configured"
            return
        try:
            data.snapshot = await prometheus.snapshot(range_text, now=now)
        except DependencyUnavailable as exc:
            text = str(exc)
            data.metrics_error = text if text.startswith("metrics unavailable") else f"metrics unavailable: {text}"

    async def read_alerts() -> None:
        cards = alerts
        if cards is None or not services.config.alert_token:
            return
        try:
            data.alerts = await cards.store.shown()  # a display: the watch cache of the groups, once listed
            if pair[0]:
                data.alerts = [g for g in data.alerts if (g.service, g.environment) == pair]
        except ClusterError as exc:
            data.alerts_error = f"firing alerts unknown: {exc}"

    await asyncio.gather(read_cluster(), read_metrics(), read_alerts())
    if data.state is not None:
        data.warnings = assess(data.state, now)
    data.links = links(services, data)
    return data


def links(services: Services, data: StatusData) -> list[tuple[str, str]]:
    version = data.state.canary.version if data.state and data.state.canary and canary_weight(data.state) else None
    try:
        return list(grafana.links_for(data.config or services.config, data.snapshot or data.range, version))
    except Exception:  # links are a convenience; never lose the status over them
        log.exception("cannot build dashboard links")
        return []


def tracks_of(state: Deployed) -> list[status_blocks.Track]:
    """Stable and canary as status shows them: version, readiness, share of traffic."""
    tracks = []
    for track, route in ((state.stable, state.stable_route), (state.canary, state.canary_route)):
        if track is None:
            continue
        weight = route.weight if route else None
        if track.name == "stable":
            share = "rest of traffic" if weight is None else f"{weight}% of traffic"
        elif track.desired == 0 and not weight:
            share = "not running"
        else:
            share = f"{weight or 0}% of traffic"
        tracks.append(status_blocks.Track(
            name=track.name,
            version=foreign(track.version or "?", 80),
            ready=track.ready,
            desired=track.desired,
            share=share,
            stuck=track.stuck,
        ))
    return tracks


def view(data: StatusData, config: Any) -> status_blocks.Status:
    """What the status message shows (:mod:`bot.chat.views.status`)."""
    state = data.state
    cert = None
    if state is not None and state.certificate is not None:
        c = state.certificate
        days = c.days_left(data.now)
        cert = status_blocks.Cert(
            name=c.name,
            ready=c.ready,
            days=None if days is None else int(days),
            not_after=views.when(c.not_after),
            renewal=views.when(c.renewal_time),
        )
    versions = []
    snap = data.snapshot
    if snap is not None and getattr(snap, "has_traffic", False):
        for s in snap.latest:
            versions.append(status_blocks.Rate(
                version=foreign(s.version, 80),
                rate=f"{s.rate:.2f}/s" if s.rate is not None else "n/a",
                success=views.percent(s.success_ratio, 2),
                p99=f"{s.p99 * 1000:.0f} ms" if s.p99 is not None else "n/a",
            ))
    return status_blocks.Status(
        namespace=config.namespace,
        service=config.stable_deployment,
        range=data.range,
        checked=views.when(data.now, "%Y-%m-%d %H:%M:%S UTC"),
        cluster_error=data.cluster_error,
        tracks=tuple(tracks_of(state)) if state is not None else (),
        cert=cert,
        warnings=tuple(data.warnings[:10]),
        events=tuple([f"{foreign(e.reason, 80)} {foreign(e.object, 120)}: {foreign(e.message)}"
                      + (f" (x{e.count})" if e.count > 1 else "")
                      for e in (state.warnings if state is not None else ())][:5]),
        metrics_error=data.metrics_error,
        no_traffic=snap is not None and not getattr(snap, "has_traffic", False),
        versions=tuple(versions),
        links=tuple(data.links[:5]),
        alerts=tuple(alert_line(g, data.now) for g in data.alerts[:10]),
        alerts_more=max(0, len(data.alerts) - 10),
        alerts_error=data.alerts_error,
    )


def alert_line(group: Any, now: datetime) -> str:
    """One firing alert group for status and digests: severity, name, since when, who looks at it."""
    line = (f"`{foreign(group.severity or 'none', 20)}` *{foreign(group.alertname, 120)}* since "
            f"{views.when(group.starts_at, '%H:%M UTC')} ({duration((now - group.starts_at).total_seconds())})")
    if group.summary:
        line += f": {foreign(group.summary, 160)}"
    if group.silence:
        line += " · silenced"
    if group.acknowledged:
        line += " · acknowledged"
    return line


def blocks(data: StatusData, config: Any, *, running: Sequence[str] = ()) -> list[dict]:
    """The status message; ``running``: a line per release running now."""
    return status_blocks.blocks(view(data, config), running=running)


def summary_text(data: StatusData) -> str:
    state = data.state
    name = data.config.stable_deployment if data.config is not None else "helloworld"
    if state is None:
        return f"{name} status: cluster unavailable ({data.cluster_error})"
    parts = []
    if state.stable:
        parts.append(f"stable {foreign(state.stable.version, 80)} {state.stable.ready}/{state.stable.desired} ready")
    if state.canary:
        parts.append(f"canary {foreign(state.canary.version, 80)} at {canary_weight(state)}%")
    if data.warnings:
        parts.append(f"{len(data.warnings)} warning(s)")
    if data.alerts:
        parts.append(f"{len(data.alerts)} alert(s) firing")
    return f"{name} status: " + ", ".join(parts)


async def release_markers(audit: AuditTrail | None, start: datetime, end: datetime, target: Target | None = None
                          ) -> list[Any]:
    """The audit trail's changes between ``start`` and ``end`` as chart markers; none when unreadable."""
    if audit is None:
        return []
    try:
        return list(await audit.markers(start, end, target))
    except Exception:  # a chart without markers is still a chart
        log.exception("cannot read release markers for the chart")
        return []


async def chart_uploads(services: Services | Shared, data: StatusData, kind: str = "all", *,
                        audit: AuditTrail | None = None) -> list[Upload]:
    """Render the chart for ``data`` off the event loop; audit markers when an audit trail exists."""
    from bot.observe import charts  # deferred: charts imports matplotlib, which a status without a chart never needs

    config = data.config or services.config
    markers = await release_markers(audit, data.snapshot.start, data.snapshot.end, data.target)
    state = data.state
    png = await charts.render_chart_async(
        data.snapshot,
        service=config.stable_deployment,
        kind=kind,
        markers=markers,
        stable_version=state.stable.version if state and state.stable else None,
        canary_version=state.canary.version if state and state.canary and canary_weight(state) else None,
    )
    name = config.stable_deployment
    return [Upload(filename=f"{name}-{kind}-{data.range}.png", content=png,
                   title=f"{name} {kind}, last {data.range} (UTC)")]


@dataclass
class OverviewLine:
    """One service in one environment, as ``/hello status`` in a channel of several services shows it."""

    service: str
    environment: str
    state: Deployed | None = None
    warnings: list[str] = field(default_factory=list)
    error: str = ""

    def text(self) -> str:
        where = f"*{views.escape(self.service)}* {views.escape(self.environment)}"
        if self.state is None:
            return f":grey_question: {where}: {foreign(self.error or 'unknown', 200)}"
        parts = []
        stable, canary = self.state.stable, self.state.canary
        if stable is not None:
            parts.append(f"stable `{views.escape(stable.version or '?')}` {stable.ready}/{stable.desired} ready")
        weight = canary_weight(self.state)
        if canary is not None and (weight or canary.desired):
            parts.append(f"canary `{views.escape(canary.version or '?')}` at {weight}%")
        mark = ":white_check_mark:" if not self.warnings else ":warning:"
        health = "healthy" if not self.warnings else f"{len(self.warnings)} warning(s): {self.warnings[0]}"
        return f"{mark} {where}: " + ", ".join([*parts, health])


async def overview(targets: list[Target], *, now: datetime | None = None) -> list[OverviewLine]:
    """Every target: from its watch caches when they have listed (one pass, nothing awaited but the connection,
    made once), the others read from their API servers concurrently; a failure is recorded on its line."""
    now = now or times.now()
    lines = [OverviewLine(target.service.name, target.environment.name) for target in targets]
    unread = []
    for target, line in zip(targets, lines, strict=True):
        try:
            line.state = (await target.cluster()).from_cache(events=False)  # the line shows no Events
        except ClusterError as exc:
            line.error = str(exc)
            continue
        if line.state is None:
            unread.append((target, line))

    async def read(target: Target, line: OverviewLine) -> None:
        try:
            line.state = await (await target.cluster()).deployed(events=False)
        except ClusterError as exc:
            line.error = str(exc)

    await asyncio.gather(*(read(target, line) for target, line in unread))
    for line in lines:
        if line.state is not None:
            line.warnings = assess(line.state, now)
    return lines
