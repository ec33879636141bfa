"""Requests as stored: one object per request, and one small lock object per service and environment.

A request (:class:`Record`) lives in a ConfigMap of its own, ``<HELLO_STATE_CONFIGMAP>-request-<id>``
(key ``request.json``), labelled so that the bot can list them. No write to one request touches
another, so a hundred people asking at once never contend on one document, and no request's size
counts against another's (an object is limited to 1 MiB by the API server).

The one-change-at-a-time lock of a service and environment is the ConfigMap
``<HELLO_STATE_CONFIGMAP>-lock[-<service>-<environment>]`` (key ``lock.json``): the id of the request
that holds it and the ids queued behind it, in order. It is changed only by compare-and-swap, so the
queue's places are unique by construction and exactly one request holds the lock.

The lock names its holder; whether the holder still holds it is its record's business (pending and not
expired, or running and advanced). The invariant that makes approval safe: the lock moves from a
request to another only after the first one's record has left ``pending`` and ``running`` (or never got
there), and a request becomes ``pending`` only after the lock names it. So a compare-and-swap of a
record from ``pending`` to ``running`` is always a change by the lock's holder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.core.errors import Conflict
from bot.core.text import escape
from bot.core.times import parse_time
from bot.release.actions import Change

log = logging.getLogger(__name__)

T = TypeVar("T")
RECORD_KEY = "request.json"
LOCK_KEY = "lock.json"
COMPONENT = "app.kubernetes.io/component"
LEGACY_PREFIX = "request."  # the keys of requests in the one shared ConfigMap of earlier versions
OWNER = "hello-chatops.io/state"  # which bot's state (HELLO_STATE_CONFIGMAP), so two bots can share a namespace


class RequestState(StrEnum):
    """A request's lifecycle: queued -> pending -> running -> succeeded | failed, or it ends earlier."""

    QUEUED = "queued"  # waits for the change before it; then pending (its approval opens)
    PENDING = "pending"  # waits for approval
    RUNNING = "running"  # approved: its release is carried out
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # rejected by an approver, or withdrawn by the requester
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # its message could not be posted, or it was left behind by a crash
    SUPERSEDED = "superseded"  # a rollback took the lock, or nobody advanced it any more


QUEUED, PENDING, RUNNING = RequestState.QUEUED, RequestState.PENDING, RequestState.RUNNING
SUPERSEDED = RequestState.SUPERSEDED
FINISHED = frozenset(set(RequestState) - {QUEUED, PENDING, RUNNING})


def at(text: str) -> datetime:
    """A stored time of a request; an unreadable one counts as long past."""
    return parse_time(text) or datetime.min.replace(tzinfo=UTC)


@dataclass
class Record:
    """One request as stored in the cluster."""

    id: str
    change: Change
    requester: str
    channel: str
    created: str
    expires: str
    state: RequestState = PENDING
    ts: str = ""
    approver: str = ""
    decided: str = ""
    finished: str = ""
    headline: str = ""
    token: str = ""  # set by whoever won the pending -> running transition
    needed: int = 1  # distinct approvers it needs (the environment's ``approvals``; 2 under break-glass)
    approvals: list[str] = field(default_factory=list)  # who approved so far, in order
    break_glass: str = ""  # why it needs break-glass (the freeze in force when it was asked), else ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        data["change"] = Change(**data["change"])
        data["state"] = RequestState(data.get("state", PENDING))
        return cls(**data)

    @property
    def approved_so_far(self) -> str:
        """"1 of 2 approvals: <@U2>" while it waits for more approvers ("" when it needs one)."""
        if self.needed <= 1:
            return ""
        who = ", ".join(f"<@{u}>" for u in self.approvals) or "nobody yet"
        return f"{len(self.approvals)} of {self.needed} approvals: {who}"

    def expired(self, now: datetime) -> bool:
        return self.state == PENDING and now >= at(self.expires)

    def what(self) -> str:
        return f"*{self.change.label}* {escape(self.change.summary)}"

    @property
    def key(self) -> tuple[str, str]:
        """The lock it takes: one change at a time per service and environment."""
        return self.change.service, self.change.environment


@dataclass
class Lock:
    """The lock of one service and environment: who holds it and who waits, in order."""

    holder: str = ""
    queue: list[str] = field(default_factory=list)

    def place(self, request_id: str) -> int:
        """1 for the first in line (0: not queued)."""
        return self.queue.index(request_id) + 1 if request_id in self.queue else 0


_UNSAFE = re.compile(r"[^a-z0-9-]+")


def lock_name(prefix: str, key: tuple[str, str]) -> str:
    """The lock's ConfigMap: ``<prefix>-lock`` for the one service, else ``<prefix>-lock-<service>-<env>``."""
    if not any(key):
        return f"{prefix}-lock"
    words = "-".join(_UNSAFE.sub("-", part.lower()).strip("-") for part in key)
    digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:8]  # names that clean up alike stay apart
    return f"{prefix}-lock-{words[:180]}-{digest}"


class RequestStore:
    """The requests, one ConfigMap each, and the locks. ``cluster`` is an async factory of the cluster."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], prefix: str) -> None:
        self._cluster = cluster
        self.prefix = prefix
        self._owner = {OWNER: prefix[:63].rstrip("-.") or "state"}

    def _record_store(self, request_id: str) -> ConfigMapStore:
        return ConfigMapStore(self._cluster, f"{self.prefix}-request-{request_id}",
                              labels={COMPONENT: "request", **self._owner})

    def _lock_store(self, key: tuple[str, str]) -> ConfigMapStore:
        return ConfigMapStore(self._cluster, lock_name(self.prefix, key), labels={COMPONENT: "lock", **self._owner})

    # ------------------------------------------------------------------ records
    async def load(self) -> dict[str, Record]:
        """Every request of this bot, by id (one list call)."""
        cluster = await self._cluster()
        selector = ",".join(f"{k}={v}" for k, v in {COMPONENT: "request", **self._owner}.items())
        out: dict[str, Record] = {}
        for cm in await cluster.configmaps.list(selector):
            record = _record((cm.get("data") or {}).get(RECORD_KEY), cm["metadata"]["name"])
            if record is not None:
                out[record.id] = record
        return out

    async def get(self, request_id: str) -> Record | None:
        return _record((await self._record_store(request_id).read() or {}).get(RECORD_KEY), request_id)

    async def create(self, record: Record) -> None:
        """Store a new request (its id is new: a conflict would be a bug, and raises)."""
        cluster = await self._cluster()
        store = self._record_store(record.id)
        await cluster.configmaps.create(store.name, {RECORD_KEY: record.to_json()}, labels=store.labels)

    async def update(self, request_id: str, change: Callable[[Record], T]) -> T | None:
        """Compare-and-swap one request: ``change`` edits it in place and returns a result (``None``: missing).

        ``change`` may raise to give up without writing; on a conflict it is called again on fresh state.
        """
        def mutate(data: dict[str, str]) -> T | None:
            record = _record(data.get(RECORD_KEY), request_id)
            if record is None:
                return None
            result = change(record)
            data[RECORD_KEY] = record.to_json()
            return result

        return await self._record_store(request_id).update(mutate, create=False)

    async def delete(self, request_id: str) -> None:
        cluster = await self._cluster()
        await cluster.configmaps.delete(self._record_store(request_id).name)

    # ------------------------------------------------------------------ locks
    async def lock(self, key: tuple[str, str]) -> Lock:
        return _lock((await self._lock_store(key).read() or {}).get(LOCK_KEY))

    async def update_lock(self, key: tuple[str, str], change: Callable[[Lock], T]) -> T:
        """Compare-and-swap the lock of ``key`` (created on first use); ``change`` edits it and returns a result."""
        def mutate(data: dict[str, str]) -> T:
            lock = _lock(data.get(LOCK_KEY))
            result = change(lock)
            data[LOCK_KEY] = json.dumps(asdict(lock), sort_keys=True)
            return result

        return await self._lock_store(key).update(mutate)

    # ------------------------------------------------------------------ upgrading
    async def adopt_legacy(self) -> list[str]:
        """Requests an earlier version kept in one shared ConfigMap (``<prefix>``, keys ``request.<id>``)
        become objects of their own, and the open ones take their lock or place as they had it; the keys
        are removed from the shared ConfigMap (and the ConfigMap with them when nothing else is left).
        Idempotent: a replica cut short halfway leaves work that the next start finishes. Returns the ids.
        """
        legacy = ConfigMapStore(self._cluster, self.prefix)
        data = await legacy.read()
        found = sorted((r for k, v in (data or {}).items() if k.startswith(LEGACY_PREFIX)
                        for r in [_record(v, k)] if r is not None), key=lambda r: r.created)
        for record in found:
            try:
                await self.create(record)
            except Conflict:  # adopted already, by this replica before it stopped or by another one
                pass
            if record.state in (PENDING, RUNNING):
                await self.update_lock(record.key, lambda lock, rid=record.id: _seat(lock, rid))
            elif record.state == QUEUED:
                await self.update_lock(record.key, lambda lock, rid=record.id: _queue(lock, rid))
        if found:
            def drop(values: dict[str, str]) -> None:
                for key in [k for k in values if k.startswith(LEGACY_PREFIX)]:
                    del values[key]

            await legacy.update(drop, create=False)
            if not await legacy.read():
                cluster = await self._cluster()
                await cluster.configmaps.delete(legacy.name)
        return [r.id for r in found]


def _seat(lock: Lock, request_id: str) -> None:
    if not lock.holder:
        lock.holder = request_id


def _queue(lock: Lock, request_id: str) -> None:
    if request_id not in lock.queue and lock.holder != request_id:
        lock.queue.append(request_id)


def _record(text: str | None, name: str) -> Record | None:
    if not text:
        return None
    try:
        return Record.from_json(text)
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring the unreadable request %s", name)
        return None


def _lock(text: str | None) -> Lock:
    if not text:
        return Lock()
    try:
        data = json.loads(text)
        return Lock(holder=str(data.get("holder") or ""), queue=[str(q) for q in data.get("queue") or []])
    except (ValueError, TypeError, AttributeError):
        log.warning("the lock record is unreadable: it is taken as free")
        return Lock()
