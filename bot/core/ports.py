"""The narrow interfaces by which the parts of the bot reach each other, each given to a part in its constructor.

Each is declared here, in the lowest layer, as a :class:`typing.Protocol` holding only what other parts call;
the implementations live in the layer that owns them (named in each docstring) and are built by
:func:`bot.wiring.build_services`. Types that belong to upper layers (a request's record, an audit entry)
appear as ``Any`` here: their owner documents them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.core.target import Target


class AuditTrail(Protocol):
    """Who did what, kept as Kubernetes Events and posted to the audit channel (:class:`bot.release.audit.Audit`)."""

    async def record(self, phase: str, record: Any, *, user: str, note: str = "",
                     facts: dict[str, Any] | None = None, target: Target | None = None) -> dict[str, Any]: ...

    async def record_alert(self, phase: str, *, user: str, summary: str, group: str, channel: str,
                           note: str = "", facts: dict[str, Any] | None = None) -> dict[str, Any]: ...

    async def record_hold(self, verb: str, phase: str, *, user: str, summary: str, channel: str,
                          change_reason: str = "", facts: dict[str, Any] | None = None) -> dict[str, Any]: ...

    async def entries(self, target: Target | None = None) -> list[Any]: ...

    async def everywhere(self) -> tuple[list[Any] | None, list[str]]: ...

    async def recent(self, n: int = 20, target: Target | None = None) -> list[Any]: ...

    async def markers(self, start: datetime, end: datetime, target: Target | None = None) -> list[Any]: ...


class Requests(Protocol):
    """Change requests, their approval and admission (:class:`bot.release.approvals.Approvals`)."""

    store: Any  # bot.release.records.Records
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
    """The engine that carries approved releases to their end (:class:`bot.release.engine.Engine`)."""

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
    """Scheduled status posts (:class:`bot.observe.schedule.Scheduler`)."""

    async def list(self, *, shown: bool = False) -> list[Any]: ...

    async def follow(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class HomeTabs(Protocol):
    """The App Home tabs (:class:`bot.release.home.Home`)."""

    supervisor: Any  # bot.chat.supervise.Supervisor

    def changed(self) -> None: ...

    async def opened(self, user: str) -> None: ...


class Holds(Protocol):
    """Freezes and manual locks (:class:`bot.release.holds.Holds`)."""

    async def check(self, service: str, environment: str, now: datetime | None = None) -> Any: ...

    async def overview(self, now: datetime | None = None) -> Any: ...


class AlertDesk(Protocol):
    """Alertmanager's notifications and the alert cards (:class:`bot.observe.alerts.AlertCards`)."""

    store: Any  # the alert groups, bot.observe.alerts

    async def note_release(self, alertname: str, note: str, service: str = "", environment: str = "") -> int: ...

    async def drain(self, timeout: float = 30.0) -> None: ...

    async def silence(self, gid: str, user: str, channel: str, ts: str) -> Any: ...

    async def acknowledge(self, gid: str, user: str, channel: str, ts: str) -> Any: ...


class Leader(Protocol):
    """Leader election over a Lease, shared by the scheduler and the engine (``bot.cluster.leader.LeaderElector``)."""

    async def release(self, now: datetime) -> bool: ...


class Metrics(Protocol):
    """A Prometheus client for one target's series (:class:`bot.observe.prom.Prometheus`)."""

    async def snapshot(self, range_text: str = ..., *, now: datetime | None = None) -> Any: ...

    async def window(self, seconds: float, *, now: datetime | None = None) -> dict[str, Any]: ...


__all__ = ["AlertDesk", "AuditTrail", "Holds", "HomeTabs", "Leader", "Metrics", "Releases", "Requests", "Schedules"]
