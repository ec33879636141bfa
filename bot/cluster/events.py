"""Kubernetes Events of the namespace: the warnings status and rollouts show, and the audit records.

``cluster.events`` is the part of :class:`~bot.cluster.kube.Cluster` that reaches them. The audit trail
(:mod:`bot.release.audit`) writes its records as Events with :meth:`Events.create` and reads them back with
:meth:`Events.list` (the API server, now) or, to display them, :meth:`Events.shown` (the watch cache once it has
listed); :meth:`Events.warnings` gives the recent warnings, their messages scrubbed of anything
that looks like a credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.cluster.cache import Caches, events
from bot.cluster.client import Api, scrub
from bot.core.times import parse_time


@dataclass(frozen=True)
class EventInfo:
    type: str
    reason: str
    message: str
    object: str  # "Pod/helloworld-abc"
    count: int
    last_seen: datetime | None


def event_from(raw: dict) -> EventInfo:
    involved = raw.get("involvedObject") or {}
    return EventInfo(
        type=raw.get("type", ""), reason=raw.get("reason", ""), message=scrub(raw.get("message", ""))[:300],
        object=f"{involved.get('kind', '')}/{involved.get('name', '')}", count=int(raw.get("count") or 1),
        last_seen=parse_time(raw.get("lastTimestamp") or raw.get("eventTime")
                             or (raw.get("metadata") or {}).get("creationTimestamp")),
    )


def warnings_of(items: list[dict], *, limit: int = 20) -> list[EventInfo]:
    """The ``limit`` most recent Warning events of ``items`` (the API's JSON), newest first."""
    out = [event_from(e) for e in items if e.get("type") == "Warning"]
    out.sort(key=lambda ev: ev.last_seen or datetime.min.replace(tzinfo=UTC), reverse=True)
    return out[:limit]


class Events:
    """The Events of the namespace (``caches``: the watch caches of its connection, for :meth:`shown`)."""

    def __init__(self, api: Api, caches: Caches | None = None) -> None:
        self.api = api
        self.caches = caches

    async def warnings(self, *, limit: int = 20) -> list[EventInfo]:
        """The ``limit`` most recent Warning events, newest first."""
        found = await self.api.call("list", "events", None, self.api.core.list_namespaced_event, self.api.namespace,
                                    field_selector="type=Warning")
        return warnings_of(found.get("items", []), limit=limit)

    async def list(self, label_selector: str | None = None) -> list[dict]:
        """The Events (as the API's JSON), all or those ``label_selector`` picks."""
        kwargs = {"label_selector": label_selector} if label_selector else {}
        found = await self.api.call("list", "events", None, self.api.core.list_namespaced_event, self.api.namespace,
                                    **kwargs)
        return found.get("items", [])

    async def shown(self, label_selector: str) -> list[dict]:
        """The Events ``label_selector`` picks, for display only: from the namespace's watch cache of them once it
        has listed and while its watch is kept (no API read), else as :meth:`list`. Never for a decision: it may
        lag a write by a watch event."""
        informer = self.caches.current(self.api.namespace, events(label_selector).key) if self.caches else None
        if informer is None:
            return await self.list(label_selector)
        return informer.items()

    async def create(self, body: dict) -> dict:
        return await self.api.call("create", "events", None, self.api.core.create_namespaced_event,
                                   self.api.namespace, body)
