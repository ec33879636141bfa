"""The one compare-and-swap store: a ConfigMap's data, changed only by read-modify-write.

Every write is a PUT carrying the resourceVersion that was read (or a create, for a ConfigMap that
does not exist yet), so of two replicas writing at once exactly one wins; the other gets a 409
Conflict, reads again and decides again on what it finds. Approval requests, schedules and releases
all live in ConfigMaps written this way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from bot.cluster.configmaps import MANAGED
from bot.cluster.kube import Cluster
from bot.core.errors import ClusterError, Conflict
from bot.core.retry import CONFLICTS, conflict, outage, retry

log = logging.getLogger(__name__)

T = TypeVar("T")


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
        cm = await cluster.configmaps.get(self.name)
        return None if cm is None else dict(cm.get("data") or {})

    async def update(self, mutate: Callable[[dict[str, str]], T], *, create: bool = True) -> T:
        """Read, let ``mutate`` change the data in place and return a result, write it back if it changed.

        A conflict means someone else wrote first: the data is read again and ``mutate`` called again
        (up to ``attempts`` times, a few milliseconds apart). A write the API server failed (5xx, 429,
        unreachable) is sent again after a pause, as :data:`bot.core.retry.CLUSTER` says.
        ``mutate`` may raise to give up without writing. With ``create=False`` a missing ConfigMap is
        never created (``mutate`` sees empty data and its changes are dropped).
        """
        cluster = await self._cluster()

        async def once() -> T:
            cm = await cluster.configmaps.get(self.name)
            data = dict((cm or {}).get("data") or {})
            before = dict(data)
            result = mutate(data)
            if (data == before and cm is not None) or (cm is None and not create):
                return result
            if cm is None:
                await retry(cluster.configmaps.create, self.name, data, self.labels, when=outage)
            else:
                await retry(cluster.configmaps.replace, {**cm, "data": data}, when=outage)
            return result

        try:
            return await retry(once, backoff=replace(CONFLICTS, attempts=self.attempts), when=conflict)
        except Conflict:
            raise ClusterError(f"configmaps/{self.name} kept changing: gave up after {self.attempts} attempts",
                               409) from None
