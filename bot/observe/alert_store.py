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

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.observe.alert_group import FLOOD, AlertGroup, group_id

log = logging.getLogger(__name__)

CONFIGMAP = "hello-chatops-alerts"
PREFIX = "group."
KEEP_GROUPS = 30  # groups kept besides the firing ones
BUDGET = 600_000  # bytes of stored groups past which the firing ones are kept in short (ConfigMaps hold 1 MiB)
_NEVER = datetime.min.replace(tzinfo=UTC)


def _pruned(groups: dict[str, AlertGroup]) -> list[AlertGroup]:
    """The groups worth keeping: every firing one (none is dropped while it fires), then the most recently
    changed of the others, :data:`KEEP_GROUPS` at most. Past :data:`BUDGET` bytes the firing groups keep
    their counts but not their list of alerts and description (the card has shown them already)."""
    firing = sorted((g for g in groups.values() if g.firing), key=lambda g: g.received or _NEVER, reverse=True)
    others = sorted((g for g in groups.values() if not g.firing), key=lambda g: g.received or _NEVER, reverse=True)
    kept = firing + others[:KEEP_GROUPS]
    if sum(len(g.to_json()) for g in kept) > BUDGET:
        for group in firing:
            group.alerts, group.description = [], ""
    return kept


def _settle(done: asyncio.Future, result: Any = None, *, error: BaseException | None = None) -> None:
    if done.done():  # its caller is gone (cancelled)
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


class _Refused(Exception):
    """A ``decide`` of a batch raised: its caller gets ``error``; the others are written without it."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


class _Batch:
    """Changes waiting for this replica's next write: ``decide`` functions and their callers' futures."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Callable[[dict[str, AlertGroup]], tuple[Any, bool]], asyncio.Future]] = []


class AlertStore:
    """The alert groups in the ConfigMap :data:`CONFIGMAP`, changed only by compare-and-swap."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], name: str = CONFIGMAP) -> None:
        self._store = ConfigMapStore(cluster, name)
        self.name = name
        self._batch = _Batch()
        self._writing = asyncio.Lock()

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
        return sorted((g for g in found.values() if g.kind != FLOOD), key=lambda g: g.received or _NEVER,
                      reverse=True)

    async def firing(self) -> list[AlertGroup]:
        """The groups firing now (as Alertmanager last said), oldest first."""
        return sorted((g for g in await self.groups() if g.firing), key=lambda g: g.starts_at)

    async def get(self, group: str) -> AlertGroup | None:
        """A group by its id (:func:`~bot.observe.alert_group.group_id`) or its Alertmanager group key."""
        found = self._groups(await self._store.read() or {})
        return found.get(group) or found.get(group_id(group))

    async def transact(self, decide: Callable[[dict[str, AlertGroup]], tuple[Any, bool]]) -> Any:
        """Read, let ``decide`` change the groups (returning (result, changed)), write; redone on a conflict.

        The changes this replica asks for at once are written together, one write at a time (so they never
        conflict with each other, however many webhooks arrive); a ``decide`` that raises changes nothing and
        its caller gets the exception."""
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._batch.waiting.append((decide, done))
        async with self._writing:
            if not done.done():
                batch, self._batch = self._batch, _Batch()
                await self._write(batch.waiting)
        return await done

    async def _write(self, waiting: list[tuple[Callable, asyncio.Future]]) -> None:
        while waiting:
            try:
                results = await self._store.update(lambda data: self._apply(data, [d for d, _ in waiting]))
            except _Refused as refused:
                _settle(waiting.pop(refused.index)[1], error=refused.error)
                continue
            except Exception as exc:  # the write itself failed: every caller hears it
                for _, done in waiting:
                    _settle(done, error=exc)
                return
            for (_, done), result in zip(waiting, results, strict=True):
                _settle(done, result)
            return

    def _apply(self, data: dict[str, str], decides: list[Callable]) -> list[Any]:
        groups = self._groups(data)
        results, changed = [], False
        for index, decide in enumerate(decides):
            try:
                result, changes = decide(groups)
            except Exception as exc:
                raise _Refused(index, exc) from None
            results.append(result)
            changed = changed or changes
        if changed:
            for key in [k for k in data if k.startswith(PREFIX)]:
                del data[key]
            data.update({PREFIX + g.id: g.to_json() for g in _pruned(groups)})
        return results

    async def change(self, group: str, apply: Callable[[AlertGroup], Any]) -> Any:
        """Apply ``apply`` to one stored group (it may raise to change nothing); None when it is unknown."""

        def decide(groups: dict[str, AlertGroup]) -> tuple[Any, bool]:
            found = groups.get(group)
            if found is None:
                return None, False
            return apply(found), True

        return await self.transact(decide)
