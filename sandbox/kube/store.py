"""The object store of the emulated API server: resourceVersions, uids, generations, history and watchers."""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import kinds
from .kinds import Kind

log = logging.getLogger(__name__)

Key = tuple[str, str, str, str]  # group, resource, namespace ("" when cluster-scoped), name
Listener = Callable[[str, dict[str, Any]], None]


def now_iso() -> str:
    """The current time in the API's RFC 3339 form, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error answer of the API server, carried as a `Status` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind: Kind, name: str) -> ApiError:
    details = {"name": name, "kind": kind.resource}
    if kind.group:
        details["group"] = kind.group
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', details)


def invalid(kind: Kind, name: str, causes: list[kinds.Cause]) -> ApiError:
    text = ", ".join(f"{c.field}: {c.message}" for c in causes)
    message = f'{kind.qualified_kind} "{name}" is invalid: ' + (f"[{text}]" if len(causes) > 1 else text)
    details: dict[str, Any] = {"name": name, "kind": kind.kind,
                               "causes": [{"reason": c.reason, "message": c.message, "field": c.field}
                                          for c in causes]}
    if kind.group:
        details["group"] = kind.group
    return ApiError(422, "Invalid", message, details)


@dataclass
class Change:
    """One entry of the change history (what a watch replays)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    group: str
    resource: str
    namespace: str
    old: dict[str, Any] | None
    new: dict[str, Any]


@dataclass(eq=False)
class Watcher:
    """A live watch: the filter and the queue its stream reads from (None ends the stream)."""

    group: str
    resource: str
    namespace: str | None
    predicate: Callable[[dict[str, Any]], bool]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)
    progress: int = 0  # every change up to this resourceVersion has been offered to this watcher
    pending: int = 0  # items pushed but not yet taken by its stream (a bookmark waits until none are)

    def translate(self, change: Change) -> tuple[str, dict[str, Any]] | None:
        """The event this watcher sees for a change, honouring selectors like the real server."""
        if change.group != self.group or change.resource != self.resource:
            return None
        if self.namespace is not None and change.namespace != self.namespace:
            return None
        was = change.old is not None and self.predicate(change.old)
        if change.type == "DELETED":
            return ("DELETED", change.new) if was else None
        now = self.predicate(change.new)
        if change.type == "ADDED":
            return ("ADDED", change.new) if now else None
        if was and now:
            return "MODIFIED", change.new
        if now:
            return "ADDED", change.new
        if was:
            return "DELETED", change.new
        return None

    def push(self, item: tuple[str, dict[str, Any]] | None) -> None:
        self.pending += 1
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.queue.put_nowait(item)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Store:
    """All objects of the emulated cluster, keyed by group/resource, namespace and name.

    Every change takes the next value of one cluster-wide resourceVersion counter, is kept in a bounded
    history (for watches that resume from a resourceVersion) and is pushed to live watchers and listeners.
    Thread-safe: the HTTP server, the controllers and test code in other threads may all call it.
    """

    def __init__(self, history: int = 1000) -> None:
        self._lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._rv = 0
        self._history: deque[Change] = deque()
        self._history_size = history
        self._compacted = 0  # newest resourceVersion dropped from the history
        self._watchers: set[Watcher] = set()
        self._listeners: list[Listener] = []
        self._wakers: list[Callable[[], None]] = []

    # --- reading ------------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, group: str, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get((group, resource, namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, group: str, resource: str, namespace: str | None = None,
             predicate: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Objects of one resource (all namespaces when `namespace` is None), ordered by namespace/name."""
        with self._lock:
            found = [(key, obj) for key, obj in self._objects.items()
                     if key[0] == group and key[1] == resource and (namespace is None or key[2] == namespace)
                     and (predicate is None or predicate(obj))]
            return [copy.deepcopy(obj) for _, obj in sorted(found, key=lambda item: item[0])]

    def snapshot_rv(self) -> int:
        with self._lock:
            return self._rv

    # --- writing ------------------------------------------------------------------------------------

    def create(self, kind: Kind, namespace: str | None, obj: dict[str, Any], *, keep_status: bool = False,
               dry_run: bool = False) -> dict[str, Any]:
        """Create an object (201 semantics): validation, defaults, metadata; 409 when it exists.

        `dry_run` (the API's `dryRun=All`) does everything but store it."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789")
                                                          for _ in range(5))
        name = meta.get("name", "")
        ns = (namespace or meta.get("namespace") or "default") if kind.namespaced else ""
        obj["apiVersion"] = obj.get("apiVersion") or kind.api_version
        obj["kind"] = kind.kind
        if kind.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if kind.status and not keep_status:
            obj.pop("status", None)
        kinds.apply_defaults(kind, obj)
        causes = kinds.validate(kind, obj)
        if causes:
            raise invalid(kind, name, causes)
        with self._lock:
            if kind.namespaced and (("", "namespaces", "", ns) not in self._objects):
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces"})
            if kind.namespaced and self._objects[("", "namespaces", "", ns)]["metadata"].get("deletionTimestamp"):
                message = f"unable to create new content in namespace {ns} because it is being terminated"
                raise ApiError(403, "Forbidden", f'{kind.qualified} "{name}" is forbidden: {message}',
                               {"name": name, "kind": kind.resource, **({"group": kind.group} if kind.group else {}),
                                "causes": [{"reason": "NamespaceTerminating", "message": message,
                                            "field": "metadata.namespace"}]})
            key = (kind.group, kind.resource, ns, name)
            if key in self._objects:
                details = {"name": name, "kind": kind.resource}
                if kind.group:
                    details["group"] = kind.group
                raise ApiError(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists', details)
            for drop in ("resourceVersion", "deletionTimestamp", "selfLink"):
                meta.pop(drop, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_iso()
            if kinds.has_generation(kind):
                meta["generation"] = 1
            if kind.group == "batch" and kind.resource == "jobs":
                kinds.job_selector(obj)
            if kind.resource == "pods" and kind.group == "":
                obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
            if dry_run:
                return copy.deepcopy(obj)
            return self._commit(kind, key, "ADDED", None, obj)

    def update(self, kind: Kind, namespace: str | None, name: str, obj: dict[str, Any], *,
               subresource: str | None = None, internal: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Replace an object (PUT semantics).

        A stale `metadata.resourceVersion` answers 409 Conflict; none means unconditional. For kinds with a
        status subresource a write to the main resource keeps the stored status and a write to `status`
        changes only the status. `internal` (controllers) writes every part.
        """
        ns = (namespace or "") if kind.namespaced else ""
        key = (kind.group, kind.resource, ns, name)
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                raise not_found(kind, name)
            new = copy.deepcopy(obj)
            meta = new.get("metadata")
            if not isinstance(meta, dict):
                meta = new["metadata"] = {}
            sent_rv = meta.get("resourceVersion")
            if sent_rv not in (None, "") and str(sent_rv) != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has '
                               "been modified; please apply your changes to the latest version and try again",
                               {"name": name, "kind": kind.resource, **({"group": kind.group} if kind.group
                                                                        else {})})
            if meta.get("name", name) != name:
                raise invalid(kind, name, [kinds.Cause("FieldValueInvalid", "metadata.name",
                                                       "Invalid value: the name of the object does not match "
                                                       "the name on the URL")])
            if subresource == "status":
                merged = copy.deepcopy(old)
                if "status" in new:
                    merged["status"] = new["status"]
                else:
                    merged.pop("status", None)
                new = merged
            elif kind.status and not internal:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new["metadata"]
            for fixed in ("uid", "creationTimestamp", "namespace", "generation"):
                if fixed in old["metadata"]:
                    meta[fixed] = old["metadata"][fixed]
                else:
                    meta.pop(fixed, None)
            meta["name"] = name
            new["apiVersion"] = new.get("apiVersion") or old["apiVersion"]
            new["kind"] = kind.kind
            kinds.apply_defaults(kind, new)
            causes = kinds.validate(kind, new)
            if causes:
                raise invalid(kind, name, causes)
            if kinds.has_generation(kind) and _spec_part(new) != _spec_part(old):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return copy.deepcopy(old)
            if dry_run:
                return copy.deepcopy(new)
            return self._commit(kind, key, "MODIFIED", old, new)

    def delete(self, kind: Kind, namespace: str | None, name: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Delete an object and, like the garbage collector, what it owns (and a namespace's contents)."""
        ns = (namespace or "") if kind.namespaced else ""
        key = (kind.group, kind.resource, ns, name)
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                raise not_found(kind, name)
            if dry_run:
                return copy.deepcopy(old)
            gone = self._commit(kind, key, "DELETED", old, copy.deepcopy(old))
            uid = old["metadata"]["uid"]
            dependants = [k for k, o in self._objects.items()
                          if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]
            if kind.group == "" and kind.resource == "namespaces":
                dependants += [k for k in self._objects if k[2] == name]
            for g, r, dns, dname in dependants:
                if (g, r, dns, dname) in self._objects:
                    dkind = kinds.lookup(g, r) or kinds.for_resource(g, "v1", r, namespaced=bool(dns))
                    self.delete(dkind, dns or None, dname)
            return gone

    def _commit(self, kind: Kind, key: Key, type_: str, old: dict[str, Any] | None, new: dict[str, Any]
                ) -> dict[str, Any]:
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        if type_ == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = new
        change = Change(self._rv, type_, kind.group, kind.resource, key[2], old, copy.deepcopy(new))
        self._history.append(change)
        while len(self._history) > self._history_size:
            self._compacted = self._history.popleft().rv
        for watcher in list(self._watchers):
            event = watcher.translate(change)
            if event is not None:
                watcher.push(event)
            watcher.progress = self._rv
        for waker in list(self._wakers):
            waker()
        for listener in list(self._listeners):
            try:
                listener(type_, copy.deepcopy(new))
            except Exception:
                log.exception("change listener failed")
        return copy.deepcopy(new)

    # --- watching -----------------------------------------------------------------------------------

    def watch(self, group: str, resource: str, namespace: str | None,
              predicate: Callable[[dict[str, Any]], bool], since: int | None,
              loop: asyncio.AbstractEventLoop) -> tuple[Watcher, list[tuple[str, dict[str, Any]]], int]:
        """Register a watcher; returns it, the events to send first and the resourceVersion they reach.

        `since` None: synthetic ADDED events for every current object; otherwise the retained history after
        that resourceVersion. Raises ApiError 410 Expired when that history is no longer retained.
        """
        with self._lock:
            reached = self._rv
            watcher = Watcher(group, resource, namespace, predicate, loop, progress=reached)
            if since is None:
                first = [("ADDED", obj) for obj in self.list(group, resource, namespace, predicate)]
            else:
                if since < self._compacted:
                    raise ApiError(410, "Expired", f"too old resource version: {since} ({self._compacted + 1})")
                first = []
                for change in self._history:
                    if change.rv > since:
                        event = watcher.translate(change)
                        if event is not None:
                            first.append((event[0], copy.deepcopy(event[1])))
            self._watchers.add(watcher)
            return watcher, first, reached

    def taken(self, watcher: Watcher) -> None:
        """The watcher's stream has taken one pushed item off its queue."""
        with self._lock:
            watcher.pending -= 1

    def bookmark(self, watcher: Watcher) -> int | None:
        """The resourceVersion a BOOKMARK may tell this watcher now: every change up to it that the watcher's
        selectors pick has been taken by its stream. None while pushed events wait (they go first)."""
        with self._lock:
            return watcher.progress if watcher.pending <= 0 else None

    def drop(self, resource: str | None = None) -> int:
        """Break the connection of every live watch (of ``resource``, or all), as a load balancer or a restarting
        API server does; how many were dropped. Their clients resume from the last resourceVersion they saw."""
        with self._lock:
            chosen = [w for w in self._watchers if resource in (None, w.resource)]
            for watcher in chosen:
                watcher.push(("DROP", {}))
            return len(chosen)

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        """End every live watch stream (used at shutdown)."""
        with self._lock:
            for watcher in list(self._watchers):
                watcher.push(None)
            self._watchers.clear()

    # --- listeners ----------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event_type, obj)` after every change; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def on_change(self, waker: Callable[[], None]) -> Callable[[], None]:
        """Call ``waker()`` (no arguments, nothing copied) after every change; returns a function that stops it."""
        with self._lock:
            self._wakers.append(waker)

        def stop() -> None:
            with self._lock:
                if waker in self._wakers:
                    self._wakers.remove(waker)

        return stop


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: what bumps metadata.generation when it changes."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
