"""Publishing the App Home tab: gathered from the requests, the releases, the cluster and the audit trail.

A user's Home is published when they open it (``app_home_opened``) and again, debounced, after every
change for the users who opened it in the last :data:`RECENT` seconds, so an open Home stays current
without a ``views.publish`` per click (Slack rate-limits that method per user).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.chat import views
from bot.chat.supervise import Supervisor, guard
from bot.chat.views.home import HomeData, Pending, ServiceStatus, view
from bot.core import times
from bot.core.audit_entry import AuditEntry
from bot.core.errors import DependencyUnavailable, PermissionDenied
from bot.core.text import foreign
from bot.observe import delivery, status
from bot.observe.status import canary_weight
from bot.release.lifecycle import PENDING

if TYPE_CHECKING:
    from bot.chat.messenger import Messenger
    from bot.core.config import Config
    from bot.core.policy import Policy
    from bot.core.ports import AlertDesk, AuditTrail, Releases, Requests, Schedules
    from bot.core.target import Targets

log = logging.getLogger(__name__)

RECENT = 3600.0  # seconds: whose Home is kept current after they opened it
DEBOUNCE = 1.0  # seconds: changes closer than this republish once


class Home:
    """The App Home tabs: what a person may do, what waits for them, what runs, services, alerts and schedules."""

    def __init__(self, config: Config, messenger: Messenger, policy: Policy, targets: Targets, *, approvals: Requests,
                 releases: Releases, audit: AuditTrail, alerts: AlertDesk, schedules: Schedules,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self.messenger, self.policy, self.targets = config, messenger, policy, targets
        self.approvals, self.releases, self.audit = approvals, releases, audit
        self.alerts, self.schedules = alerts, schedules
        self.clock = clock
        self._opened: dict[str, float] = {}
        self._pending: asyncio.Task | None = None
        self.supervisor = Supervisor()

    async def opened(self, user: str) -> None:
        """``app_home_opened``: remember the user and publish their Home now."""
        self._opened[user] = self.clock()
        await self.publish(user)

    def changed(self) -> None:
        """Something changed: republish, once within :data:`DEBOUNCE`, for the users who look at Home."""
        now = self.clock()
        self._opened = {u: t for u, t in self._opened.items() if now - t < RECENT}
        if not self._opened or (self._pending is not None and not self._pending.done()):
            return

        async def later() -> None:
            await asyncio.sleep(DEBOUNCE)
            # side by side: one person's slow or rate-limited publish holds nobody else's
            await asyncio.gather(*(guard(self.publish(u), f"home {u}", kind="home") for u in list(self._opened)))

        self._pending = self.supervisor.spawn(later(), "home republish", kind="home")

    async def publish(self, user: str) -> None:
        if self.messenger.stopped:
            return  # the workspace removed the app or revoked its token (app_uninstalled, tokens_revoked)
        data = await self.gather(user)
        try:
            await self.messenger.publish_home(user, view(data))
        except DependencyUnavailable as exc:
            log.warning("cannot publish the Home of %s: %s", user, exc)

    async def gather(self, user: str) -> HomeData:
        """Everything the Home shows for ``user``; a part that cannot be read is named, not fatal.

        A person the read policy refuses (``HELLO_READERS``) sees only why, as ``/hello status`` would tell them.
        """
        data = HomeData(user=user)
        try:
            await self.policy.check_read(user)
        except PermissionDenied as exc:
            data.refused = str(exc)
            return data
        await self._rights(data)
        await self._waiting(data)
        await self._running(data)
        entries = await self._service_part(data)
        await self._alerts(data)
        await self._delivery(data, entries)
        await self._schedules(data)
        return data

    async def _rights(self, data: HomeData) -> None:
        config, policy = self.config, self.policy
        try:
            await policy.check_change(data.user, config.ops_channels[0] if config.ops_channels else "")
            data.may.append("ask for deploys, canaries, rollbacks and certificate renewals")
        except PermissionDenied:
            pass
        if (await policy.can_approve(data.user, ""))[0]:
            data.may.append("approve other people's requests")

    async def _waiting(self, data: HomeData) -> None:
        """The requests waiting for this user's approval (not those they approved already)."""
        approvals, user = self.approvals, data.user
        if approvals is None:
            return
        try:
            records = await approvals.store.shown()  # a display: the watch cache, once listed
            now = approvals.clock()
            for r in sorted(records.values(), key=lambda r: r.created):
                if r.state != PENDING or r.expired(now) or not r.ts or user in r.approvals:
                    continue  # not waiting, or waiting for others than this user (who approved already)
                if (await approvals.target_of(r.change).policy.can_approve(user, r.requester))[0]:
                    data.pending.append(Pending(id=r.id, label=r.change.label, summary=r.change.summary,
                                                requester=r.requester, channel=r.channel,
                                                expires=views.when(times.parse_time(r.expires), "%H:%M UTC")))
        except DependencyUnavailable as exc:
            data.problems.append(f"requests: {exc}")

    async def _running(self, data: HomeData) -> None:
        if self.releases is not None:
            try:
                data.running = [r.running_line() for r in await self.releases.open_releases()]
            except DependencyUnavailable as exc:
                data.problems.append(f"releases: {exc}")

    async def _service_part(self, data: HomeData) -> list[AuditEntry] | None:
        """The service (or with a catalogue file, every service in every environment) and the last changes;
        returns the audit records read for every service (None when not read that way)."""
        if self.targets.named:
            data.services = await self._services()
            entries = await self._entries(data)
            data.changes = [_change_line(e) for e in (entries or [])[:8]]
            return entries
        try:
            state = await (await self.targets.default.cluster()).deployed()
            data.service = _service_lines(state)
        except DependencyUnavailable as exc:
            data.problems.append(f"cluster: {exc}")
        if self.audit is not None:
            try:
                data.changes = [_change_line(e) for e in await self.audit.recent(8)]
            except DependencyUnavailable as exc:
                data.problems.append(f"audit trail: {exc}")
        return None

    async def _alerts(self, data: HomeData) -> None:
        alerts = self.alerts
        if alerts is not None:
            try:
                data.alerts = [f":rotating_light: *{foreign(g.alertname, 80)}* "
                               f"({foreign(g.severity or 'no severity', 20)}) since "
                               f"{views.when(g.starts_at, '%m-%d %H:%M')}" for g in await alerts.store.shown()]
            except DependencyUnavailable as exc:
                data.problems.append(f"alerts: {exc}")

    async def _delivery(self, data: HomeData, entries: list[AuditEntry] | None) -> None:
        if self.audit is not None and (entries is not None or not self.targets.named):
            try:
                read = entries if entries is not None else await self.audit.entries()
                figures = delivery.compute(read, end=times.now(), days=30)
                data.delivery = views.escape(delivery.summary_line(figures))
            except DependencyUnavailable as exc:
                data.problems.append(f"delivery figures: {exc}")

    async def _schedules(self, data: HomeData) -> None:
        if self.schedules is not None:
            try:
                listed = await self.schedules.list(shown=True)  # a display: the watch cache, once listed
                data.schedules = [f"`{item.entry.cron}` in <#{item.entry.channel}> · next "
                                  f"{views.when(item.next, '%m-%d %H:%M')}" for item in listed]
            except DependencyUnavailable as exc:
                data.problems.append(f"schedules: {exc}")

    async def _services(self) -> list[ServiceStatus]:
        """Each service in each environment of the catalogue, read concurrently (``/hello status``'s reading)."""
        now = times.now()
        return [_service_status(line, now) for line in await status.overview(self.targets.every(), now=now)]

    async def _entries(self, data: HomeData) -> list[AuditEntry] | None:
        """The audit records of every service and environment (each namespace read once), newest first;
        ``None`` without an audit trail or when none could be read."""
        audit = self.audit
        if audit is None:
            return None
        entries, problems = await audit.everywhere()
        data.problems.extend(problems)
        return entries


def _change_line(entry: AuditEntry) -> str:
    return (f"{views.when(entry.at, '%m-%d %H:%M')} *{foreign(entry.verb, 40)}* {foreign(entry.phase, 40)} "
            f"by <@{entry.user}>: {foreign(entry.summary, 200)}")


def _service_status(line: Any, now: Any) -> ServiceStatus:
    """A :class:`~bot.observe.status.OverviewLine` as Home's section: versions, canary, certificate, health."""
    state = line.state
    if state is None:
        text = f":grey_question: cannot read it: {foreign(line.error or 'unknown', 200)}"
        return ServiceStatus(line.service, line.environment, (text,), line.text())
    lines = [f"*{track.name}* `{foreign(track.version or '?', 40)}` {track.ready}/{track.desired} ready"
             for track in (state.stable, state.canary) if track is not None
             and (track.name != "canary" or track.desired or canary_weight(state))]
    weight = canary_weight(state)
    if weight:
        lines.append(f"canary gets {weight}% of the traffic")
    extra = ""
    cert = state.certificate
    days = cert.days_left(now) if cert is not None else None
    if cert is not None and days is not None:
        lines.append(f"certificate `{foreign(cert.name, 60)}`: {max(days, 0):.0f} days left")
        extra = f" · certificate {max(days, 0):.0f} days"
    health = (":white_check_mark: healthy" if not line.warnings
              else f":warning: {len(line.warnings)} warning(s): " + "; ".join(line.warnings[:3]))
    lines.append(health[:1000])
    return ServiceStatus(line.service, line.environment, tuple(lines), line.text() + extra)




def _service_lines(state: object) -> list[str]:
    lines = []
    for track in (state.stable, state.canary):  # type: ignore[attr-defined]
        if track is not None:
            lines.append(f"*{track.name}* `{foreign(track.version, 40)}` {track.ready}/{track.desired} ready")
    weight = state.canary_route.weight if state.canary_route else None  # type: ignore[attr-defined]
    if weight:
        lines.append(f"canary gets {weight}% of the traffic")
    cert = state.certificate  # type: ignore[attr-defined]
    if cert is not None and cert.not_after is not None:
        lines.append(f"certificate `{foreign(cert.name, 60)}` valid until {views.when(cert.not_after)}")
    return lines
