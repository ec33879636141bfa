"""Holds on changes: manual locks, and freezes (ad hoc from chat, or recurring windows in the catalogue).

- A **lock** (``/hello lock <service> [<environment>] "<reason>"``) stops every change to the service
  (in that environment, or in all of them) until someone unlocks it.
- A **freeze** lets a change through only by break-glass (a reason and two approvers). It is either
  ad hoc (``/hello freeze <service|all> [<environment>] <duration> "<reason>"``, ending by itself) or a
  catalogue window (a service's ``freezes:``, see :class:`bot.core.catalogue.FreezeWindow`).

Locks and ad-hoc freezes live in one ConfigMap in the bot's namespace (``HELLO_HOLDS_CONFIGMAP``,
default ``hello-chatops-holds``), key ``holds.json``, written by compare-and-swap
(:class:`~bot.cluster.store.ConfigMapStore`). An ad-hoc freeze that has ended is ignored, and dropped
from the ConfigMap by the next write. Windows are never stored: they are computed from the catalogue.

The approvals ask :meth:`Holds.check` before a change; the decision itself is the pure
:func:`decide`, which tests call without a cluster.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.chat.views import when
from bot.cluster.store import ConfigMapStore
from bot.core import times
from bot.core.catalogue import ALL, Catalogue, FreezeWindow, Service
from bot.core.errors import CommandError, UsageError
from bot.core.text import foreign
from bot.core.times import iso, parse_time

if TYPE_CHECKING:
    from bot.cluster.kube import Cluster
    from bot.core.config import Config

log = logging.getLogger(__name__)

KEY = "holds.json"


class FreezeSource(enum.StrEnum):
    WINDOW = "window"  # a catalogue freeze window
    AD_HOC = "ad hoc"  # `/hello freeze` in chat


@dataclass(frozen=True, kw_only=True)
class Lock:
    """A manual lock: no change to ``service`` (in ``environment``; ``None``: in every one) until unlocked.

    ``reason`` is the user's text as typed: escape it (:func:`bot.core.text.foreign`) before posting.
    """

    service: str
    environment: str | None
    reason: str
    user: str  # Slack user id of who locked it
    since: datetime

    def covers(self, service: str, environment: str) -> bool:
        return self.service == service and self.environment in (None, environment)


@dataclass(frozen=True, kw_only=True)
class Freeze:
    """A freeze that holds until ``until``: ad hoc (from chat) or a catalogue window.

    ``service`` is a service's name or ``"all"`` (ad hoc only); ``environment`` ``None``: every
    environment (for a window: the window's ``environments`` were empty). ``user`` is who froze it
    (``""`` for a window); ``since`` when it was set (ad hoc) or the window opened. ``reason`` is
    text from a person or the catalogue: escape it before posting.
    """

    service: str
    environment: str | None
    reason: str
    until: datetime
    source: FreezeSource
    user: str = ""
    since: datetime | None = None

    def covers(self, service: str, environment: str) -> bool:
        return self.service in (ALL, service) and self.environment in (None, environment)


@dataclass(frozen=True)
class HoldState:
    """What holds a change to ``service`` in ``environment`` at one moment (:meth:`Holds.check`).

    ``lock``: the lock that refuses the change, or ``None``. ``freeze``: the freeze in force (of
    several, the one that ends last, so ``freeze.until`` is when changes are free again unless a window
    or freeze starts later), or ``None``. With both ``None`` the change is free.
    """

    service: str
    environment: str
    lock: Lock | None = None
    freeze: Freeze | None = None

    @property
    def locked(self) -> bool:
        return self.lock is not None

    @property
    def frozen(self) -> bool:
        return self.freeze is not None

    @property
    def free(self) -> bool:
        return self.lock is None and self.freeze is None


def window_freezes(service: Service, now: datetime, timezone: str = "UTC") -> list[Freeze]:
    """The service's catalogue windows open at ``now``, as freezes (``timezone``: for windows without one)."""
    out = []
    for window in service.freezes:
        opened = window.active(now, timezone)
        if opened is None:
            continue
        envs = window.environments or (None,)
        for env in envs:
            out.append(Freeze(service=service.name, environment=env, reason=window.reason, until=opened[1],
                              source=FreezeSource.WINDOW, since=opened[0]))
    return out


def decide(service: Service, environment: str, now: datetime, locks: Iterable[Lock], freezes: Iterable[Freeze],
           *, timezone: str = "UTC") -> HoldState:
    """What holds a change to ``service`` in ``environment`` at ``now``; pure.

    ``locks`` and ``freezes`` are the stored ones (ad-hoc freezes that ended before ``now`` are
    ignored); the service's catalogue windows are added here, read in their time zone (``timezone``
    for a window that names none). Of several locks the one for this environment wins over a
    service-wide one, then the oldest; of several freezes the one that ends last.
    """
    name = service.name
    lock = min((lk for lk in locks if lk.covers(name, environment)),
               key=lambda lk: (lk.environment is None, lk.since), default=None)
    active = [f for f in freezes if f.covers(name, environment) and f.until > now]
    active += [f for f in window_freezes(service, now, timezone) if f.covers(name, environment)]
    freeze = max(active, key=lambda f: (f.until, f.source == FreezeSource.AD_HOC), default=None)
    return HoldState(service=name, environment=environment, lock=lock, freeze=freeze)


# ------------------------------------------------------------------------------------- the store


def _key(service: str, environment: str | None) -> str:
    return f"{service}/{environment or '*'}"


def scope(service: str, environment: str | None) -> str:
    """``helloworld in production``, ``every service in every environment``: for replies (names are checked)."""
    who = "every service" if service == ALL else service
    return f"{who} in {environment}" if environment else f"{who} in every environment"


@dataclass(frozen=True)
class WindowState:
    """A catalogue window as the listing shows it: open until ``until``, else opening next at ``next``."""

    service: str
    window: FreezeWindow
    until: datetime | None
    next: datetime


@dataclass(frozen=True)
class Overview:
    """Every lock, every ad-hoc freeze in force, and every catalogue window (``/hello freeze``)."""

    locks: tuple[Lock, ...]
    freezes: tuple[Freeze, ...]
    windows: tuple[WindowState, ...]


class Holds:
    """Locks and freezes, stored in the ConfigMap ``HELLO_HOLDS_CONFIGMAP`` (or ``name``).

    Service and environment names are checked against ``catalogue`` (the catalogue file's, or the
    single-service variables'); an unknown one is a :class:`UsageError` listing what exists. ``cluster``
    reaches the bot's own cluster, where the ConfigMap is. ``clock`` returns the current aware datetime
    (tests move it).
    """

    def __init__(self, config: Config, catalogue: Catalogue, cluster: Callable[[], Awaitable[Cluster]], *,
                 clock: Callable[[], datetime] | None = None, name: str | None = None) -> None:
        self.config, self.catalogue = config, catalogue
        self.name = name or config.holds_configmap
        self.clock = clock or times.now
        self.store = ConfigMapStore(cluster, self.name, attempts=8)

    @property
    def timezone(self) -> str:
        return self.config.timezone

    def checked(self, service: str, environment: str | None, *, every: bool) -> None:
        """Raise :class:`UsageError` unless the names exist (``all`` is a service only when ``every``)."""
        catalogue = self.catalogue
        if service == ALL:
            if not every:
                raise UsageError(f"name one service: {', '.join(catalogue.names)}")
            names = sorted({env.name for _, env in catalogue.pairs()})
            if environment and environment not in names:
                raise UsageError(f"no service has an environment {foreign(environment, 40)}; "
                                 f"environments: {', '.join(names)}")
            return
        found = catalogue.service(service)
        if environment:
            found.environment(environment)

    # -- reading
    def _decode(self, data: dict[str, str] | None) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            raw = json.loads((data or {}).get(KEY) or "{}")
        except ValueError:
            log.error("configmap %s holds invalid JSON; treating it as empty", self.name)
            raw = {}
        return {"locks": dict(raw.get("locks") or {}), "freezes": dict(raw.get("freezes") or {})}

    @staticmethod
    def _lock(raw: dict[str, Any]) -> Lock:
        return Lock(service=raw["service"], environment=raw.get("environment"), reason=raw.get("reason", ""),
                    user=raw.get("user", ""), since=parse_time(raw.get("since")) or datetime.fromtimestamp(0, UTC))

    @staticmethod
    def _freeze(raw: dict[str, Any]) -> Freeze:
        return Freeze(service=raw["service"], environment=raw.get("environment"), reason=raw.get("reason", ""),
                      until=parse_time(raw.get("until")) or datetime.fromtimestamp(0, UTC),
                      source=FreezeSource.AD_HOC, user=raw.get("user", ""), since=parse_time(raw.get("since")))

    async def stored(self, now: datetime | None = None) -> tuple[list[Lock], list[Freeze]]:
        """The locks and the ad-hoc freezes still in force at ``now`` (default: the clock's)."""
        now = now or self.clock()
        state = self._decode(await self.store.read())
        locks = sorted((self._lock(r) for r in state["locks"].values()), key=lambda lk: lk.since)
        freezes = [f for f in (self._freeze(r) for r in state["freezes"].values()) if f.until > now]
        return locks, sorted(freezes, key=lambda f: f.until)

    async def check(self, service: str, environment: str, now: datetime | None = None) -> HoldState:
        """What holds a change to ``service`` in ``environment`` at ``now``: see :class:`HoldState`.

        A lock means the change is refused; a freeze means it needs break-glass. Unknown names raise
        :class:`UsageError`; an unreachable cluster raises :class:`~bot.core.errors.ClusterError`.
        """
        now = now or self.clock()
        found = self.catalogue.service(service)
        found.environment(environment)
        locks, freezes = await self.stored(now)
        return decide(found, environment, now, locks, freezes, timezone=self.timezone)

    async def overview(self, now: datetime | None = None) -> Overview:
        now = now or self.clock()
        locks, freezes = await self.stored(now)
        windows = []
        for service in self.catalogue.services:
            for window in service.freezes:
                opened = window.active(now, self.timezone)
                windows.append(WindowState(service=service.name, window=window,
                                           until=opened[1] if opened else None,
                                           next=window.next_start(now, self.timezone)))
        return Overview(locks=tuple(locks), freezes=tuple(freezes), windows=tuple(windows))

    # -- writing
    async def _update(self, change: Callable[[dict[str, dict[str, dict[str, Any]]], datetime], Any]) -> Any:
        now = self.clock()

        def mutate(data: dict[str, str]) -> Any:
            state = self._decode(data)
            result = change(state, now)
            ended = [k for k, raw in state["freezes"].items() if self._freeze(raw).until <= now]
            for key in ended:
                del state["freezes"][key]
            data[KEY] = json.dumps(state, sort_keys=True)
            return result

        return await self.store.update(mutate)

    async def freeze(self, service: str, environment: str | None, until: datetime, reason: str,
                     user: str) -> Freeze:
        """Freeze ``service`` (or ``"all"``) in ``environment`` (``None``: all) until ``until``.

        Replaces an ad-hoc freeze of exactly the same scope (so it extends or shortens it).
        """
        self.checked(service, environment, every=True)
        if not reason.strip():
            raise UsageError("a freeze needs a reason")

        def change(state: dict[str, dict[str, dict[str, Any]]], now: datetime) -> Freeze:
            if until <= now:
                raise CommandError("That freeze would already be over.")
            state["freezes"][_key(service, environment)] = {
                "service": service, "environment": environment, "reason": reason, "user": user,
                "since": iso(now), "until": iso(until)}
            return Freeze(service=service, environment=environment, reason=reason, until=until,
                          source=FreezeSource.AD_HOC, user=user, since=now)

        return await self._update(change)

    async def unfreeze(self, service: str, environment: str | None) -> Freeze:
        """End the ad-hoc freeze of exactly this scope; returns it. Windows cannot be ended from chat."""
        self.checked(service, environment, every=True)

        def change(state: dict[str, dict[str, dict[str, Any]]], now: datetime) -> Freeze:
            raw = state["freezes"].pop(_key(service, environment), None)
            if raw is None or self._freeze(raw).until <= now:
                others = [scope(f.service, f.environment) for f in map(self._freeze, state["freezes"].values())
                          if f.until > now]
                listed = f" Frozen from chat: {'; '.join(others)}." if others else ""
                raise CommandError(f"{scope(service, environment)} is not frozen from chat.{listed}")
            return self._freeze(raw)

        return await self._update(change)

    async def lock(self, service: str, environment: str | None, reason: str, user: str) -> Lock:
        """Lock ``service`` in ``environment`` (``None``: all); refused if that exact scope is locked."""
        self.checked(service, environment, every=False)
        if not reason.strip():
            raise UsageError("a lock needs a reason")

        def change(state: dict[str, dict[str, dict[str, Any]]], now: datetime) -> Lock:
            key = _key(service, environment)
            if key in state["locks"]:
                held = self._lock(state["locks"][key])
                raise CommandError(f"{scope(service, environment)} is already locked by <@{held.user}> "
                                   f"since {when(held.since)}: “{foreign(held.reason, 300)}”")
            state["locks"][key] = {"service": service, "environment": environment, "reason": reason,
                                   "user": user, "since": iso(now)}
            return Lock(service=service, environment=environment, reason=reason, user=user, since=now)

        return await self._update(change)

    async def unlock(self, service: str, environment: str | None) -> Lock:
        """Remove the lock of exactly this scope; returns it."""
        self.checked(service, environment, every=False)

        def change(state: dict[str, dict[str, dict[str, Any]]], now: datetime) -> Lock:
            raw = state["locks"].pop(_key(service, environment), None)
            if raw is None:
                others = [scope(lk.service, lk.environment) for lk in map(self._lock, state["locks"].values())
                          if lk.service == service]
                listed = f" Locked: {'; '.join(others)}." if others else ""
                raise CommandError(f"{scope(service, environment)} is not locked.{listed}")
            return self._lock(raw)

        return await self._update(change)
