"""The release engine: the leader replica advances every running release, step by step.

An approved release (state ``running``) is carried out from its record (:mod:`bot.release.records`): its
plan, stored when it was asked for, and its progress, stored as it goes, so any replica can continue it.
Exactly one replica drives: the holder of the Lease (the same one scheduled posts use). Its loop reads the
records every ``interval`` seconds (or at once when this replica approved one) and starts a driver for each
running release it is not driving.

Each release is carried out by a :class:`bot.release.driver.Driver`: step by step, stored as it goes, shown
in the release's one message, its outcome audited once and its record then ended (which frees the
one-change-at-a-time lock). Every ``repair_interval`` seconds the leader also sends again the final edit of
every finished release whose message does not show it yet (``shown``): Slack refused it, or the replica that
sent it died first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.chat.messenger import SlackError, worth_again
from bot.chat.supervise import Supervisor
from bot.cluster.leader import LeaderElector
from bot.core import times
from bot.core.errors import ClusterError, CommandError, DependencyUnavailable
from bot.core.tasks import cancel
from bot.core.times import iso, parse_time
from bot.release import bake_rollback, messages
from bot.release.driver import PROBLEM_AFTER, Driver, Lost
from bot.release.lifecycle import FINISHED, RUNNING, State
from bot.release.plan import Step
from bot.release.record import Record

if TYPE_CHECKING:
    from bot.core.config import Config
    from bot.core.ports import AlertDesk, RecordStore, Requests
    from bot.core.services import Shared

log = logging.getLogger(__name__)

REPAIR_INTERVAL = 30.0  # seconds between the leader's looks for finished releases whose message does not show it


def final_view(approvals: Requests, record: Record) -> tuple[str, list[dict]]:
    """The message of a finished record: how it ended."""
    if record.outcome is not None:
        return approvals.progress_view(record, None, outcome=record.outcome)
    if record.state == State.SUPERSEDED:
        return messages.superseded_view(record)
    return messages.approval_view(record)


class Engine:
    """Drives the releases while this replica leads. ``clock`` returns the current aware datetime.

    It keeps the :class:`Shared` bundle because it and its drivers use most of it: the configuration, the
    messenger (each release's message and thread), the targets (a stored release's service and environment),
    the catalogue (the bake window's critical alerts) and the bot's own cluster (a load test's owner record).
    """

    def __init__(self, services: Shared, elector: LeaderElector, *, approvals: Requests, alerts: AlertDesk,
                 interval: float = 1.0, clock: Callable[[], datetime] | None = None,
                 edit_interval: float = 0.5) -> None:
        self.services = services
        self.approvals = approvals  # the requests' store and views
        self.alerts = alerts  # the bake window reads the firing alerts and notes the release on their cards
        self.elector = elector
        self.identity = elector.identity
        self.interval = interval
        self.edit_interval = edit_interval
        self.clock = clock or times.now
        self._drivers: dict[str, asyncio.Task] = {}
        self._shown: dict[str, Driver] = {}  # the drivers of those tasks, to say why they stop
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.repair_interval = REPAIR_INTERVAL
        self._repair_at = 0.0  # on the loop's clock: the first look when this replica leads
        self.background = Supervisor()  # notes on alert cards, finished or cancelled on stop

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def records(self) -> RecordStore:
        """The repository of releases (:class:`bot.release.records.Records`)."""
        return self.approvals.store

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="releases")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
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
                    await self._repair_when_due()
                else:
                    self._repair_at = 0.0
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
        """Start a driver for every running release not driven here; stop those no longer running."""
        records = await self.records.load()
        running = {r.id: r for r in records.values() if r.state == RUNNING}
        for rid, task in list(self._drivers.items()):
            if task.done():
                del self._drivers[rid]
            elif rid not in running:
                driver = self._shown.get(rid)
                if driver is not None and driver.release.reported:
                    continue  # it ended its release itself and is winding up (its last edit, the queue behind it)
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

    async def drive(self, record: Record) -> Record:
        """Carry ``record``'s release to its end, continuing from what its record says."""
        target = self.services.target(record.change.service, record.change.environment)  # resolved once per drive
        driver = Driver(self, record, target)
        self._shown[record.id] = driver
        helpers = [asyncio.create_task(driver.watch_stalls())]  # a claim that keeps waiting is said too
        try:
            await driver.save(claim=True)
            helpers.append(asyncio.create_task(driver.heartbeat()))
            await driver.run()
        except Lost:
            if driver.editor is not None:  # another replica drives it now: an edit of ours still on its way
                driver.editor.abandon()  # would show an older state over theirs
            raise
        finally:
            self._shown.pop(record.id, None)
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await helper
        return record

    async def load(self, release_id: str) -> Record | None:
        return await self.records.get(release_id)

    async def open_releases(self) -> list[Record]:
        """The releases running now, oldest first, for display (status, Home, ``/hello release``): from the watch
        cache of the records once :meth:`follow` has started it and it has listed (it may lag a write)."""
        return sorted((r for r in (await self.records.shown()).values() if r.state == RUNNING),
                      key=lambda r: r.created)

    async def follow(self) -> None:
        """Keep a watch cache of the records for :meth:`open_releases` (serving's warm-up starts it)."""
        await self.records.follow()

    async def stale(self, records: list[Record], now: datetime) -> set[str]:
        """The running releases nobody has advanced for a while: they hold no lock."""
        limit = timedelta(seconds=3 * self.config.lease_seconds + 30)
        out = set()
        for record in records:
            beat = parse_time(record.heartbeat) or parse_time(record.decided) or now
            if record.state == RUNNING and now - beat > limit:
                out.add(record.id)
        return out

    async def decide(self, release_id: str, user: str, decision: str) -> Step:
        """Record a person's Continue / Abort on the step of ``release_id`` that waits for one."""
        def mutate(record: Record) -> Step:
            waiting = next((s for s in record.steps if s.waiting and not s.decision), None)
            if record.state != RUNNING or waiting is None:
                raise CommandError("This release is not waiting for a decision any more: nothing was changed.")
            waiting.decision, waiting.decided_by = decision, user
            return waiting

        found = await self.records.update(release_id, mutate)
        if found is None:
            raise CommandError("This release is not waiting for a decision any more: nothing was changed.")
        self.poke()
        return found

    # ------------------------------------------------------------------ repairing the messages
    async def _repair_when_due(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._repair_at:
            return
        self._repair_at = loop.time() + self.repair_interval
        await self.repair()

    async def repair(self) -> int:
        """Send again the final edit of every finished release whose message does not show how it ended (Slack
        refused it, or the replica that sent it died before Slack took it); make the bake window's rollback that
        superseded a release and was never admitted (:func:`bot.release.bake_rollback.recover`). Returns how
        many edits Slack took now."""
        taken = 0
        approvals, messenger = self.approvals, self.services.messenger
        records = await self.records.load()
        await bake_rollback.recover(self, records)
        for record in records.values():
            if record.state not in FINISHED or record.shown or not record.ts or record.id in self._shown:
                continue
            try:
                await messenger.update(record.channel, record.ts, *final_view(approvals, record))
            except SlackError as exc:
                if worth_again(exc):
                    log.info("the message of %s still cannot be edited: %s", record.id, exc.error)
                    continue
                log.warning("the message of %s cannot be edited (%s): given up", record.id, exc.error)
            else:
                taken += 1
            with contextlib.suppress(DependencyUnavailable):
                await self.records.mark_shown(record.id)
        return taken
