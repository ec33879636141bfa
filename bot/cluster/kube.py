"""The bot's cluster layer: one service's namespace, reached through the official ``kubernetes.aio`` client.

Everything the bot does to Kubernetes goes through a :class:`Cluster`, one part per concern, each built
on the same :class:`~bot.cluster.client.Api` (which translates failures into the project's own exceptions
and retries what may be repeated):

- ``cluster.deployments``: the service's Deployments: read, patch, scale, watch
  (:mod:`.workloads`); ``cluster.replicasets`` and ``cluster.pods`` behind them;
- ``cluster.traffic``: the :class:`~bot.cluster.traffic.TrafficRouter`, the routes and the canary's share;
- ``cluster.certificates``: cert-manager Certificates: read, watch, patch the status (:mod:`.certificates`);
- ``cluster.jobs``: Jobs, the load of a load test or of an analysed step, and their pods' logs (:mod:`.jobs`);
- ``cluster.events``: Events: recent warnings and the audit records, read or shown from a cache (:mod:`.events`);
- ``cluster.configmaps``: the bot's state, under the compare-and-swap store (:mod:`.configmaps`, :mod:`.store`);
- ``cluster.leases``: the Lease of leader election (:mod:`.leases`, :mod:`.leader`).

:meth:`Cluster.deployed` reads all of the service at once into a :class:`Deployed` snapshot, which
``/hello status``, Home, digests and alert cards show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.aio import client as kclient

from bot.cluster.cache import AUDIT, CERTIFICATES, DEPLOYMENTS, WARNINGS, Caches, staleness, summary
from bot.cluster.certificates import Certificates, CertState, cert_from
from bot.cluster.client import Api, load_configuration
from bot.cluster.configmaps import ConfigMaps
from bot.cluster.deployments import Track, track_from
from bot.cluster.events import EventInfo, Events, warnings_of
from bot.cluster.informer import Informer, Source, WatchState
from bot.cluster.jobs import Jobs
from bot.cluster.leases import Leases
from bot.cluster.traffic import Route, router_for
from bot.cluster.workloads import Deployments, Pods, ReplicaSets
from bot.core.config import Config
from bot.core.errors import ClusterError


@dataclass(frozen=True)
class Deployed:
    """What is deployed, as ``/hello status`` shows it: a snapshot of the service's objects read at one time.

    Not the lifecycle of a release (that is :class:`bot.release.lifecycle.State`). ``missing`` maps a part
    that could not be read to why.
    """

    namespace: str
    stable: Track | None
    canary: Track | None
    stable_route: Route | None
    canary_route: Route | None
    certificate: CertState | None
    warnings: tuple[EventInfo, ...] = ()
    missing: dict[str, str] = field(default_factory=dict)
    cached: bool = False  # read from the watch caches (else from the API server, now)
    stale: str = ""  # a watch behind the caches is failing: the figures may be stale, and how old they are


class Cluster:
    """One service's namespace (``config``'s). Create with :meth:`connect`; close with :meth:`close`."""

    def __init__(self, api_client: kclient.ApiClient, config: Config, *, host: str = "",
                 caches: Caches | None = None) -> None:
        self.config = config
        self.caches = caches if caches is not None else Caches(api_client)
        self.namespace = config.namespace
        self.host = host
        self.api = Api(api_client, config.namespace)
        self.deployments = Deployments(self.api)
        self.replicasets = ReplicaSets(self.api)
        self.pods = Pods(self.api)
        self.traffic = router_for(self.api, config)
        self.certificates = Certificates(self.api, config.certificate)
        self.events = Events(self.api, self.caches)
        self.jobs = Jobs(self.api)
        self.configmaps = ConfigMaps(self.api)
        self.leases = Leases(self.api)
        self._keys = tuple(source.key for source in self.sources)
        self._shown: dict[bool, tuple[tuple[int, ...], Deployed]] = {}  # events? -> (the caches' stamps, built)
        self._parts: dict[str, tuple[object, Any]] = {}  # a part of it -> (what it was built from, built)

    @classmethod
    async def connect(cls, config: Config) -> Cluster:
        """Load kubeconfig (``KUBECONFIG`` / ``~/.kube/config``) or the in-cluster service account.

        Raises :class:`ClusterError` when neither is available; nothing is contacted yet.
        """
        configuration = await load_configuration(config)
        return cls(kclient.ApiClient(configuration), config, host=configuration.host)

    def scoped(self, config: Config) -> Cluster:
        """The same connection for another service or namespace (``config`` from ``Service.config_for``);
        closing the original closes it."""
        return Cluster(self.api.client, config, host=self.host, caches=self.caches)

    async def close(self) -> None:
        await self.caches.close()
        await self.api.close()

    @property
    def sources(self) -> tuple[Source, ...]:
        """What the service's status reads, as the watch caches follow it."""
        return (DEPLOYMENTS, self.traffic.source, CERTIFICATES, WARNINGS)

    def follow(self) -> None:
        """Keep watch caches of the service's namespace (once per namespace and connection): :meth:`deployed`
        reads them once each has listed, and the audit trail's display (:meth:`Events.shown`) its Events'."""
        self.caches.follow(self.namespace, (*self.sources, AUDIT))

    def cache_of(self, source: Source) -> Informer:
        """Keep (once per namespace and connection) a watch cache of ``source`` in this namespace: its informer,
        to be read only once it has listed."""
        return self.caches.follow(self.namespace, [source])[0]

    def watch_states(self) -> list[WatchState]:
        """The state of each watch behind this namespace's caches, for ``python -m bot check``."""
        return self.caches.states(self.namespace)

    async def deployed(self, *, events: bool = True) -> Deployed:
        """Read both tracks, both routes, the certificate and (``events``) recent warnings, concurrently.

        A part that cannot be read is recorded in ``missing`` with the reason instead of failing the whole;
        when every part failed because the API server is out of reach, that is raised.
        """
        cached = self.from_cache(events=events)
        if cached is not None:
            return cached
        cfg = self.config
        missing: dict[str, str] = {}

        async def part(key: str, read: Awaitable[Any]) -> Any:
            try:
                return await read
            except ClusterError as exc:
                missing[key] = str(exc)
            return None

        reads = [
            part("stable", self.deployments.get(cfg.stable_deployment)),
            part("canary", self.deployments.get(cfg.canary_deployment)),
            part("stable route", self.traffic.stable_route()),
            part("canary route", self.traffic.canary_route()),
            part("certificate", self.certificates.get()),
        ]
        if events:
            reads.append(part("events", self.events.warnings(limit=5)))
        stable, canary, stable_route, canary_route, cert, *warnings = await asyncio.gather(*reads)
        unreachable = [m for m in missing.values() if "unreachable" in m or "timed out" in m]
        if unreachable and len(missing) == len(reads):
            raise ClusterError(unreachable[0])
        return self._deployed(stable, canary, (stable_route, canary_route), cert, missing,
                              warnings=tuple(warnings[0] or ()) if warnings else ())

    def from_cache(self, *, events: bool = True) -> Deployed | None:
        """:meth:`deployed` from the watch caches, when every one the service needs has listed (else None).

        While every watch is kept, the snapshot is built once per change of the objects it reads: it is kept with
        the caches' :attr:`~bot.cluster.informer.Informer.stamp` s and given again while they are the same (a
        :class:`Deployed` is never changed), so an overview of hundreds of services builds only what changed; and
        when one object changed, the parts built from the others are kept (:meth:`_kept`)."""
        informers = self.caches.synced(self.namespace, self._keys)
        if informers is None:
            return None
        if not all(informer.watching for informer in informers):  # "may be stale", and since when: built anew
            return self._from(informers, events)
        stamps = tuple(informer.stamp for informer in (informers if events else informers[:3]))
        kept = self._shown.get(events)
        if kept is None or kept[0] != stamps:
            kept = self._shown[events] = (stamps, self._from(informers, events))
        return kept[1]

    def _from(self, informers: list[Informer], events: bool) -> Deployed:
        """The snapshot of the caches' objects now."""
        deployments, routes, certificates, warnings = informers
        cfg = self.config
        missing: dict[str, str] = {}

        def one(key: str, kind: str, name: str, objects: dict[str, dict]) -> dict | None:
            obj = objects.get(name)
            if obj is None:
                missing[key] = f"{kind}/{name} not found"
            return obj

        stable = one("stable", "deployments", cfg.stable_deployment, deployments.objects)
        canary = one("canary", "deployments", cfg.canary_deployment, deployments.objects)
        cert = one("certificate", "certificates", cfg.certificate, certificates.objects)
        found = self._kept("routes", routes.stamp, lambda: self.traffic.cached_routes(routes.objects))
        missing.update({key: str(route) for key, route in found.items() if isinstance(route, ClusterError)})
        stable_route, canary_route = (route if isinstance(route, Route) else None for route in found.values())
        current = all(informer.watching for informer in informers)
        return self._deployed(stable, canary, (stable_route, canary_route), cert, missing, keep=current,
                              warnings=tuple(warnings_of(warnings.items(), limit=5)) if events else (),
                              cached=True, stale="" if current else staleness(i.state for i in informers))

    def _kept(self, part: str, source: object, build: Callable[[], Any]) -> Any:
        """``build()``, kept while ``source`` is the same: the cached object it reads (a watch replaces an object,
        never changes it in place), or the stamp of the cache it reads."""
        kept = self._parts.get(part)
        if kept is None or not (kept[0] is source or kept[0] == source):
            kept = self._parts[part] = (source, build())
        return kept[1]

    def _deployed(self, stable: dict | None, canary: dict | None, routes: tuple[Route | None, Route | None],
                  cert: dict | None, missing: dict[str, str], *, keep: bool = False, **more: Any) -> Deployed:
        """The snapshot of the objects read (from the API server, or from the caches: ``keep`` the parts built from
        objects that did not change)."""
        container = self.config.container

        def part(key: str, obj: dict | None, build: Callable[[dict], Any]) -> Any:
            if obj is None:
                return None
            return self._kept(key, obj, lambda: build(obj)) if keep else build(obj)

        return Deployed(namespace=self.namespace,
                        stable=part("stable", stable, lambda d: track_from("stable", d, container)),
                        canary=part("canary", canary, lambda d: track_from("canary", d, container)),
                        stable_route=routes[0], canary_route=routes[1],
                        certificate=part("certificate", cert, cert_from), missing=missing, **more)

    async def check(self) -> str:
        """One line for ``bot check``: can we read the stable Deployment? Raises :class:`ClusterError` otherwise."""
        await self.deployments.get(self.config.stable_deployment)
        return f"ok, {self.host}, namespace {self.namespace}"

    async def check_watches(self, timeout: float = 10.0) -> tuple[bool, str]:
        """Start the namespace's watch caches and report each one's state once it has listed or failed (at
        most ``timeout`` seconds): whether all are watching, and a line for ``bot check``."""
        self.follow()
        return summary(await self.caches.settle(self.namespace, timeout))
