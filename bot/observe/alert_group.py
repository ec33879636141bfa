"""One Alertmanager alert group as the bot stores it, and :func:`merge`, which brings it up to date (pure).

Every text kept from Alertmanager is cut here (:data:`TEXT_LIMIT`, :data:`KEEP_ALERTS`,
:data:`GROUP_LABELS_LIMIT`), so a stored group stays small whatever the webhook carried.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from bot.core.text import cut
from bot.core.times import iso, parse_time
from bot.observe.alert_payload import Alert, Notification
from bot.observe.alert_places import AMBIGUOUS, Place, scope, spread

KEEP_ALERTS = 20  # alerts kept per group (the card says how many there were in all)
TEXT_LIMIT = 400  # characters kept of an annotation
GROUP_LABELS_LIMIT = 2048  # bytes of JSON: Alertmanager groups by a few short labels
KEY_LIMIT = 1024  # characters kept of the group key (its id is the hash of the whole key)
SEVERITY_LIMIT = 40  # characters kept of a severity
LABEL_LIMIT = 256  # a longer label value a silence would match: the group's labels are not kept (no silence)
SEVERITY_RANK = {"critical": 4, "error": 3, "warning": 2, "info": 1}
FLOOD = "flood"  # the kind of a flood card (bot.observe.alert_flood), stored beside the groups
_TIMES = ("starts_at", "ends_at", "received", "claimed", "arrived")


def group_id(group_key: str) -> str:
    """A name-safe id for an Alertmanager group key (its object is named after it)."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:16]


def highest(severities: list[str]) -> str:
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0), default="")


@dataclass
class AlertGroup:
    """One Alertmanager alert group as stored (and as its card shows it)."""

    id: str
    key: str
    status: str
    alertname: str
    severity: str
    starts_at: datetime
    ends_at: datetime | None = None
    channel: str = ""
    ts: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # compact: see _compact
    alert_count: int = 0
    firing_count: int = 0
    summary: str = ""
    description: str = ""
    generator_url: str = ""
    received: datetime | None = None  # the last notification
    notifications: int = 0
    revision: int = 0  # grows with every change the card should show
    claim: str = ""  # the token of the replica that posts the card
    claimed: datetime | None = None
    acknowledged: list[dict[str, str]] = field(default_factory=list)  # [{"user", "at"}]
    silence: dict[str, str] = field(default_factory=dict)  # {"id", "user", "until"}
    chart: bool = False  # the chart was uploaded (or said to be unavailable) in the card's thread
    release_note: str = ""  # what a release did about this alert (its bake window rolled back), mrkdwn
    # several services: the catalogue's pair the group belongs to ("" for both: ambiguous, or one service)
    service: str = ""
    environment: str = ""
    ambiguous: bool = False
    scope: dict[str, str] = field(default_factory=dict)  # namespace / cluster labels its alerts share
    spread: dict[str, list[str]] = field(default_factory=dict)  # cluster / environment values where they differ
    pairs: list[list[str]] = field(default_factory=list)  # several services: every [service, environment] it fits
    arrived: datetime | None = None  # its first notification
    digest: str = ""  # the flood card it is summarised on instead of a card of its own (bot.observe.alert_flood)
    kind: str = ""  # "" an alert group; "flood": a flood card
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # a flood card's groups, short (alert_flood)

    @property
    def place(self) -> Place | None:
        """Its pair (several services), :data:`AMBIGUOUS`, or None (one service: no catalogue file)."""
        if self.service:
            return Place(service=self.service, environment=self.environment)
        return AMBIGUOUS if self.ambiguous else None

    def silence_matchers(self) -> list[tuple[str, str, bool]]:
        """What Silence 1h matches, as (label, value, is a regex): the group's labels, the namespace (and cluster)
        its alerts share, and the cluster / environment values they carry where those differ (a regex of
        exactly those values, so no other cluster's alert is silenced); [] when its labels were too long."""
        if not self.group_labels:
            return []
        equal = sorted((k, v, False) for k, v in {**self.group_labels, **self.scope}.items())
        return equal + sorted((k, "|".join(re.escape(v) for v in values), True) for k, values in self.spread.items()
                              if k not in self.group_labels)

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # its values are JSON already: no deep copy
        for name in _TIMES:
            data[name] = iso(getattr(self, name))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AlertGroup:
        data = json.loads(text)
        for name in _TIMES:
            data[name] = parse_time(data.get(name))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _compact(alert: Alert) -> dict[str, Any]:
    """What is kept of one alert: enough to tell the alerts of a group apart (the card shows the group)."""
    return {
        "fingerprint": alert.fingerprint[:40], "status": alert.status,
        "instance": cut(alert.labels.get("instance", ""), 80),
        "starts_at": iso(alert.starts_at), "ends_at": iso(alert.ends_at),
    }


def _group_labels(labels: dict[str, str]) -> dict[str, str]:
    """The group's labels exactly (they become a silence's matchers), or {} when they are unreasonably long."""
    if len(json.dumps(labels)) > GROUP_LABELS_LIMIT:
        return {}
    return dict(labels)


def merge(group: AlertGroup | None, notification: Notification, now: datetime, channel: str,
          place: Place | None = None, pairs: list[list[str]] | None = None) -> AlertGroup:
    """The group after ``notification`` (pure): a new group, or the stored one brought up to date.

    ``place`` (several services): the pair the notification's alerts belong to, kept with the group (and
    ``pairs``, every pair they fit); the cluster / environment labels a silence matches are kept in any case;
    the channel is the one of its first notification (the card stays where it was posted).
    """
    alerts = notification.alerts
    firing = [a for a in alerts if a.status == "firing"]
    starts = [a.starts_at for a in alerts if a.starts_at is not None]
    ends = [a.ends_at for a in alerts if a.ends_at is not None]
    first = alerts[0] if alerts else None
    shown = firing[0] if firing else first
    annotations = {**(shown.annotations if shown else {}), **notification.common_annotations}
    if group is None:
        group = AlertGroup(id=group_id(notification.group_key), key=cut(notification.group_key, KEY_LIMIT),
                           status="firing", arrived=now,
                           alertname="", severity="", starts_at=min(starts, default=now), channel=channel)
    group.status = notification.status
    group.alertname = cut(notification.common_labels.get("alertname")
                          or notification.group_labels.get("alertname")
                          or (first.labels.get("alertname", "") if first else "") or "alert", 120)
    group.severity = cut(highest([a.severity for a in (firing or list(alerts))]), SEVERITY_LIMIT) or group.severity
    if starts:
        group.starts_at = min([*starts, group.starts_at])
    group.ends_at = max(ends) if notification.status == "resolved" and ends else (
        now if notification.status == "resolved" else None)
    group.group_labels = _group_labels(notification.group_labels)
    group.alerts = [_compact(a) for a in alerts[:KEEP_ALERTS]]
    group.alert_count = len(alerts) + notification.truncated_alerts
    group.firing_count = len(firing)
    group.summary = cut(annotations.get("summary", ""), TEXT_LIMIT)
    group.description = cut(annotations.get("description", ""), TEXT_LIMIT)
    group.generator_url = (shown.generator_url if shown else "")[:1000]
    group.received = now
    group.notifications += 1
    group.revision += 1
    if place is not None:
        group.service, group.environment, group.ambiguous = place.service, place.environment, place.ambiguous
        group.pairs = list(pairs or [])
    group.scope, group.spread = scope(alerts), spread(alerts)
    values = [*group.scope.values(), *(v for vs in group.spread.values() for v in vs)]
    if any(len(v) > LABEL_LIMIT for v in values):  # not kept: such a group is silenced in Alertmanager itself
        group.group_labels, group.scope, group.spread = {}, {}, {}
    return group
