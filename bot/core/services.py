"""What the parts of the bot share (:class:`Shared`) and the assembled bot handed to commands (:class:`Services`).

External dependencies are connected lazily: a Kubernetes cluster or Prometheus that cannot be
reached makes the commands that need it answer with the reason; the bot itself keeps running.
Both are built once by :func:`bot.wiring.build_services`, the composition root; the core only names the types.
A part receives the basics it uses (the configuration, the messenger, the policy, the targets, a way to reach
the cluster) and the other parts it calls, each typed by its interface in :mod:`bot.core.ports`; the parts
that use most of the basics (approvals, the release engine, the alert cards, the scheduler) receive the whole
:class:`Shared` bundle and say why. Only commands and the chat layer see the whole :class:`Services`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.core.catalogue import Catalogue
from bot.core.config import Config
from bot.core.errors import ClusterError
from bot.core.policy import Policy
from bot.core.ports import AlertDesk, AuditTrail, Holds, HomeTabs, Leader, Metrics, Releases, Requests, Schedules
from bot.core.target import Target, Targets

if TYPE_CHECKING:
    from bot.chat.contract import Registry
    from bot.chat.messenger import Messenger
    from bot.cluster.kube import Cluster


@dataclass
class Shared:
    """The configuration, the catalogue's targets, policy, messaging and the cluster and Prometheus accessors:
    the basics that no part owns (no part of the bot is reachable from here). A part that uses only a few of
    them receives those; one that uses most receives this bundle (see :func:`bot.wiring.build_services`)."""

    config: Config
    messenger: Messenger
    policy: Policy
    registry: Registry
    connect: Callable[[Config], Awaitable[Cluster]] | None = None  # how to reach the cluster
    cluster_override: Cluster | None = None
    prometheus: Metrics | None = None  # the bot's own target's; others' through Target.prometheus
    catalogue: Catalogue | None = None  # None: the catalogue of one the variables describe
    _cluster: Cluster | None = None
    _cluster_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _clusters: dict[tuple[str, bool], Cluster] = field(default_factory=dict)  # connections by context
    _scoped_clusters: dict[Config, Cluster] = field(default_factory=dict)  # by the (frozen) config: one per pair
    make_prometheus: Callable[[Config], Metrics] | None = None  # a Prometheus client for one target's config
    _prometheus: dict[tuple[str, str], Metrics] = field(default_factory=dict)
    _targets: Targets | None = None

    def __post_init__(self) -> None:
        if self.catalogue is None:
            self.catalogue = Catalogue.from_config(self.config)

    @property
    def targets(self) -> Targets:
        """The catalogue's targets (:class:`Targets`): every entry point resolves its target here, once."""
        if self._targets is None or self._targets.catalogue is not self.catalogue:
            assert self.catalogue is not None
            self._targets = Targets(self.catalogue, self.config, self.policy, connect=self._cluster_of,
                                    prometheus=self._prometheus_of)
        return self._targets

    def target(self, service: str = "", environment: str = "") -> Target:
        """The target recorded as ``(service, environment)`` (no service: the bot's own; see :meth:`Targets.get`)."""
        return self.targets.get(service, environment)

    def _prometheus_of(self, target: Target) -> Metrics | None:
        if target.config is self.config or self.make_prometheus is None:
            return self.prometheus
        key = (target.service.name, target.environment.name)
        if key not in self._prometheus:
            self._prometheus[key] = self.make_prometheus(target.config)
        return self._prometheus[key]

    async def _cluster_of(self, config: Config) -> Cluster:
        """The cluster and namespace ``config`` names (a target's): the bot's own connection when
        the kubeconfig context is the same, else one connection per context, shared by its services."""
        if config is self.config:
            return await self.cluster()
        scoped = self._scoped_clusters.get(config)
        if scoped is not None:
            return scoped
        where = (config.kube_context, config.kube_in_cluster)
        if where == (self.config.kube_context, self.config.kube_in_cluster):
            base = await self.cluster()
        else:
            async with self._cluster_lock:
                base = self._clusters.get(where)
                if base is None:
                    if self.connect is None:
                        raise ClusterError("no way to reach a Kubernetes cluster is configured")
                    base = self._clusters[where] = await self.connect(config)
        scoped = self._scoped_clusters[config] = base.scoped(config)
        return scoped

    async def cluster(self) -> Cluster:
        """The connected cluster; raises :class:`bot.core.errors.ClusterError` with the reason if unavailable."""
        if self.cluster_override is not None:
            return self.cluster_override
        async with self._cluster_lock:
            if self._cluster is None:
                if self.connect is None:
                    raise ClusterError("no way to reach a Kubernetes cluster is configured")
                self._cluster = await self.connect(self.config)
            return self._cluster

    async def close(self) -> None:
        for other in self._clusters.values():
            await other.close()
        self._clusters.clear()
        self._scoped_clusters.clear()
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None


@dataclass(frozen=True, kw_only=True)
class Services:
    """The assembled bot: the :class:`Shared` basics and every part, each seen through its interface
    (:mod:`bot.core.ports`). Built once, complete, by :func:`bot.wiring.build_services`; never changed after."""

    shared: Shared
    audit: AuditTrail
    holds: Holds
    alerts: AlertDesk
    leader: Leader  # shared by schedules and releases
    schedules: Schedules
    approvals: Requests
    releases: Releases
    home: HomeTabs

    @property
    def config(self) -> Config:
        return self.shared.config

    @property
    def messenger(self) -> Messenger:
        return self.shared.messenger

    @property
    def policy(self) -> Policy:
        return self.shared.policy

    @property
    def registry(self) -> Registry:
        return self.shared.registry

    @property
    def catalogue(self) -> Catalogue | None:
        return self.shared.catalogue

    @property
    def prometheus(self) -> Metrics | None:
        return self.shared.prometheus

    @property
    def targets(self) -> Targets:
        return self.shared.targets

    def target(self, service: str = "", environment: str = "") -> Target:
        return self.shared.target(service, environment)

    async def cluster(self) -> Cluster:
        return await self.shared.cluster()

    async def close(self) -> None:
        await self.shared.close()
