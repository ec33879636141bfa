"""The narrow interfaces by which the parts of the bot reach each other, each given to a part in its constructor.

Each is declared here, in the lowest layer, as a :class:`typing.Protocol` holding only what other parts call;
the implementations live in the layer that owns them (named in each docstring) and are built by
:func:`bot.wiring.build_services`. Every attribute of a port is typed by another small port (:class:`RecordStore`,
:class:`FiringAlerts`, :class:`Background`) or a type of this layer (:class:`bot.core.audit_entry.AuditEntry`,
:class:`bot.core.target.Target`); ``tests/core/test_shape.py`` refuses an attribute typed ``Any``. Values that
belong to the upper layers and only pass through a method (a request's record, a change, an invocation, a
Prometheus snapshot) appear there as ``Any``: their owner, named beside them, documents them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.core.audit_entry import AuditEntry
    from bot.core.target import Target


class ChartMarker(Protocol):
    """A change marked on a chart (``bot.observe.charts.Marker`` is one)."""

    @property
    def at(self) -> datetime: ...

    @property
    def label(self) -> str: ...

    @property
    def kind(self) -> str: ...


class AuditTrail(Protocol):
    """Who did what, kept as Kubernetes Events and posted to the audit channel (:class:`bot.release.audit.Audit`)."""

    async def record(self, phase: str, record: Any, *, user: str, note: str = "",
                     facts: dict[str, Any] | None = None, target: Target | None = None) -> dict[str, Any]: ...

    async def record_alert(self, phase: str, *, user: str, summary: str, group: str, channel: str,
                           note: str = "", facts: dict[str, Any] | None = None) -> dict[str, Any]: ...

    async def record_hold(self, verb: str, phase: str, *, user: str, summary: str, channel: str,
                          change_reason: str = "", facts: dict[str, Any] | None = None) -> dict[str, Any]: ...

    async def entries(self, target: Target | None = None) -> list[AuditEntry]: ...

    async def everywhere(self) -> tuple[list[AuditEntry] | None, list[str]]: ...

    async def recent(self, n: int = 20, target: Target | None = None) -> list[AuditEntry]: ...

    async def markers(self, start: datetime, end: datetime, target: Target | None = None) -> list[ChartMarker]: ...


class RecordStore(Protocol):
    """The repository of requests and releases, one object per record (:class:`bot.release.records.Records`):
    what the engine, its drivers and Home read and write through :attr:`Requests.store`. A record is a
    ``bot.release.record.Record``."""

    def name(self, record_id: str) -> str: ...

    async def get(self, record_id: str) -> Any: ...

    async def load(self) -> dict[str, Any]: ...

    async def shown(self) -> dict[str, Any]: ...

    async def follow(self) -> None: ...

    async def update(self, record_id: str, change: Callable[[Any], Any]) -> Any: ...

    async def mark_shown(self, record_id: str) -> None: ...

    async def create(self, record: Any) -> None: ...

    async def delete(self, record_id: str, *, only_if: Callable[[Any], bool] | None = None) -> bool: ...


class Requests(Protocol):
    """Change requests, their approval and admission (:class:`bot.release.approvals.Approvals`). A record is a
    ``bot.release.record.Record``, a change a ``bot.release.actions.Change``, an invocation a
    ``bot.chat.contract.Invocation``, a plan's argument a ``bot.cluster.kube.Cluster``."""

    store: RecordStore
    clock: Callable[[], datetime]

    async def propose(self, plan: Callable[[Any], Awaitable[Any]], invocation: Any, target: Target) -> None: ...

    async def submit(self, record: Any, target: Target, *, queue: bool, note: str = ...) -> None: ...

    async def audit(self, phase: str, record: Any, user: str, *, note: str = ..., facts: dict[str, Any] | None = ...,
                    target: Target | None = ...) -> None: ...

    async def handle_action(self, body: dict, action: dict, respond: Callable[..., Awaitable[Any]]) -> None: ...

    def target_of(self, change: Any) -> Target: ...

    async def ended(self, key: tuple[str, str]) -> None: ...

    async def audit_outcome(self, record: Any, outcome: Any) -> None: ...

    def progress_view(self, release: Any, status: Any, *, outcome: Any = None,
                      problem: str = "") -> tuple[str, list[dict]]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Releases(Protocol):
    """The engine that carries approved releases to their end (:class:`bot.release.engine.Engine`). A release is
    a ``bot.release.record.Record``; :meth:`decide` answers the ``bot.release.plan.Step`` decided."""

    def poke(self) -> None: ...

    async def decide(self, release_id: str, user: str, decision: str) -> Any: ...

    async def open_releases(self) -> list[Any]: ...

    async def follow(self) -> None: ...

    async def load(self, release_id: str) -> Any: ...

    async def stale(self, records: list[Any], now: datetime) -> set[str]: ...

    async def repair(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Schedules(Protocol):
    """Scheduled status posts (:class:`bot.observe.schedule.Scheduler`); :meth:`list` gives
    ``bot.observe.schedule.Listed``."""

    async def list(self, *, shown: bool = False) -> list[Any]: ...

    async def follow(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Background(Protocol):
    """The work a part runs after the event that asked for it (:class:`bot.chat.supervise.Supervisor`)."""

    async def drain(self, timeout: float = ...) -> None: ...


class HomeTabs(Protocol):
    """The App Home tabs (:class:`bot.release.home.Home`)."""

    supervisor: Background  # its debounced republishes, drained on shutdown

    def changed(self) -> None: ...

    async def opened(self, user: str) -> None: ...


class Holds(Protocol):
    """Freezes and manual locks (:class:`bot.release.holds.Holds`): a ``HoldState`` and an ``Overview`` of
    :mod:`bot.release.holds`."""

    async def check(self, service: str, environment: str, now: datetime | None = None) -> Any: ...

    async def overview(self, now: datetime | None = None) -> Any: ...


class FiringAlerts(Protocol):
    """The stored alert groups (:class:`bot.observe.alert_store.AlertStore`) as status and Home read them.
    A group is a ``bot.observe.alert_group.AlertGroup``."""

    async def firing(self) -> list[Any]: ...


class AlertDesk(Protocol):
    """Alertmanager's notifications and the alert cards (:class:`bot.observe.alerts.AlertCards`).

    ``/alertmanager`` calls :meth:`accept`, :meth:`receive` and :meth:`spawn` (a ``Notification``, then a
    ``Received``, of :mod:`bot.observe.alert_intake`); the card's buttons, :meth:`from_card` (its group) and the
    other three."""

    store: FiringAlerts

    def accept(self, payload: Any) -> Any: ...

    async def receive(self, notification: Any, arrived: float | None = None) -> Any: ...

    def spawn(self, received: Any) -> Any: ...

    async def from_card(self, gid: str, channel: str, ts: str) -> Any: ...

    async def note_release(self, alertname: str, note: str, service: str = "", environment: str = "") -> int: ...

    async def drain(self, timeout: float = 30.0) -> None: ...

    async def silence(self, gid: str, user: str, channel: str, ts: str) -> Any: ...

    async def acknowledge(self, gid: str, user: str, channel: str, ts: str) -> Any: ...


class Leader(Protocol):
    """Leader election over a Lease, shared by the scheduler and the engine (``bot.cluster.leader.LeaderElector``)."""

    async def release(self, now: datetime) -> bool: ...


class Metrics(Protocol):
    """A Prometheus client for one target's series (:class:`bot.observe.prom.Prometheus`): a
    ``bot.observe.series.Snapshot`` and ``WindowCounts`` by version."""

    async def snapshot(self, range_text: str = ..., *, now: datetime | None = None) -> Any: ...

    async def window(self, seconds: float, *, now: datetime | None = None) -> dict[str, Any]: ...


__all__ = ["AlertDesk", "AuditTrail", "Background", "ChartMarker", "FiringAlerts", "Holds", "HomeTabs", "Leader",
           "Metrics", "RecordStore", "Releases", "Requests", "Schedules"]
