"""The release engine: the leader replica advances every unfinished release, step by step.

An approved request (state ``running`` in the approvals ConfigMap) is a release to carry out. Its
plan and progress live in a ConfigMap of its own (``hello-chatops-release-<id>``, key
``release.json``), so any replica can continue it. Exactly one replica drives: the holder of the
Lease (the same one scheduled posts use). Its loop reads the running requests every ``interval``
seconds (or at once when this replica approved one) and starts a driver for each it is not driving.

Each release is carried out by a :class:`bot.release.driver.Driver`: step by step, stored as it goes, shown
in the release's one message, its outcome audited once and the request then finished (which frees the
one-change-at-a-time lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.chat.supervise import Supervisor
from bot.cluster.leader import LeaderElector
from bot.cluster.store import ConfigMapStore
from bot.core import times
from bot.core.errors import ClusterError, CommandError
from bot.core.target import Target
from bot.core.times import iso, parse_time
from bot.release.driver import KEY, PROBLEM_AFTER, Driver, Lost
from bot.release.plan import Release, ReleaseState, Step, release_for
from bot.release.requests import RUNNING, Record

if TYPE_CHECKING:
    from bot.core.services import Services

log = logging.getLogger(__name__)

PREFIX = "hello-chatops-release-"
LABELS = {"app.kubernetes.io/component": "release"}


def configmap_name(release_id: str) -> str:
    return PREFIX + release_id


class Engine:
    """Drives the releases while this replica leads. ``clock`` returns the current aware datetime."""

    def __init__(self, services: Services, elector: LeaderElector, *, interval: float = 1.0,
                 clock: Callable[[], datetime] | None = None, edit_interval: float = 0.5) -> None:
        self.services = services
        self.elector = elector
        self.identity = elector.identity
        self.interval = interval
        self.edit_interval = edit_interval
        self.clock = clock or times.now
        self._drivers: dict[str, asyncio.Task] = {}
        self._shown: dict[str, Driver] = {}  # the drivers of those tasks, to say why they stop
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.background = Supervisor()  # notes on alert cards, finished or cancelled on stop

    @property
    def config(self) -> Any:
        return self.services.config

    def store(self, release_id: str) -> ConfigMapStore:
        return ConfigMapStore(self.services.cluster, configmap_name(release_id), labels=LABELS)

    async def load(self, release_id: str) -> Release | None:
        data = await self.store(release_id).read()
        if not data or KEY not in data:
            return None
        try:
            return Release.from_json(data[KEY])
        except (ValueError, KeyError, TypeError):
            log.error("release %s is unreadable", release_id)
            return None

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="releases")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_all()
        await self.background.cancel()

    def poke(self) -> None:
        """Look at the releases now (this replica just approved one)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                if await self.elector.step(self.clock()):
                    await self.reconcile()
                else:
                    await self._drop_all(self.elector.problem)
            except asyncio.CancelledError:
                raise
            except ClusterError as exc:
                log.info("releases: cannot read the running requests now: %s", exc)
            except Exception:
                log.exception("releases: reconcile failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    async def _drop_all(self, why: str = "") -> None:
        """Stop driving (this replica no longer leads). With ``why``, each release's message says it waits."""
        tasks = list(self._drivers.values())
        self._drivers.clear()
        shown = list(self._shown.values())
        self._shown.clear()
        if why:
            for driver in shown:
                driver.release.problem = why
                driver.release.problem_since = iso(self.clock() - timedelta(seconds=PROBLEM_AFTER))
                with contextlib.suppress(Exception):
                    await driver.show()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def reconcile(self) -> None:
        """Start a driver for every running request not driven here; stop those no longer running."""
        records = await self.services.approvals.store.load()
        running = {r.id: r for r in records.values() if r.state == RUNNING}
        for rid, task in list(self._drivers.items()):
            if task.done():
                del self._drivers[rid]
            elif rid not in running:
                driver = self._shown.get(rid)
                if driver is not None and driver.release.reported:
                    continue  # it ended its request itself and is winding up (opening the queue behind it)
                log.info("release %s is no longer running (superseded?): its driver stops", rid)
                task.cancel()
                del self._drivers[rid]
        for rid, record in running.items():
            if rid not in self._drivers:
                self._drivers[rid] = asyncio.create_task(self._guarded(record), name=f"release-{rid}")

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until the drivers started here have finished (tests and shutdown)."""
        tasks = [t for t in self._drivers.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    # ------------------------------------------------------------------ one release
    async def _guarded(self, record: Record) -> None:
        try:
            await self.drive(record)
        except (Lost, asyncio.CancelledError):
            log.info("release %s: driven elsewhere now", record.id)
        except Exception:
            log.exception("release %s: driver failed; the next pass starts it again", record.id)

    def new_release(self, record: Record, target: Target) -> Release:
        return release_for(record, target.config, created=iso(self.clock()))

    async def drive(self, record: Record) -> Release:
        """Carry ``record``'s release to its end, continuing from what its ConfigMap says."""
        target = self.services.target(record.change.service, record.change.environment)  # resolved once per drive
        release = await self.load(record.id) or self.new_release(record, target)
        release.ts = release.ts or record.ts
        driver = Driver(self, record, release, target)
        self._shown[record.id] = driver
        await driver.save(claim=True)
        helpers = [asyncio.create_task(driver.heartbeat()), asyncio.create_task(driver.watch_stalls())]
        try:
            await driver.run()
        finally:
            self._shown.pop(record.id, None)
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await helper
        return release

    async def open_releases(self) -> list[Release]:
        """The releases running now (those not begun yet as planned), oldest first."""
        records = sorted((r for r in (await self.services.approvals.store.load()).values() if r.state == RUNNING),
                         key=lambda r: r.created)
        out = []
        for record in records:
            target = self.services.target(record.change.service, record.change.environment)
            out.append(await self.load(record.id) or self.new_release(record, target))
        return out

    async def stale(self, records: list[Record], now: datetime) -> set[str]:
        """The running requests whose release nobody has advanced for a while: they hold no lock."""
        limit = timedelta(seconds=3 * self.config.lease_seconds + 30)
        out = set()
        for record in records:
            try:
                release = await self.load(record.id)
            except ClusterError:
                continue
            if release is None:
                began = parse_time(record.decided) or now
                if now - began > limit:
                    out.add(record.id)
                continue
            beat = parse_time(release.heartbeat) or parse_time(release.created) or now
            if (release.state != ReleaseState.RUNNING and release.reported) or now - beat > limit:
                out.add(record.id)
        return out

    async def decide(self, release_id: str, user: str, decision: str) -> Step:
        """Record a person's Continue / Abort on the step of ``release_id`` that waits for one."""
        found: list[Step] = []

        def mutate(data: dict[str, str]) -> None:
            release = Release.from_json(data[KEY]) if KEY in data else None
            waiting = next((s for s in release.steps if s.waiting and not s.decision), None) if release else None
            if release is None or release.state != ReleaseState.RUNNING or waiting is None:
                raise CommandError("This release is not waiting for a decision any more: nothing was changed.")
            waiting.decision, waiting.decided_by = decision, user
            found.append(waiting)
            data[KEY] = release.to_json()

        await self.store(release_id).update(mutate, create=False)  # a missing release raises in mutate
        self.poke()
        return found[0]

    async def forget(self, release_ids: list[str]) -> None:
        """Delete the release records of finished requests that are no longer kept (best effort)."""
        try:
            cluster = await self.services.cluster()
            for rid in release_ids:
                await cluster.configmaps.delete(configmap_name(rid))
        except ClusterError as exc:
            log.info("cannot delete old release records: %s", exc)

    async def supersede(self, release_id: str, note: str) -> None:
        """Mark a release superseded (its driver stops at its next write)."""
        def mutate(data: dict[str, str]) -> None:
            if KEY in data:
                release = Release.from_json(data[KEY])
                if release.state == ReleaseState.RUNNING:
                    release.state, release.problem = ReleaseState.SUPERSEDED, note
                    release.finished = iso(self.clock())
                    data[KEY] = release.to_json()

        with contextlib.suppress(ClusterError):
            await self.store(release_id).update(mutate, create=False)
