"""The schedules' store: chat-made schedules and every schedule's posting state, in one ConfigMap.

Schedules come from configuration (``HELLO_SCHEDULES``; ids ``c…`` derived from their content,
:func:`config_id`) and from chat (``/hello schedule add``; ids ``s…``). The chat-made ones and every
schedule's state (:class:`SlotState`) live in the ConfigMap :data:`CONFIGMAP`, written with the
resourceVersion that was read (:class:`~bot.cluster.store.ConfigMapStore`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.cluster.cache import OwnCache, configmap
from bot.cluster.informer import Informer
from bot.cluster.store import ConfigMapStore
from bot.core.times import iso, parse_time

if TYPE_CHECKING:
    from bot.cluster.kube import Cluster
    from bot.core.config import Config

log = logging.getLogger(__name__)

CONFIGMAP = "hello-chatops-schedules"
SCHEDULES_KEY = "schedules.json"
STATE_KEY = "state.json"
CAS_ATTEMPTS = 8


@dataclass(frozen=True)
class Entry:
    """One schedule. ``source`` is ``config`` (from HELLO_SCHEDULES) or ``chat``."""

    id: str
    cron: str
    channel: str
    range: str
    source: str
    created_by: str = ""
    created: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"cron": self.cron, "channel": self.channel, "range": self.range, "by": self.created_by,
                "created": iso(self.created)}


@dataclass(frozen=True)
class SlotState:
    """What the cluster records about one schedule's posts."""

    since: datetime | None = None  # slots before this are never posted
    last: datetime | None = None  # the last slot claimed (posted or being posted)
    by: str = ""  # the replica that claimed it
    posted: datetime | None = None
    ts: str = ""
    error: str = ""
    error_at: datetime | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SlotState:
        return cls(since=parse_time(raw.get("since")), last=parse_time(raw.get("last")), by=raw.get("by", ""),
                   posted=parse_time(raw.get("posted")), ts=raw.get("ts", ""), error=raw.get("error", ""),
                   error_at=parse_time(raw.get("error_at")))


def config_id(cron: str, channel: str, rng: str) -> str:
    """A stable id for a configured schedule: the same on every replica and after every restart."""
    return "c" + hashlib.sha1(f"{cron}|{channel}|{rng}".encode()).hexdigest()[:5]


def config_entries(config: Config) -> list[Entry]:
    """The schedules ``HELLO_SCHEDULES`` configures."""
    return [
        Entry(id=config_id(s.cron, s.channel, s.range), cron=s.cron, channel=s.channel, range=s.range,
              source="config")
        for s in config.schedules
    ]


class Store:
    """The schedules ConfigMap, read and written with optimistic concurrency, in the cluster ``cluster`` reaches;
    the schedules ``config`` names come first."""

    def __init__(self, config: Config, cluster: Callable[[], Awaitable[Cluster]], name: str = CONFIGMAP) -> None:
        self.config, self.cluster = config, cluster
        self.name = name
        self._own = OwnCache(cluster, configmap(name), "the schedules")

    @staticmethod
    def _decode(cm: dict | None) -> tuple[dict[str, Any], dict[str, Any]]:
        data = (cm or {}).get("data") or {}
        try:
            schedules = json.loads(data.get(SCHEDULES_KEY) or "{}")
            state = json.loads(data.get(STATE_KEY) or "{}")
        except ValueError:
            log.error("configmap %s holds invalid JSON; treating it as empty", CONFIGMAP)
            return {}, {}
        return schedules, state

    async def read(self) -> tuple[list[Entry], dict[str, SlotState]]:
        cluster = await self.cluster()
        return self._entries(await cluster.configmaps.get(self.name))

    async def follow(self) -> None:
        """Start (once) the watch cache of the ConfigMap, for :meth:`shown`."""
        await self._own.follow()

    @property
    def cache(self) -> Informer | None:
        """The watch cache of the ConfigMap (None until :meth:`follow`)."""
        return self._own.informer

    async def shown(self) -> tuple[list[Entry], dict[str, SlotState]]:
        """:meth:`read` for display only (Home): from the watch cache of the ConfigMap while it is current
        (:class:`~bot.cluster.cache.OwnCache`), else as :meth:`read`. Never for a decision: posting and every change
        read the API server."""
        cache = self._own.current()
        if cache is None:
            return await self.read()
        return self._entries(cache.get(self.name))

    def _entries(self, cm: dict | None) -> tuple[list[Entry], dict[str, SlotState]]:
        """The configured and the chat-made schedules, and every schedule's state, from the ConfigMap ``cm``."""
        schedules, state = self._decode(cm)
        entries = config_entries(self.config)
        for sid, raw in sorted(schedules.items(), key=lambda kv: kv[1].get("created", "")):
            entries.append(Entry(id=sid, cron=raw["cron"], channel=raw["channel"], range=raw.get("range", "1h"),
                                 source="chat", created_by=raw.get("by", ""),
                                 created=parse_time(raw.get("created"))))
        return entries, {k: SlotState.from_json(v) for k, v in state.items()}

    async def update(self, mutate: Callable[[dict[str, Any], dict[str, Any]], Any]) -> Any:
        """Read, ``mutate(schedules, state)`` in place, write back if it changed; retry on conflicts.

        ``mutate`` returns the result; raising aborts without writing. The compare-and-swap is the one
        ConfigMap store's (:class:`bot.cluster.store.ConfigMapStore`).
        """

        def change(data: dict[str, str]) -> Any:
            schedules, state = self._decode({"data": data})
            result = mutate(schedules, state)
            data[SCHEDULES_KEY] = json.dumps(schedules, sort_keys=True)
            data[STATE_KEY] = json.dumps(state, sort_keys=True)
            return result

        return await ConfigMapStore(self.cluster, self.name, attempts=CAS_ATTEMPTS).update(change)
