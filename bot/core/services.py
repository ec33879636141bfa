"""The service objects handed to every command: configuration, policy, messaging and the clients.

External dependencies are connected lazily: a Kubernetes cluster or Prometheus that cannot be
reached makes the commands that need it answer with the reason; the bot itself keeps running.
The object is assembled by :func:`bot.wiring.build_services`; the core only names the types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.core.catalogue import Catalogue, Environment, Service
from bot.core.config import Config
from bot.core.policy import Policy

if TYPE_CHECKING:
    from bot.chat.contract import Registry
    from bot.chat.messenger import Messenger
    from bot.cluster.kube import Cluster


@dataclass
class Services:
    config: Config
    messenger: Messenger
    policy: Policy
    registry: Registry
    connect: Callable[[Config], Awaitable[Cluster]] | None = None  # how to reach the cluster
    cluster_override: Cluster | None = None
    prometheus: Any = None  # bot.observe.prom.Prometheus
    approvals: Any = None  # bot.release.approvals.Approvals
    audit: Any = None  # bot.release.audit.Audit
    schedules: Any = None  # bot.observe.schedule.Scheduler
    releases: Any = None  # bot.release.engine.Engine
    leader: Any = None  # bot.cluster.leader.LeaderElector, shared by schedules and releases
    home: Any = None  # bot.release.home.Home: the App Home tabs
    alerts: Any = None  # bot.observe.alerts.AlertCards: Alertmanager's notifications and the alert cards
    holds: Any = None  # bot.release.holds.Holds: freezes and manual locks
    catalogue: Catalogue | None = None  # None: the catalogue of one the variables describe
    extras: dict[str, Any] = field(default_factory=dict)
    _cluster: Cluster | None = None
    _cluster_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _scoped: dict[tuple[str, str], Config] = field(default_factory=dict)
    _clusters: dict[tuple[str, bool], Cluster] = field(default_factory=dict)  # connections by context
    _scoped_clusters: dict[int, Cluster] = field(default_factory=dict)  # by the config (one per pair)
    _policies: dict[int, Policy] = field(default_factory=dict)
    make_prometheus: Callable[[Config], Any] | None = None  # a Prometheus client for one service's config
    _prometheus: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.catalogue is None:
            self.catalogue = Catalogue.from_config(self.config)

    @property
    def several(self) -> bool:
        """Whether a catalogue file lists the services (else the variables describe one service)."""
        return bool(self.catalogue and self.catalogue.source)

    def resolve(self, service: str | None, environment: str | None, channel: str = "") -> tuple[Service, Environment]:
        """The catalogue's service and environment (see :meth:`Catalogue.resolve`)."""
        assert self.catalogue is not None
        return self.catalogue.resolve(service, environment, channel)

    def config_for(self, service: str = "", environment: str = "") -> Config:
        """The configuration of a service in an environment; "" for either means the default.

        With the variables' catalogue of one service this is :attr:`config` itself; so is it for both names
        "" (a request or release recorded before a catalogue was configured is the variables' service's).
        """
        if not service and not environment:
            return self.config
        chosen, env = self.resolve(service or None, environment or None)
        if not self.several:
            return self.config
        key = (chosen.name, env.name)
        if key not in self._scoped:
            self._scoped[key] = chosen.config_for(env, self.config, by_namespace=len(self.catalogue.services) > 1)
        return self._scoped[key]

    def policy_for(self, config: Config) -> Policy:
        """The policy with ``config``'s deployers, approvers and channels (one service in one environment)."""
        if config is self.config:
            return self.policy
        policy = self._policies.get(id(config))
        if policy is None:
            policy = self._policies[id(config)] = Policy(config, self.policy.groups)
        return policy

    def prometheus_for(self, config: Config) -> Any:
        """The Prometheus client for one service in one environment (its URL, metric names and selectors)."""
        if config is self.config or self.make_prometheus is None:
            return self.prometheus
        if id(config) not in self._prometheus:
            self._prometheus[id(config)] = self.make_prometheus(config)
        return self._prometheus[id(config)]

    async def cluster_for(self, config: Config) -> Cluster:
        """The cluster and namespace ``config`` names (from :meth:`config_for`): the bot's own connection when
        the kubeconfig context is the same, else one connection per context, shared by its services."""
        if config is self.config:
            return await self.cluster()
        scoped = self._scoped_clusters.get(id(config))
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
                        from bot.core.errors import ClusterError

                        raise ClusterError("no way to reach a Kubernetes cluster is configured")
                    base = self._clusters[where] = await self.connect(config)
        scoped = self._scoped_clusters[id(config)] = base.scoped(config)
        return scoped

    async def cluster(self) -> Cluster:
        """The connected cluster; raises :class:`bot.core.errors.ClusterError` with the reason if unavailable."""
        if self.cluster_override is not None:
            return self.cluster_override
        async with self._cluster_lock:
            if self._cluster is None:
                if self.connect is None:
                    from bot.core.errors import ClusterError

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
