"""The alert groups in the ConfigMap :data:`CONFIGMAP`, changed only by compare-and-swap.

One key ``group.<id>`` per Alertmanager group key (JSON of an :class:`~bot.observe.alert_group.AlertGroup`);
the :data:`KEEP_GROUPS` most recently changed are kept, firing ones first, and every text in them is
cut, so the ConfigMap stays far under its 1 MiB limit. For the bake window (and anyone else)
:meth:`AlertStore.firing` answers what fires now::

    for group in await store.firing():     # list[AlertGroup], oldest first
        group.key        # Alertmanager's group key (str)
        group.severity   # highest severity of its alerts: "critical" > "warning" > "info" > ""
        group.alertname  # str
        group.starts_at  # datetime (UTC): when its earliest alert started
        group.channel, group.ts   # the card (ts "" until posted)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.observe.alert_group import AlertGroup, group_id

log = logging.getLogger(__name__)

CONFIGMAP = "hello-chatops-alerts"
PREFIX = "group."
KEEP_GROUPS = 30
_NEVER = datetime.min.replace(tzinfo=UTC)


def _pruned(groups: dict[str, AlertGroup]) -> list[AlertGroup]:
    """The groups worth keeping: firing ones first, then the most recently changed, at most KEEP_GROUPS."""
    ranked = sorted(groups.values(), key=lambda g: (g.firing, g.received or _NEVER), reverse=True)
    return ranked[:KEEP_GROUPS]


class AlertStore:
    """The alert groups in the ConfigMap :data:`CONFIGMAP`, changed only by compare-and-swap."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], name: str = CONFIGMAP) -> None:
        self._store = ConfigMapStore(cluster, name)
        self.name = name

    @staticmethod
    def _groups(data: dict[str, str]) -> dict[str, AlertGroup]:
        out: dict[str, AlertGroup] = {}
        for key, value in data.items():
            if key.startswith(PREFIX):
                try:
                    group = AlertGroup.from_json(value)
                except (ValueError, TypeError, KeyError):
                    log.warning("ignoring unreadable alert group %s in configmaps/%s", key, CONFIGMAP)
                    continue
                out[group.id] = group
        return out

    async def groups(self) -> list[AlertGroup]:
        """Every stored group, newest first."""
        found = self._groups(await self._store.read() or {})
        return sorted(found.values(), key=lambda g: g.received or _NEVER, reverse=True)

    async def firing(self) -> list[AlertGroup]:
        """The groups firing now (as Alertmanager last said), oldest first."""
        return sorted((g for g in await self.groups() if g.firing), key=lambda g: g.starts_at)

    async def get(self, group: str) -> AlertGroup | None:
        """A group by its id (:func:`~bot.observe.alert_group.group_id`) or its Alertmanager group key."""
        found = self._groups(await self._store.read() or {})
        return found.get(group) or found.get(group_id(group))

    async def transact(self, decide: Callable[[dict[str, AlertGroup]], tuple[Any, bool]]) -> Any:
        """Read, let ``decide`` change the groups (returning (result, changed)), write; redone on a conflict."""

        def mutate(data: dict[str, str]) -> Any:
            groups = self._groups(data)
            result, changed = decide(groups)
            if changed:
                for key in [k for k in data if k.startswith(PREFIX)]:
                    del data[key]
                data.update({PREFIX + g.id: g.to_json() for g in _pruned(groups)})
            return result

        return await self._store.update(mutate)

    async def change(self, group: str, apply: Callable[[AlertGroup], Any]) -> Any:
        """Apply ``apply`` to one stored group (it may raise to change nothing); None when it is unknown."""

        def decide(groups: dict[str, AlertGroup]) -> tuple[Any, bool]:
            found = groups.get(group)
            if found is None:
                return None, False
            return apply(found), True

        return await self.transact(decide)
