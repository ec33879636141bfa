"""The alert card: what fires, since when, what runs, what changed before it, and what to do.

:func:`gather` reads what the card shows besides the alert (the service's live versions and weights,
the last changes from the audit trail); :func:`render_card` is pure: a stored group and that context in,
the message's fallback text and its blocks (laid out by :mod:`bot.chat.views.alert_card`) out.
Everything that came from Alertmanager (names, annotations, label values, the generator URL) is cut and
escaped here before it reaches the blocks.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from bot.chat.views import alert_card as card_view
from bot.chat.views.alert_card import ABORT, ACK, ROLLBACK, SILENCE
from bot.chat.views.fmt import when
from bot.cluster.kube import Deployed
from bot.core.durations import duration
from bot.core.errors import DependencyUnavailable
from bot.core.text import escape, foreign
from bot.core.times import parse_time
from bot.observe.grafana import prometheus_graph_url
from bot.observe.status import release_markers

if TYPE_CHECKING:
    from bot.core.ports import AuditTrail
    from bot.core.services import Shared
    from bot.observe.alerts import AlertGroup

__all__ = ["ABORT", "ACK", "ROLLBACK", "SILENCE", "CardContext", "chart", "foreign", "gather", "render_card", "when"]

log = logging.getLogger(__name__)

CHANGE_VERBS = {"Deploy": "deployed", "Canary": "set the canary to", "Rollback": "rolled back",
                "Promote": "promoted", "Abort": "aborted the canary", "EnvPromote": "promoted"}
MAX_CHANGES = 3
CHART_RANGE = "1h"
ICONS = {"critical": ":red_circle:", "error": ":red_circle:", "warning": ":large_orange_circle:",
         "info": ":large_blue_circle:"}
_USER = re.compile(r"^[UW][A-Z0-9]{1,20}$")


@dataclass
class CardContext:
    state: Deployed | None = None
    state_error: str = ""
    changes: list[str] = field(default_factory=list)  # mrkdwn lines, written by the bot (values escaped)
    changes_error: str = ""
    where: str = ""  # several services: "greeter (production)", the pair the card is about
    ambiguous: bool = False  # several services: the group is no single pair's (no Roll back / Abort canary)
    prometheus_urls: tuple[str, ...] = ()  # the Prometheus servers the bot is configured with: the only link hosts


def _mention(user: str) -> str:
    return f"<@{user}>" if _USER.match(user or "") else "someone"


def change_line(entry: Any, starts_at: datetime) -> str:
    """``deployed v2.3 by <@U1>, 6 min before the alert`` for one audit entry."""
    verb = CHANGE_VERBS.get(entry.verb, entry.verb.lower())
    version = str(entry.facts.get("version") or "")
    what = verb
    if entry.verb == "Canary" and "percent" in entry.facts:
        what += f" {foreign(version, 40)} {foreign(entry.facts['percent'], 8)}%"
    elif version:
        what += f" {foreign(version, 40)}"
    if entry.phase == "Failed":
        what += " (failed)"
    who = getattr(entry, "requester", "") or entry.user
    seconds = (starts_at - entry.at).total_seconds()
    minutes = round(abs(seconds) / 60)
    if minutes == 0:
        relation = "less than a minute before the alert" if seconds >= 0 else "as the alert started"
    else:
        relation = f"{minutes} min before the alert" if seconds >= 0 else f"{minutes} min after the alert started"
    return f"{what} by {_mention(who)}, {relation}"


def last_changes(entries: list[Any], starts_at: datetime, n: int = MAX_CHANGES) -> list[str]:
    """The ``n`` changes that finished nearest before the alert's start (or after it), newest first."""
    done = [e for e in entries if e.verb in CHANGE_VERBS and e.phase in ("Succeeded", "Failed")]
    before = [e for e in done if e.at <= starts_at + timedelta(minutes=1)]
    after = [e for e in done if e.at > starts_at + timedelta(minutes=1)]
    chosen = sorted(before, key=lambda e: e.at, reverse=True)[:n]
    chosen += sorted(after, key=lambda e: e.at)[: max(0, n - len(chosen))]
    return [change_line(e, starts_at) for e in chosen]


async def gather(services: Shared, audit: AuditTrail, group: AlertGroup) -> CardContext:
    """The live release and the last changes; a failure of either is said on the card, never raised.

    With several services they are those of the group's service and environment; an ambiguous group's
    card shows neither (it is about no single service).
    """
    place = group.place
    known = known_prometheus(services)
    if place is not None and place.ambiguous:
        return CardContext(ambiguous=True, prometheus_urls=known)
    target = services.target(group.service, group.environment)  # "": the bot's own (one service)
    context = CardContext(where=place.label if place is not None else "", prometheus_urls=known)
    try:
        cluster = await target.cluster()
        context.state = await cluster.deployed()
    except DependencyUnavailable as exc:
        context.state_error = str(exc)
    try:
        context.changes = last_changes(await audit.entries(target), group.starts_at)
    except DependencyUnavailable as exc:
        context.changes_error = str(exc)
    return context


def known_prometheus(services: Shared) -> tuple[str, ...]:
    """The Prometheus servers the bot is configured with: ``PROMETHEUS_URL`` and every environment's own."""
    urls = [services.config.prometheus_url]
    catalogue = services.catalogue
    for service in catalogue.services if catalogue is not None else ():
        urls += [env.prometheus_url for env in service.environments if env.prometheus_url]
    return tuple(dict.fromkeys(u for u in urls if u))


def source_link(generator_url: str, prometheus_urls: tuple[str, ...]) -> str:
    """The "Open in Prometheus" link of an alert: its expression (``g0.expr`` of Alertmanager's
    ``generatorURL``) in the graph page of the configured Prometheus server that URL names, rebuilt from the
    expression — never the URL as received, so no other host, user part or parameter gets into a button
    ("" when the URL names no configured server or carries no expression)."""
    try:
        given = urlsplit(generator_url or "")
        port = given.port
    except ValueError:
        return ""
    if given.scheme not in ("http", "https") or given.username or given.password or not given.hostname:
        return ""
    expr = next((v for k, v in parse_qsl(given.query) if k == "g0.expr"), "")
    for base in prometheus_urls:
        known = urlsplit(base)
        if (known.scheme, known.hostname, known.port) == (given.scheme, given.hostname, port) and expr:
            return prometheus_graph_url(base, [expr[:2000]])
    return ""


def canary_weight(state: Deployed | None) -> int:
    if state is None or state.canary_route is None or state.canary is None:
        return 0
    return state.canary_route.weight or 0


def live_line(context: CardContext) -> str:
    if context.ambiguous:
        return ("*Live:* not shown: the alerts' labels fit several services or environments of the catalogue "
                "(add a `service` or `cluster` label to the alerting rule to tell them apart)")
    state = context.state
    if state is None:
        return f":warning: The release cannot be read: {foreign(context.state_error or 'unknown', 200)}"
    parts = []
    if state.stable is not None:
        weight = state.stable_route.weight if state.stable_route else None
        share = "the rest of traffic" if weight is None else f"{weight}%"
        parts.append(f"stable `{foreign(state.stable.version or '?', 60)}` "
                     f"{state.stable.ready}/{state.stable.desired} ready · {share}")
    weight = canary_weight(state)
    if state.canary is not None and (weight or state.canary.desired):
        parts.append(f"canary `{foreign(state.canary.version or '?', 60)}` "
                     f"{state.canary.ready}/{state.canary.desired} ready · {weight}%")
    return "*Live:* " + ("; ".join(parts) if parts else "nothing running")


def render_card(group: AlertGroup, context: CardContext, now: datetime) -> tuple[str, list[dict]]:
    """The card's fallback text and blocks (pure)."""
    name = foreign(group.alertname, 120)
    severity = foreign(group.severity or "no severity", 30)
    if group.firing:
        icon = ICONS.get(group.severity, ":red_circle:")
        head = f"{icon} *Firing: {name}* · {severity}"
        since = (f"Since {when(group.starts_at, '%H:%M UTC')} ({duration((now - group.starts_at).total_seconds())})")
        text = f"Firing: {group.alertname[:120]} ({group.severity or 'no severity'}) since " \
               f"{when(group.starts_at, '%H:%M UTC')}"
    else:
        ended = group.ends_at or now
        took = duration((ended - group.starts_at).total_seconds())
        head = f":large_green_circle: *Resolved: {name}* · {severity} · after {took}"
        since = f"From {when(group.starts_at, '%H:%M UTC')} to {when(ended, '%H:%M UTC')}"
        text = f"Resolved: {group.alertname[:120]} after {took}"
    if context.where:
        head += f" · *{escape(context.where)}*"
        text += f" — {context.where}"
    elif context.ambiguous:
        head += " · _service and environment not known_"
    text = escape(text)
    about = [foreign(group.summary, 300)] if group.summary else []
    if group.description and group.description != group.summary:
        about.append(f"_{foreign(group.description, 600)}_")
    where = ", ".join(f"{foreign(k, 40)}={foreign(v, 80)}" for k, v in sorted(group.group_labels.items())
                      if k != "alertname")
    count = (f"{group.firing_count} of {group.alert_count} alerts firing" if group.firing
             else f"{group.alert_count} alert{'s' if group.alert_count != 1 else ''}")
    card = card_view.AlertCard(
        id=group.id, head=head, facts=" · ".join(p for p in (since, count, where) if p), live=live_line(context),
        about=tuple(about), changes=tuple(context.changes),
        changes_error=foreign(context.changes_error, 200) if context.changes_error else "", notes=notes(group),
        firing=group.firing, roll_back=not context.ambiguous, abort=canary_weight(context.state) > 0,
        silenced=bool(group.silence), source=source_link(group.generator_url, context.prometheus_urls))
    return text, card_view.blocks(card)


def notes(group: AlertGroup) -> tuple[str, ...]:
    """What happened to the alert besides firing: rolled back in a bake window, silenced, acknowledged."""
    out = []
    if group.release_note:
        out.append(group.release_note)
    if group.silence:
        until = parse_time(group.silence.get("until", ""))
        until_text = when(until, "%H:%M UTC") if until is not None else "?"
        out.append(f":mute: silenced by {_mention(group.silence.get('user', ''))} until {until_text}")
    if group.acknowledged:
        who = ", ".join(_mention(a.get("user", "")) for a in group.acknowledged)
        out.append(f":eyes: acknowledged by {who}")
    return tuple(out)


async def chart(services: Shared, audit: AuditTrail, group: AlertGroup, now: datetime) -> bytes | None:
    """A chart of the hour around the alert's start (up to 30 min after it), changes marked; None without traffic.

    Raises :class:`DependencyUnavailable` when Prometheus cannot be read.
    """
    from bot.observe import charts

    target = services.target(group.service, group.environment)  # "": the bot's own (one service, or unknown)
    prometheus = target.prometheus
    if prometheus is None:
        raise DependencyUnavailable("Prometheus is not configured")
    end = min(now, group.starts_at + timedelta(minutes=30))
    snapshot = await prometheus.snapshot(CHART_RANGE, now=end)
    if snapshot is None or not getattr(snapshot, "has_traffic", False):
        return None
    markers = await release_markers(audit, snapshot.start, snapshot.end, target)
    markers.append(charts.Marker(at=group.starts_at, label=f"alert {group.alertname[:40]}", kind="rollback"))
    return await charts.render_chart_async(snapshot, service=target.config.stable_deployment, kind="all",
                                           markers=markers)
