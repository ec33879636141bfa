"""The one compare-and-swap store: a ConfigMap's data, changed only by read-modify-write.

Every write is a PUT carrying the resourceVersion that was read (or a create, for a ConfigMap that
does not exist yet), so of two replicas writing at once exactly one wins; the other gets a 409
Conflict, reads again and decides again on what it finds. Approval requests, schedules and releases
all live in ConfigMaps written this way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.cluster.kube import Cluster
from bot.cluster.retry import RETRY_ATTEMPTS, jitter, transient
from bot.core.errors import ClusterError, Conflict

log = logging.getLogger(__name__)

T = TypeVar("T")
MANAGED = {"app.kubernetes.io/managed-by": "hello-chatops"}


class ConfigMapStore:
    """One ConfigMap, named ``name``, holding string values by key.

    ``cluster`` is an async factory for the :class:`~bot.cluster.kube.Cluster` (``services.cluster``).
    """

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], name: str, *,
                 labels: dict[str, str] | None = None, attempts: int = 400) -> None:
        self._cluster = cluster
        self.name = name
        self.labels = {**MANAGED, **(labels or {})}
        self.attempts = attempts

    async def read(self) -> dict[str, str] | None:
        """The data, or ``None`` when the ConfigMap does not exist."""
        cluster = await self._cluster()
        cm = await cluster.get_configmap(self.name)
        return None if cm is None else dict(cm.get("data") or {})

    async def update(self, mutate: Callable[[dict[str, str]], T], *, create: bool = True) -> T:
        """Read, let ``mutate`` change the data in place and return a result, write it back if it changed.

        A conflict means someone else wrote first: the data is read again and ``mutate`` called again.
        ``mutate`` may raise to give up without writing. With ``create=False`` a missing ConfigMap is
        never created (``mutate`` sees empty data and its changes are dropped).
        """
        cluster = await self._cluster()
        failures = conflicts = 0
        for _ in range(self.attempts):
            cm = await cluster.get_configmap(self.name)
            data = dict((cm or {}).get("data") or {})
            before = dict(data)
            result = mutate(data)
            if data == before and cm is not None:
                return result
            if cm is None and not create:
                return result
            try:
                if cm is None:
                    await cluster.create_configmap(self.name, data, labels=self.labels)
                else:
                    await cluster.replace_configmap({**cm, "data": data})
                return result
            except Conflict:  # a pause that grows with the crowd, so many writers of one object all get through
                conflicts += 1
                await asyncio.sleep(jitter(0.0, min(0.25, 0.005 * 2 ** min(conflicts, 6))))
            except ClusterError as exc:
                if not transient(exc) or failures >= RETRY_ATTEMPTS:
                    raise
                failures += 1
                await asyncio.sleep(0.05 * 2 ** failures)
        raise ClusterError(f"configmaps/{self.name} kept changing: gave up after {self.attempts} attempts", 409)
