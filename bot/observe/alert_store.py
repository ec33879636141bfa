"""The alert groups, one ConfigMap each, changed only by compare-and-swap.

A group lives in ``hello-chatops-alert-<id>`` (key ``group.json``: JSON of an
:class:`~bot.observe.alert_group.AlertGroup`), where ``<id>`` is the hash of its Alertmanager group key
(:func:`~bot.observe.alert_group.group_id`), labelled so that the bot lists them (:attr:`AlertStore.selector`).
No write to one group touches another, and no group's size counts against another's: however many
groups fire at once, none is refused for the API server's 1 MiB limit on one object. A flood card
(:mod:`bot.observe.alert_flood`) is stored the same way, and each channel's gate (which new groups
arrived in the last minute, and the open flood card) is ``hello-chatops-alert-gate-<hash of the channel>``.

Every firing group is kept; a resolved one is deleted once it has been resolved for :data:`KEEP_RESOLVED`
and is not among the :data:`KEEP_GROUPS` most recently changed (:meth:`AlertStore.prune`). The changes one
replica asks of one object at once are written together, one write at a time, so they never conflict with
each other however many webhooks arrive. The groups an earlier version kept in the one ConfigMap
:data:`LEGACY_CONFIGMAP` are moved to objects of their own on first use.

For the bake window (and anyone else) :meth:`AlertStore.firing` answers what fires now::

    for group in await store.firing():     # list[AlertGroup], oldest first
        group.key        # Alertmanager's group key (str)
        group.severity   # highest severity of its alerts: "critical" > "warning" > "info" > ""
        group.alertname  # str
        group.starts_at  # datetime (UTC): when its earliest alert started
        group.channel, group.ts   # the card (ts "" until posted)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cluster.cache import OwnCache, configmaps
from bot.cluster.configmaps import MANAGED
from bot.cluster.informer import Informer
from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.core.errors import Conflict
from bot.observe.alert_flood import Gate, admit, close, entry
from bot.observe.alert_group import FLOOD, AlertGroup, group_id

log = logging.getLogger(__name__)

PREFIX = "hello-chatops-alert"
LEGACY_CONFIGMAP = "hello-chatops-alerts"  # where an earlier version kept every group, keys "group.<id>"
LEGACY_KEY = "group."
GROUP_KEY = "group.json"
GATE_KEY = "gate.json"
COMPONENT = "app.kubernetes.io/component"
KEEP_GROUPS = 30  # resolved groups kept besides the firing ones
KEEP_RESOLVED = timedelta(minutes=5)  # a resolved group is kept at least this long (its card's last edit)
_NEVER = datetime.min.replace(tzinfo=UTC)
_ID = re.compile(r"[0-9a-f]{16}")


def to_prune(groups: list[AlertGroup], now: datetime) -> list[AlertGroup]:
    """The groups to delete: never a firing one; of the others, those past the :data:`KEEP_GROUPS` most
    recently changed that were last changed more than :data:`KEEP_RESOLVED` ago."""
    others = sorted((g for g in groups if not g.firing), key=lambda g: g.received or _NEVER, reverse=True)
    return [g for g in others[KEEP_GROUPS:] if now - (g.received or _NEVER) > KEEP_RESOLVED]


class _Nothing(Exception):
    """A write that would create an object with nothing in it: its callers' results, and no write."""

    def __init__(self, results: list[Any]) -> None:
        super().__init__()
        self.results = results


class _Refused(Exception):
    """One change of a batch raised: its caller gets ``error``; the others are written without it."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


def _settle(done: asyncio.Future, result: Any = None, *, error: BaseException | None = None) -> None:
    if done.done():  # its caller is gone (cancelled)
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


class _Writer:
    """The changes this replica asks of one object, written together: one compare-and-swap for all that wait."""

    def __init__(self, store: ConfigMapStore) -> None:
        self.store = store
        self.waiting: list[tuple[Callable[[dict[str, str]], Any], asyncio.Future]] = []
        self.writing = asyncio.Lock()

    async def apply(self, mutate: Callable[[dict[str, str]], Any]) -> Any:
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting.append((mutate, done))
        async with self.writing:
            if not done.done():
                waiting, self.waiting = self.waiting, []
                await self._write(waiting)
        return await done

    async def _write(self, waiting: list[tuple[Callable, asyncio.Future]]) -> None:
        while waiting:
            try:
                results = await self.store.update(lambda data: _apply(data, [m for m, _ in waiting]))
            except _Refused as refused:
                _settle(waiting.pop(refused.index)[1], error=refused.error)
                continue
            except _Nothing as nothing:
                results = nothing.results
            except Exception as exc:  # the write itself failed: every caller hears it
                for _, done in waiting:
                    _settle(done, error=exc)
                return
            for (_, done), result in zip(waiting, results, strict=True):
                _settle(done, result)
            return


def _apply(data: dict[str, str], mutates: list[Callable[[dict[str, str]], Any]]) -> list[Any]:
    results = []
    for index, mutate in enumerate(mutates):
        try:
            results.append(mutate(data))
        except Exception as exc:
            raise _Refused(index, exc) from None
    if not data:
        raise _Nothing(results)
    return results


def _group(text: str | None, name: str) -> AlertGroup | None:
    if not text:
        return None
    try:
        return AlertGroup.from_json(text)
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring the unreadable alert group %s", name)
        return None


def _groups(objects: list[dict]) -> list[AlertGroup]:
    """The groups (and flood cards) the ConfigMaps hold; an unreadable one is left out."""
    found = [_group((cm.get("data") or {}).get(GROUP_KEY), cm["metadata"]["name"]) for cm in objects]
    return [g for g in found if g is not None]


def _newest_first(groups: list[AlertGroup]) -> list[AlertGroup]:
    """The groups, not the flood cards, the most recently received first."""
    return sorted((g for g in groups if g.kind != FLOOD), key=lambda g: g.received or _NEVER, reverse=True)


def _firing(groups: list[AlertGroup]) -> list[AlertGroup]:
    return sorted((g for g in groups if g.firing), key=lambda g: g.starts_at)


class AlertStore:
    """The alert groups, one ConfigMap each. ``cluster`` is an async factory of the cluster."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], prefix: str = PREFIX) -> None:
        self._cluster = cluster
        self.prefix = prefix
        self.labels = {**MANAGED, COMPONENT: "alert-group"}
        self.selector = ",".join(f"{k}={v}" for k, v in self.labels.items())
        self._writers: dict[str, _Writer] = {}
        self._moved = False
        self._moving = asyncio.Lock()
        self._own = OwnCache(cluster, configmaps(self.selector), "the alert groups")

    def name_of(self, gid: str) -> str:
        """The ConfigMap of the group (or flood card) ``gid``."""
        return f"{self.prefix}-{gid}"

    def gate_of(self, channel: str) -> str:
        """The ConfigMap of ``channel``'s gate."""
        return f"{self.prefix}-gate-{hashlib.sha256(channel.encode()).hexdigest()[:16]}"

    # ------------------------------------------------------------------ reads
    async def _all(self) -> list[AlertGroup]:
        await self._move_legacy()
        cluster = await self._cluster()
        return _groups(await cluster.configmaps.list(self.selector))

    async def groups(self) -> list[AlertGroup]:
        """Every stored group (not the flood cards), newest first."""
        return _newest_first(await self._all())

    async def firing(self) -> list[AlertGroup]:
        """The groups firing now (as Alertmanager last said), oldest first."""
        return _firing(await self.groups())

    async def follow(self) -> None:
        """Start (once) the watch cache of the groups, for :meth:`shown`."""
        await self._own.follow()

    @property
    def cache(self) -> Informer | None:
        """The watch cache of the groups (None until :meth:`follow`)."""
        return self._own.informer

    async def shown(self) -> list[AlertGroup]:
        """:meth:`firing` for display only (Home, status): from the watch cache of the groups while it is current
        (:class:`~bot.cluster.cache.OwnCache`), else as :meth:`firing`. Never for a decision: the bake window and
        the alerts' actions read :meth:`firing`."""
        cache = self._own.current()
        if not self._moved or cache is None:
            return await self.firing()  # the first read also moves an earlier version's groups
        return _firing(_newest_first(_groups(cache.items())))

    async def get(self, group: str) -> AlertGroup | None:
        """A group by its id (:func:`~bot.observe.alert_group.group_id`) or its Alertmanager group key."""
        await self._move_legacy()
        for gid in ([group] if _ID.fullmatch(group) else []) + [group_id(group)]:
            data = await ConfigMapStore(self._cluster, self.name_of(gid)).read()
            found = _group((data or {}).get(GROUP_KEY), self.name_of(gid))
            if found is not None:
                return found
        return None

    # ------------------------------------------------------------------ writes
    async def _write(self, name: str, labels: dict[str, str], mutate: Callable[[dict[str, str]], Any]) -> Any:
        writer = self._writers.get(name)
        if writer is None:
            writer = self._writers[name] = _Writer(ConfigMapStore(self._cluster, name, labels=labels))
        try:
            return await writer.apply(mutate)
        finally:
            if not writer.waiting and not writer.writing.locked() and self._writers.get(name) is writer:
                del self._writers[name]

    async def upsert(self, gid: str, decide: Callable[[AlertGroup | None], tuple[Any, AlertGroup | None]]) -> Any:
        """Compare-and-swap one group: ``decide`` gets it (None when there is none yet) and returns (result, the
        group to store, or None to store nothing); on a conflict it is called again on fresh state. ``decide``
        may raise to change nothing: its caller gets the exception."""
        await self._move_legacy()
        name = self.name_of(gid)

        def mutate(data: dict[str, str]) -> Any:
            result, group = decide(_group(data.get(GROUP_KEY), name))
            if group is not None:
                data[GROUP_KEY] = group.to_json()
            return result

        return await self._write(name, self.labels, mutate)

    async def change(self, group: str, apply: Callable[[AlertGroup], Any]) -> Any:
        """Apply ``apply`` to one stored group (it may raise to change nothing); None when it is unknown."""

        def decide(found: AlertGroup | None) -> tuple[Any, AlertGroup | None]:
            return (None, None) if found is None else (apply(found), found)

        return await self.upsert(group, decide)

    async def admit(self, channel: str, gid: str, now: datetime, limit: int) -> str:
        """The flood card the new group ``gid`` is summarised on, "" for a card of its own
        (:func:`~bot.observe.alert_flood.admit`, by compare-and-swap on ``channel``'s gate)."""

        def mutate(data: dict[str, str]) -> str:
            gate = Gate.from_json(data.get(GATE_KEY))
            card = admit(gate, gid, channel, now, limit)
            data[GATE_KEY] = gate.to_json()
            return card

        return await self._write(self.gate_of(channel), {**MANAGED, COMPONENT: "alert-gate"}, mutate)

    async def close_flood(self, channel: str, card: str) -> None:
        """The flood card ``card`` of ``channel`` stopped firing: the next flood opens a new one."""

        def mutate(data: dict[str, str]) -> None:
            gate = Gate.from_json(data.get(GATE_KEY))
            close(gate, card)
            if data:
                data[GATE_KEY] = gate.to_json()

        await self._write(self.gate_of(channel), {**MANAGED, COMPONENT: "alert-gate"}, mutate)

    async def prune(self, now: datetime) -> int:
        """Delete the resolved groups and flood cards :func:`to_prune` names; returns how many."""
        cluster = await self._cluster()
        gone = to_prune(await self._all(), now)
        for group in gone:
            await cluster.configmaps.delete(self.name_of(group.id))
        return len(gone)

    # ------------------------------------------------------------------ upgrading
    async def _move_legacy(self) -> None:
        """Once per store: the groups of :data:`LEGACY_CONFIGMAP` become objects of their own (a flood card with
        the entries of the groups it summarises), then that ConfigMap is deleted. Idempotent: a replica cut
        short leaves work the next one finishes; an object already there is kept as it is."""
        if self._moved:
            return
        async with self._moving:
            if self._moved:
                return
            data = await ConfigMapStore(self._cluster, LEGACY_CONFIGMAP).read()
            if data:
                await self._adopt(data)
            self._moved = True

    async def _adopt(self, data: dict[str, str]) -> None:
        cluster = await self._cluster()
        found = [g for k, v in data.items() if k.startswith(LEGACY_KEY) for g in [_group(v, k)] if g is not None]
        for group in found:
            if group.kind == FLOOD:
                group.members = {g.id: entry(g) for g in found if g.digest == group.id}
            try:
                await cluster.configmaps.create(self.name_of(group.id), {GROUP_KEY: group.to_json()}, self.labels)
            except Conflict:  # moved already
                pass
        await cluster.configmaps.delete(LEGACY_CONFIGMAP)
        log.info("moved %d alert groups from configmaps/%s to one object each", len(found), LEGACY_CONFIGMAP)
