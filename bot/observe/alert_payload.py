"""Alertmanager's webhook body (version "4") parsed into a :class:`Notification` (pure).

Alertmanager posts a notification to ``POST /alertmanager`` each time an alert group starts firing,
changes, repeats or resolves. :func:`parse` turns the decoded JSON into a :class:`Notification`, or
raises :class:`AlertPayloadError` with a short reason (our words only) for a body it cannot use.
:func:`belongs` and :func:`ours` keep the alerts of the one service (no catalogue file): those whose
``namespace`` label is ``HELLO_NAMESPACE`` or whose ``service`` label is the stable Deployment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.times import parse_time


class AlertPayloadError(ValueError):
    """The webhook body is not a usable Alertmanager notification; the message says why (our words only)."""


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str = ""

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


@dataclass(frozen=True)
class Notification:
    group_key: str
    status: str
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertPayloadError(f"{what} is not an object")
    return {str(k): str(v) for k, v in value.items()}


# RFC 3339's date-time: a full date, "T", a full time with optional fractions, and a zone ("Z" or an offset)
RFC_3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def _time(value: Any, what: str) -> datetime | None:
    """Alertmanager's RFC 3339 times, read strictly (a time without a zone, or any other form, is refused);
    absent or its "zero" time (``0001-01-01T00:00:00Z``) means none."""
    if value is None or value == "" or (isinstance(value, str) and value.startswith("0001-01-01T00:00:00")):
        return None
    moment = parse_time(value) if isinstance(value, str) and RFC_3339.fullmatch(value) else None
    if moment is None:
        raise AlertPayloadError(f"an alert's {what} is not an RFC 3339 time")
    return moment


def _alert(raw: Any) -> Alert:
    if not isinstance(raw, dict):
        raise AlertPayloadError("an alert is not an object")
    return Alert(
        fingerprint=str(raw.get("fingerprint") or ""),
        status="resolved" if raw.get("status") == "resolved" else "firing",
        labels=_strings(raw.get("labels"), "an alert's labels"),
        annotations=_strings(raw.get("annotations"), "an alert's annotations"),
        starts_at=_time(raw.get("startsAt"), "startsAt"), ends_at=_time(raw.get("endsAt"), "endsAt"),
        generator_url=str(raw.get("generatorURL") or ""),
    )


def parse(payload: Any) -> Notification:
    """A webhook body (decoded JSON) as a :class:`Notification`; raises :class:`AlertPayloadError`."""
    if not isinstance(payload, dict):
        raise AlertPayloadError("the body is not a JSON object")
    if payload.get("version") != "4":
        raise AlertPayloadError("not an Alertmanager webhook of version 4")
    key = payload.get("groupKey")
    if not isinstance(key, str) or not key:
        raise AlertPayloadError("no groupKey")
    status = payload.get("status")
    if status not in ("firing", "resolved"):
        raise AlertPayloadError("status is neither firing nor resolved")
    raw_alerts = payload.get("alerts")
    if not isinstance(raw_alerts, list):
        raise AlertPayloadError("alerts is not a list")
    alerts = tuple(_alert(raw) for raw in raw_alerts)
    truncated = payload.get("truncatedAlerts")
    return Notification(
        group_key=key, status=status, receiver=str(payload.get("receiver") or ""),
        group_labels=_strings(payload.get("groupLabels"), "groupLabels"),
        common_labels=_strings(payload.get("commonLabels"), "commonLabels"),
        common_annotations=_strings(payload.get("commonAnnotations"), "commonAnnotations"),
        external_url=str(payload.get("externalURL") or ""), alerts=alerts,
        truncated_alerts=truncated if isinstance(truncated, int) and truncated > 0 else 0,
    )


def belongs(alert: Alert, namespace: str, service: str) -> bool:
    """Whether ``alert`` is about the service: its ``namespace`` or ``service`` label names it."""
    return alert.labels.get("namespace") == namespace or alert.labels.get("service") == service


def ours(notification: Notification, namespace: str, service: str) -> Notification | None:
    """The notification with only the service's alerts, or None when none of them is the service's."""
    kept = tuple(a for a in notification.alerts if belongs(a, namespace, service))
    if not kept:
        return None
    return only(notification, kept)


def only(notification: Notification, kept: tuple[Alert, ...]) -> Notification:
    """The notification with just the alerts ``kept`` (itself when that is all of them)."""
    if len(kept) == len(notification.alerts):
        return notification
    return Notification(**{**notification.__dict__, "alerts": kept})
