"""An informer: one kind of object in one namespace, listed once and kept current by a watch.

:class:`Informer` lists the objects a :class:`Source` names (its kind, and a field or label selector where one
helps), keeps them by name, then watches from the list's resourceVersion with ``allowWatchBookmarks``,
applying each ADDED / MODIFIED / DELETED event and remembering the newest resourceVersion it was told (an
event's, or a BOOKMARK's). A stream that ends or breaks is resumed from that version, without a list; a
version the API server no longer keeps (410 Gone, as an ERROR event or the answer) is relisted, the list
replacing what was kept. A watch that cannot be had (403 Forbidden, an API server that refuses the
connection) leaves the objects as they were last seen: the informer says it is *failing*, why and since
when (:class:`WatchState`), and tries again after a growing pause.

Lists and events are read as the API's JSON straight from the response (the client's ``*_without_preload_
content`` calls), never turned into the client's models: the cache holds the plain dicts the rest of the
bot reads. Writes never go through here.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, partial
from typing import Any

import aiohttp
from kubernetes.aio import client as kclient
from kubernetes.aio.client.exceptions import ApiException

from bot.cluster.client import translate
from bot.core import times
from bot.core.errors import ClusterError
from bot.core.tasks import cancel
from bot.core.text import foreign

log = logging.getLogger(__name__)

Opener = Callable[..., Awaitable[Any]]  # (namespace, **query) -> the raw aiohttp response

_STAMPS = itertools.count(1)  # every change of every informer's objects gets the next number (see Informer.stamp)


@dataclass(frozen=True)
class Source:
    """What an informer follows: a kind (``deployments``), how to open its namespaced list, selectors, and the name
    its watch is given in ``python -m bot check`` and status (``name``, default the kind)."""

    kind: str
    opener: Callable[[kclient.ApiClient], Opener]
    field_selector: str = ""
    label_selector: str = ""
    name: str = ""

    @property
    def title(self) -> str:
        """What its watch is called: ``audit events`` (``events`` when it has no name of its own)."""
        return self.name or self.kind

    @cached_property
    def key(self) -> str:
        """The kind, and its selectors when there are any: ``configmaps[app.kubernetes.io/component=request]``."""
        selectors = ",".join(s for s in (self.field_selector, self.label_selector) if s)
        return f"{self.kind}[{selectors}]" if selectors else self.kind


def custom(group: str, version: str, plural: str) -> Source:
    """The source of a custom resource's objects (Mappings, Certificates)."""
    def opener(client: kclient.ApiClient) -> Opener:
        lister = kclient.CustomObjectsApi(client).list_namespaced_custom_object_without_preload_content
        return partial(lister, group, version, plural=plural)

    return Source(plural, opener)


class State(enum.Enum):
    SYNCING = "syncing"  # the first list has not come back yet
    WATCHING = "watching"  # listed, and a watch is open (or being reopened after it ended)
    FAILING = "failing"  # the last list or watch failed; the objects are as last seen
    STOPPED = "stopped"


@dataclass(frozen=True)
class WatchState:
    """One informer's state, for ``python -m bot check`` and status's "may be stale"."""

    namespace: str
    kind: str
    state: State
    since: datetime  # when it entered this state
    reason: str = ""  # why it is failing
    current_at: datetime | None = None  # the objects were known current then (None: never listed)
    lists: int = 0
    watches: int = 0

    def line(self) -> str:
        """``deployments in svc-1: watching since 12:00:03 UTC (1 list, 3 watches)``."""
        text = f"{self.kind} in {self.namespace}: {self.state.value} since {self.since:%H:%M:%S} UTC"
        if self.reason:
            text += f" ({self.reason})"
        return text + f" ({self.lists} list{'s' * (self.lists != 1)}, {self.watches} watch{'es' * (self.watches != 1)})"


class Gone(Exception):
    """The resourceVersion to resume from is no longer kept (410): list again."""


class Informer:
    """The objects of ``source`` in ``namespace``, by name, kept current by a watch once :meth:`start` ed.

    ``watch_seconds`` is each watch request's ``timeoutSeconds`` (the stream then ends and is resumed);
    ``pause`` and ``max_pause`` bound the growing wait after a failure.
    """

    def __init__(self, client: kclient.ApiClient, namespace: str, source: Source, *, watch_seconds: float = 300,
                 pause: float = 1.0, max_pause: float = 30.0, clock: Callable[[], datetime] = times.now) -> None:
        self.namespace = namespace
        self.source = source
        self.watch_seconds = watch_seconds
        self.pause, self.max_pause = pause, max_pause
        self._open = source.opener(client)
        self._clock = clock
        self.objects: dict[str, dict] = {}
        self.stamp = 0  # a new number at every list and applied event: what was built from the objects holds while
        self.resource_version = ""  # it is the same (numbers are never reused, by any informer)
        self.synced = asyncio.Event()  # listed at least once
        self.answered = asyncio.Event()  # a watch opened, or a list or watch failed, at least once
        self._state = State.SYNCING
        self._since = clock()
        self._reason = ""
        self._current_at: datetime | None = None
        self.lists = 0
        self.watches = 0
        self._task: asyncio.Task[None] | None = None

    # --- reading ------------------------------------------------------------------------------------

    def get(self, name: str) -> dict | None:
        return self.objects.get(name)

    @property
    def watching(self) -> bool:
        """Listed, and its watch kept: the objects are current (give or take a watch's lag)."""
        return self._state is State.WATCHING

    def items(self) -> list[dict]:
        return list(self.objects.values())

    @property
    def state(self) -> WatchState:
        current = self._clock() if self._state is State.WATCHING else self._current_at
        return WatchState(self.namespace, self.source.title, self._state, self._since, self._reason, current,
                          self.lists, self.watches)

    # --- running ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.source.kind} {self.namespace}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        self._enter(State.STOPPED)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
                failures = 0
            except Gone:
                self.resource_version = ""  # relist at once
            except ClusterError as exc:
                self._fail(str(exc))
                await asyncio.sleep(min(self.max_pause, self.pause * 2 ** failures))
                failures += 1

    def _enter(self, state: State, reason: str = "") -> None:
        if state is not self._state or reason != self._reason:
            if self._state is State.WATCHING:
                self._current_at = self._clock()
            self._state, self._reason, self._since = state, reason, self._clock()

    def _fail(self, reason: str) -> None:
        if self._state is not State.FAILING:
            log.warning("watch of %s in %s failing: %s", self.source.title, self.namespace, reason)
        self._enter(State.FAILING, reason)
        self.answered.set()

    async def _request(self, verb: str, timeout: float, **query: Any) -> Any:
        """Open a list or watch; an error answer (or no answer) raised as the project's error."""
        if self.source.field_selector:
            query["field_selector"] = self.source.field_selector
        if self.source.label_selector:
            query["label_selector"] = self.source.label_selector
        try:
            response = await self._open(self.namespace, _request_timeout=timeout, **query)
        except Exception as exc:
            raise translate(exc, verb, self.source.kind) from None
        if response.status >= 400:
            body = (await response.read()).decode("utf-8", "replace")
            response.release()
            if response.status == 410:
                raise Gone()
            raise translate(ApiException(status=response.status, reason=response.reason, body=body), verb,
                            self.source.kind)
        return response

    async def _list(self) -> None:
        response = await self._request("list", 30.0)
        try:
            found = json.loads(await response.read())
        except (ValueError, aiohttp.ClientError) as exc:
            raise translate(exc, "list", self.source.kind) from None
        self.lists += 1
        self.objects = {item["metadata"]["name"]: item for item in found.get("items") or []}
        self.stamp = next(_STAMPS)
        self.resource_version = str((found.get("metadata") or {}).get("resourceVersion") or "")
        self._current_at = self._clock()
        self._enter(State.WATCHING)
        self.synced.set()

    async def _watch(self) -> None:
        """One watch request from the last version, until its stream ends (returns) or breaks (resumed too)."""
        response = await self._request("watch", float(self.watch_seconds + 30), watch=True, allow_watch_bookmarks=True,
                                       resource_version=self.resource_version,
                                       timeout_seconds=int(self.watch_seconds))
        self.watches += 1
        self._enter(State.WATCHING)
        self.answered.set()
        try:
            async for raw in response.content:
                if raw.strip():
                    self._apply(json.loads(raw))
        except (TimeoutError, aiohttp.ClientError, ConnectionError, ValueError):
            log.info("watch of %s in %s broke; resuming from %s", self.source.kind, self.namespace,
                     self.resource_version)
        finally:
            response.release()

    def _apply(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            if code == 410:
                raise Gone()
            reason = foreign(str(obj.get("reason") or ""), 80)
            raise ClusterError(f"watch of {self.source.kind} ended: HTTP {code} {reason}".strip(), code, reason)
        meta = obj.get("metadata") or {}
        if kind in ("ADDED", "MODIFIED"):
            self.objects[meta["name"]] = obj
            self.stamp = next(_STAMPS)
        elif kind == "DELETED":
            self.objects.pop(meta.get("name", ""), None)
            self.stamp = next(_STAMPS)
        if meta.get("resourceVersion"):
            self.resource_version = str(meta["resourceVersion"])
