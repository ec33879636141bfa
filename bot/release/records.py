"""The repository of releases: one object per record, and one small lock object per service and environment,
read and written only by compare-and-swap (:class:`bot.cluster.store.ConfigMapStore`).

A record (:class:`bot.release.record.Record`) lives in a ConfigMap of its own,
``<HELLO_STATE_CONFIGMAP>-request-<id>`` (key ``record.json``), labelled so that the bot can list them. No
write to one record touches another, so a hundred people asking at once never contend on one document, and
no record's size counts against another's (an object is limited to 1 MiB by the API server). The lock of a
service and environment is ``<HELLO_STATE_CONFIGMAP>-lock[-<service>-<environment>-<hash>]`` (key
``lock.json``).

Decisions (admission, approval, the driver, every compare-and-swap) read the API server. Only what is shown
(the running releases of status, Home and ``/hello release``, the requests waiting on Home) is read through
:meth:`Records.shown`, from a watch cache of this bot's records once :meth:`Records.follow` has started it and
it has listed: a display may lag a write by the watch's delay, a decision never does.

Records of earlier versions are read too (:mod:`bot.release.upgrade`): a request object (key
``request.json``) with its release in a ConfigMap of its own, which is upgraded in place the first time it is
read, and the requests of the one shared ConfigMap, adopted at start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

from bot.cluster.cache import OwnCache, configmaps
from bot.cluster.informer import Informer
from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.core.errors import ClusterError, Conflict, NotFound
from bot.release import upgrade
from bot.release.actions import Change
from bot.release.lifecycle import FINISHED
from bot.release.plan import Step
from bot.release.record import Lock, Record, lock_from, lock_name

log = logging.getLogger(__name__)

T = TypeVar("T")
KEY = "record.json"
LOCK_KEY = "lock.json"
COMPONENT = "app.kubernetes.io/component"
OWNER = "hello-chatops.io/state"  # which bot's state (HELLO_STATE_CONFIGMAP), so two bots can share a namespace


class Records:
    """The records and the locks. ``cluster`` is an async factory of the cluster; ``plan`` gives the steps of a
    change (for records stored before the plan was stored with them)."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], prefix: str,
                 plan: Callable[[Change], list[Step]]) -> None:
        self._cluster = cluster
        self.prefix = prefix
        self.plan = plan
        self._owner = {OWNER: prefix[:63].rstrip("-.") or "state"}
        self.selector = ",".join(f"{k}={v}" for k, v in {COMPONENT: "request", **self._owner}.items())
        self._own = OwnCache(cluster, configmaps(self.selector), "the records")

    async def cluster(self) -> Cluster:
        return await self._cluster()

    def name(self, record_id: str) -> str:
        """The ConfigMap of the record ``record_id``."""
        return f"{self.prefix}-request-{record_id}"

    def _store(self, record_id: str) -> ConfigMapStore:
        return ConfigMapStore(self._cluster, self.name(record_id), labels={COMPONENT: "request", **self._owner})

    def _lock_store(self, key: tuple[str, str]) -> ConfigMapStore:
        return ConfigMapStore(self._cluster, lock_name(self.prefix, key), labels={COMPONENT: "lock", **self._owner})

    # ------------------------------------------------------------------ records
    async def load(self) -> dict[str, Record]:
        """Every record of this bot, by id (one list call; records of the previous format upgraded on the way)."""
        cluster = await self._cluster()
        out: dict[str, Record] = {}
        for cm in await cluster.configmaps.list(self.selector):
            record = await self._read(cm["metadata"]["name"], cm.get("data") or {})
            if record is not None:
                out[record.id] = record
        return out

    async def follow(self) -> None:
        """Start (once) the watch cache of this bot's records in its state namespace, for :meth:`shown`."""
        await self._own.follow()

    @property
    def cache(self) -> Informer | None:
        """The watch cache of the records (None until :meth:`follow`)."""
        return self._own.informer

    async def shown(self) -> dict[str, Record]:
        """Every record of this bot, by id, for display only: from the watch cache once it has listed and while
        its watch is kept (no API read), else as :meth:`load`. Never for a decision: it may lag a write."""
        cache = self._own.current()
        if cache is None:
            return await self.load()
        out: dict[str, Record] = {}
        for cm in cache.items():
            data, name = cm.get("data") or {}, cm["metadata"]["name"]
            if KEY not in data and upgrade.OLD_KEY in data:
                return await self.load()  # an earlier version's record: upgraded by the read from the API server
            record = _record(data.get(KEY), name)
            if record is not None:
                out[record.id] = record
        return out

    async def get(self, record_id: str) -> Record | None:
        return await self._read(self.name(record_id), await self._store(record_id).read() or {})

    async def _read(self, name: str, data: dict[str, str]) -> Record | None:
        if KEY in data:
            return _record(data[KEY], name)
        if upgrade.OLD_KEY in data:
            return await upgrade.request_object(self, name, data[upgrade.OLD_KEY])
        return None

    async def create(self, record: Record) -> None:
        """Store a new record (its id is new: a conflict would be a bug, and raises)."""
        cluster = await self._cluster()
        store = self._store(record.id)
        await cluster.configmaps.create(store.name, {KEY: record.to_json()}, labels=store.labels)

    async def update(self, record_id: str, change: Callable[[Record], T]) -> T | None:
        """Compare-and-swap one record: ``change`` edits it in place and returns a result (``None``: missing).

        ``change`` may raise to give up without writing; on a conflict it is called again on fresh state.
        """
        def mutate(data: dict[str, str]) -> T | None:
            record = _record(data.get(KEY), record_id)
            if record is None:
                return None
            result = change(record)
            data[KEY] = record.to_json()
            return result

        return await self._store(record_id).update(mutate, create=False)

    async def replace_raw(self, name: str, mutate: Callable[[dict[str, str]], T]) -> T:
        """Compare-and-swap a record's object as stored (its keys): for :mod:`bot.release.upgrade` only."""
        return await ConfigMapStore(self._cluster, name).update(mutate, create=False)

    async def delete(self, record_id: str, *, only_if: Callable[[Record], bool] | None = None) -> bool:
        """Delete the record; whether none of that id is left. With ``only_if``, only when it holds for the record
        as read and the record is unchanged since (the delete's precondition: a record changed meanwhile is kept)."""
        cluster = await self._cluster()
        if only_if is None:
            await cluster.configmaps.delete(self.name(record_id))
            return True
        cm = await cluster.configmaps.get(self.name(record_id))
        if cm is None:
            return True
        record = _record((cm.get("data") or {}).get(KEY), self.name(record_id))
        if record is None or not only_if(record):
            return False
        try:
            await cluster.configmaps.delete(self.name(record_id), resource_version=cm["metadata"]["resourceVersion"])
        except Conflict:
            return False
        return True

    async def delete_other(self, name: str) -> None:
        """Delete an object of an earlier version's state (best effort: gone already is fine)."""
        try:
            cluster = await self._cluster()
            await cluster.configmaps.delete(name)
        except NotFound:
            pass
        except ClusterError as exc:
            log.info("cannot delete %s now: %s", name, exc)

    async def mark_shown(self, record_id: str) -> None:
        """Slack took the edit that shows how ``record_id`` ended."""
        def shown(record: Record) -> None:
            if record.state in FINISHED:
                record.shown = True

        await self.update(record_id, shown)

    # ------------------------------------------------------------------ locks
    async def lock(self, key: tuple[str, str]) -> Lock:
        return _lock((await self._lock_store(key).read() or {}).get(LOCK_KEY))

    async def update_lock(self, key: tuple[str, str], change: Callable[[Lock], T]) -> T:
        """Compare-and-swap the lock of ``key`` (created on first use); ``change`` edits it and returns a result."""
        def mutate(data: dict[str, str]) -> T:
            lock = _lock(data.get(LOCK_KEY))
            result = change(lock)
            lock.who = {q: w for q, w in lock.who.items() if q in lock.queue}  # only the queue's
            data[LOCK_KEY] = json.dumps(asdict(lock), sort_keys=True)
            return result

        return await self._lock_store(key).update(mutate)

    async def adopt_legacy(self) -> list[str]:
        """Adopt the requests of the one shared ConfigMap of the earliest versions (:func:`upgrade.shared`)."""
        return await upgrade.shared(self)


def _record(text: str | None, name: str) -> Record | None:
    if not text:
        return None
    try:
        return Record.from_json(text)
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring the unreadable record %s", name)
        return None


def _lock(text: str | None) -> Lock:
    try:
        return lock_from(text)
    except (ValueError, TypeError, AttributeError):
        log.warning("the lock record is unreadable: it is taken as free")
        return Lock()
