"""The critical alerts of one service in one environment: what the bake window and `/hello promote` ask.

Both read them here, so both follow one rule (docs/operator-guide.md, "Alerts with several services"). With one
service (no catalogue) an alert is the service's when its ``namespace`` or its ``service`` label names it.
With a catalogue, Alertmanager is asked for the critical alerts of the environment's namespace and only
those that belong to exactly this service and environment count (:func:`bot.observe.alert_places.bakes`): where
environments share a namespace name, an alert counts only when its ``cluster`` (or ``environment``) label
is this environment, so one environment's alerts never stand for another's.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.catalogue import Catalogue
from bot.core.target import Target
from bot.observe.alert_places import bakes
from bot.observe.alertmanager import ActiveAlert, Alertmanager


async def critical_alerts(target: Target, catalogue: Catalogue, *, since: datetime | None = None) -> list[ActiveAlert]:
    """The critical alerts firing for ``target`` (of ``catalogue``), oldest first.

    With ``since``, only alerts that started then or later count (and those that do not say when they started).
    Raises :class:`~bot.core.errors.DependencyUnavailable` when Alertmanager (``config.alertmanager_url``)
    cannot be asked.
    """
    config = target.config
    alertmanager = Alertmanager(config.alertmanager_url)
    if target.named:
        queries: tuple[dict[str, str], ...] = ({"namespace": config.namespace},)
    else:
        queries = ({"namespace": config.namespace}, {"service": config.stable_deployment})
    found: dict[str, ActiveAlert] = {}
    for who in queries:
        for alert in await alertmanager.active({**who, "severity": "critical"}):
            if target.named and not bakes(dict(alert.labels), catalogue, *target.names):
                continue
            if since is not None and alert.starts_at is not None and alert.starts_at < since:
                continue
            found[alert.fingerprint or alert.name] = alert
    return sorted(found.values(), key=lambda a: (a.starts_at is None, a.starts_at or datetime.min))
