"""The service objects handed to every command: configuration, policy, messaging and the clients.

External dependencies are connected lazily: a Kubernetes cluster or Prometheus that cannot be
reached makes the commands that need it answer with the reason; the bot itself keeps running.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.config import Config
from bot.kube import Cluster
from bot.messenger import Messenger
from bot.policy import Policy

if TYPE_CHECKING:
    from commands import Registry


@dataclass
class Services:
    config: Config
    messenger: Messenger
    policy: Policy
    registry: Registry
    cluster_override: Cluster | None = None
    prometheus: Any = None  # bot.prom.Prometheus
    approvals: Any = None  # bot.approvals.Approvals
    audit: Any = None  # bot.audit.Audit
    schedules: Any = None  # bot.schedule.Scheduler
    extras: dict[str, Any] = field(default_factory=dict)
    _cluster: Cluster | None = None
    _cluster_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def cluster(self) -> Cluster:
        """The connected cluster; raises :class:`bot.errors.ClusterError` with the reason if unavailable."""
        if self.cluster_override is not None:
            return self.cluster_override
        async with self._cluster_lock:
            if self._cluster is None:
                self._cluster = await Cluster.connect(self.config)
            return self._cluster

    async def close(self) -> None:
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None
