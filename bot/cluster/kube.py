"""The bot's cluster layer: one service's namespace, reached through the official ``kubernetes.aio`` client.

Everything the bot does to Kubernetes goes through a :class:`Cluster`, one part per concern, each built
on the same :class:`~bot.cluster.client.Api` (which translates failures into the project's own exceptions
and retries what may be repeated):

- ``cluster.deployments``: the service's Deployments: read, patch, scale, watch
  (:mod:`.workloads`); ``cluster.replicasets`` and ``cluster.pods`` behind them;
- ``cluster.traffic``: the :class:`~bot.cluster.traffic.TrafficRouter`, the routes and the canary's share;
- ``cluster.certificates``: cert-manager Certificates: read, watch, patch the status (:mod:`.certificates`);
- ``cluster.jobs``: Jobs, the load of a load test or of an analysed step, and their pods' logs (:mod:`.jobs`);
- ``cluster.events``: Events: recent warnings and the audit records (:mod:`.events`);
- ``cluster.configmaps``: the bot's state, under the compare-and-swap store (:mod:`.configmaps`, :mod:`.store`);
- ``cluster.leases``: the Lease of leader election (:mod:`.leases`, :mod:`.leader`).

:meth:`Cluster.deployed` reads all of the service at once into a :class:`Deployed` snapshot, which
``/hello status``, Home, digests and alert cards show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.aio import client as kclient

from bot.cluster.certificates import Certificates, CertState, cert_from
from bot.cluster.client import Api, load_configuration
from bot.cluster.configmaps import ConfigMaps
from bot.cluster.deployments import Track, track_from
from bot.cluster.events import EventInfo, Events
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


class Cluster:
    """One service's namespace (``config``'s). Create with :meth:`connect`; close with :meth:`close`."""

    def __init__(self, api_client: kclient.ApiClient, config: Config, *, host: str = "") -> None:
        self.config = config
        self.namespace = config.namespace
        self.host = host
        self.api = Api(api_client, config.namespace)
        self.deployments = Deployments(self.api)
        self.replicasets = ReplicaSets(self.api)
        self.pods = Pods(self.api)
        self.traffic = router_for(self.api, config)
        self.certificates = Certificates(self.api, config.certificate)
        self.events = Events(self.api)
        self.jobs = Jobs(self.api)
        self.configmaps = ConfigMaps(self.api)
        self.leases = Leases(self.api)

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
        return Cluster(self.api.client, config, host=self.host)

    async def close(self) -> None:
        await self.api.close()

    async def deployed(self, *, events: bool = True) -> Deployed:
        """Read both tracks, both routes, the certificate and (``events``) recent warnings, concurrently.

        A part that cannot be read is recorded in ``missing`` with the reason instead of failing the whole;
        when every part failed because the API server is out of reach, that is raised.
        """
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
        return Deployed(
            namespace=self.namespace,
            stable=track_from("stable", stable, cfg.container) if stable else None,
            canary=track_from("canary", canary, cfg.container) if canary else None,
            stable_route=stable_route,
            canary_route=canary_route,
            certificate=cert_from(cert) if cert else None,
            warnings=tuple(warnings[0] or ()) if warnings else (),
            missing=missing,
        )

    async def check(self) -> str:
        """One line for ``bot check``: can we read the stable Deployment?"""
        await self.deployments.get(self.config.stable_deployment)
        return f"ok, {self.host}, namespace {self.namespace}"
