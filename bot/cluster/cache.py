"""The watch caches of one connection to an API server: an :class:`~bot.cluster.informer.Informer` per
(namespace, kind), started only for the namespaces the catalogue names.

:class:`Caches` is shared by every :class:`~bot.cluster.kube.Cluster` scoped from one connection. The
informers talk through a client of their own, on the same configuration but without a bound on open
connections: each watch holds one open for minutes, and the reads and writes of releases must never
queue behind them. The kinds a service's status needs are :data:`DEPLOYMENTS`, :data:`CERTIFICATES`,
:data:`WARNINGS` (Warning Events only) and its traffic router's routes (the router names their source); the
audit trail's Events are followed as :data:`AUDIT` (their label), the bot's own records and alert groups
through :func:`configmaps` with their labels, the schedules' one ConfigMap through :func:`configmap` by its
name. An Event expires on the API server (an hour by default) and its watch then deletes it from the cache
too: the cache of Events holds what the API server keeps, no more.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kubernetes.aio import client as kclient

from bot.cluster.certificates import CERTIFICATE
from bot.cluster.informer import Informer, Source, State, WatchState, custom
from bot.core.durations import duration
from bot.core.errors import ClusterError
from bot.core.times import now

log = logging.getLogger(__name__)

DEPLOYMENTS = Source("deployments", lambda c: kclient.AppsV1Api(c).list_namespaced_deployment_without_preload_content)
CERTIFICATES = custom(*CERTIFICATE)
WARNINGS = Source("events", lambda c: kclient.CoreV1Api(c).list_namespaced_event_without_preload_content,
                  field_selector="type=Warning")

AUDIT_SELECTOR = "app.kubernetes.io/managed-by=hello-chatops"  # the label of the audit trail's Events


def events(label_selector: str, name: str = "") -> Source:
    """The Events with these labels (``a=b``); ``name``: what their watch is called."""
    return Source("events", lambda c: kclient.CoreV1Api(c).list_namespaced_event_without_preload_content,
                  label_selector=label_selector, name=name)


AUDIT = events(AUDIT_SELECTOR, "audit events")


def configmaps(label_selector: str) -> Source:
    """The ConfigMaps with these labels (``a=b,c=d``): the bot's own records, in its state namespace."""
    return Source("configmaps", lambda c: kclient.CoreV1Api(c).list_namespaced_config_map_without_preload_content,
                  label_selector=label_selector)


def configmap(name: str) -> Source:
    """The ConfigMap ``name`` alone (a field selector on its name): one of the bot's own stores."""
    return Source("configmaps", lambda c: kclient.CoreV1Api(c).list_namespaced_config_map_without_preload_content,
                  field_selector=f"metadata.name={name}")


class Caches:
    """The informers of one connection (``client``), keyed by (namespace, the source's kind and selectors)."""

    def __init__(self, client: kclient.ApiClient, *, watch_seconds: float = 300) -> None:
        self._base = client
        self._client: kclient.ApiClient | None = None
        self.watch_seconds = watch_seconds
        self._informers: dict[tuple[str, str], Informer] = {}

    def _watch_client(self) -> kclient.ApiClient:
        if self._client is None:
            configuration = copy.copy(self._base.configuration)
            configuration.connection_pool_maxsize = 0  # aiohttp: no bound; a watch per namespace and kind
            self._client = kclient.ApiClient(configuration)
        return self._client

    def follow(self, namespace: str, sources: Iterable[Source]) -> list[Informer]:
        """Start (once) an informer for each source in ``namespace``; the namespace's informers of them."""
        found = []
        for source in sources:
            key = (namespace, source.key)
            informer = self._informers.get(key)
            if informer is None:
                informer = self._informers[key] = Informer(self._watch_client(), namespace, source,
                                                           watch_seconds=self.watch_seconds)
                informer.start()
            found.append(informer)
        return found

    def synced(self, namespace: str, keys: Iterable[str]) -> list[Informer] | None:
        """The informers of ``keys`` (:attr:`Source.key`) in ``namespace`` when every one has listed at least once,
        else None."""
        found = [self._informers.get((namespace, key)) for key in keys]
        if any(informer is None or not informer.synced.is_set() for informer in found):
            return None
        return found  # type: ignore[return-value]

    def current(self, namespace: str, key: str) -> Informer | None:
        """The informer of ``key`` (:attr:`Source.key`) in ``namespace`` when it has listed and its watch is kept
        (its objects are what the API server has, give or take a watch's lag), else None. Never starts one."""
        informer = self._informers.get((namespace, key))
        return informer if informer is not None and informer.watching else None

    async def settle(self, namespace: str, timeout: float) -> list[WatchState]:
        """Wait (at most ``timeout`` seconds) until each informer of ``namespace`` has listed or is failing; their
        states."""
        waits = [asyncio.create_task(informer.answered.wait()) for (ns, _), informer in self._informers.items()
                 if ns == namespace]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for task in pending:
                task.cancel()
        return self.states(namespace)

    def states(self, namespace: str | None = None) -> list[WatchState]:
        """Every informer's state (of ``namespace``), by namespace and what its watch is called."""
        return [informer.state for (ns, _), informer in sorted(self._informers.items(),
                                                                key=lambda kv: (kv[0][0], kv[1].source.title, kv[0][1]))
                if namespace in (None, ns)]

    async def close(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
        self._informers.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None


def staleness(states: Iterable[WatchState]) -> str:
    """What status says when a watch cannot be kept: the figures may be stale, since when and how old they are
    (empty when every watch is current)."""
    failing = [s for s in states if s.state is State.FAILING]
    if not failing:
        return ""
    kinds = ", ".join(s.kind for s in failing)
    first = min(failing, key=lambda s: s.since)
    known = [s.current_at for s in failing if s.current_at is not None]
    as_of = min(known) if known else first.since
    age = duration(max(0.0, (now() - as_of).total_seconds()))
    return (f"figures may be stale: the watch of {kinds} has failed since {first.since:%H:%M:%S} UTC "
            f"({first.reason}); they are as of {as_of:%H:%M:%S} UTC, {age} old")


def summary(states: Iterable[WatchState]) -> tuple[bool, str]:
    """Whether every watch is current, and one line for ``python -m bot check``: ``watches: deployments,
    mappings watching; certificates failing since 12:00:03 UTC (the bot is not allowed to …)``."""
    watching = [s.kind for s in states if s.state is State.WATCHING]
    others = [s for s in states if s.state is not State.WATCHING]
    parts = [f"{', '.join(watching)} watching"] if watching else []
    parts += [f"{s.kind} {s.state.value} since {s.since:%H:%M:%S} UTC" + (f" ({s.reason})" if s.reason else "")
              for s in others]
    return not others, "watches: " + ("; ".join(parts) or "none")


class OwnCache:
    """The watch cache of one of the bot's own stores (its records, alert groups, schedules), for display reads
    only: :meth:`follow` starts it once (serving's warm-up does) through ``cluster``, an async factory of the
    :class:`~bot.cluster.kube.Cluster` that holds the store; :meth:`current` gives it while it is current."""

    def __init__(self, cluster: Callable[[], Awaitable[Any]], source: Source, what: str) -> None:
        self._cluster, self.source, self.what = cluster, source, what
        self.informer: Informer | None = None  # None until followed

    async def follow(self) -> None:
        """Start the cache (once); a cluster that cannot be reached is logged, and the store's display reads read
        the API server meanwhile."""
        if self.informer is None:
            try:
                self.informer = (await self._cluster()).cache_of(self.source)
            except ClusterError as exc:
                log.warning("cannot watch %s yet: %s", self.what, exc)

    def current(self) -> Informer | None:
        """The informer when it has listed and its watch is kept (no API read needed; a write a moment ago may show
        a moment later), else None: read the API server."""
        informer = self.informer
        return informer if informer is not None and informer.watching else None
