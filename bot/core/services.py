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
    holds: Any = None  # bot.release.holds.Holds: locks and freezes
    extras: dict[str, Any] = field(default_factory=dict)
    _cluster: Cluster | None = None
    _cluster_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

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
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None
