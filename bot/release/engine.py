"""The release engine: the leader replica advances every unfinished release, step by step.

An approved request (state ``running`` in the approvals ConfigMap) is a release to carry out. Its
plan and progress live in a ConfigMap of its own (``hello-chatops-release-<id>``, key
``release.json``), so any replica can continue it. Exactly one replica drives: the holder of the
Lease (the same one scheduled posts use). Its loop reads the running requests every ``interval``
seconds (or at once when this replica approved one) and starts a driver for each it is not driving.

A driver marks a step running (stored) before doing it and done (stored) after, so a replica that
dies mid-step leaves a step that the next leader does again; steps are idempotent. Every write to a
release names its driver: a driver whose release was taken over stops at its next write. While the
cluster cannot be reached, the driver waits and tries again, and after ``PROBLEM_AFTER`` seconds says
so in the release's message; it never reports a success it did not see. When the last step is done
(or one failed) the outcome is stored, the request leaves the ``running`` state (which frees the
one-change-at-a-time lock), the audit trail gets its record (once: its Event's name is the release's
and the outcome's, so a driver that took over from one that died while writing it does not record it
again) and the message its final edit, through the message's queue (steps never wait on Slack; an edit
Slack did not take is sent again by the approvals sweeper).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.chat.supervise import Supervisor
from bot.cluster.leader import LeaderElector
from bot.cluster.store import ConfigMapStore
from bot.core import times
from bot.core.errors import ClusterError, CommandError
from bot.core.retry import Backoff, retry
from bot.core.times import iso, parse_time
from bot.release import driven as driven_steps
from bot.release import steps as step_runner
from bot.release.plan import (
    Outcome,
    Release,
    ReleaseState,
    Step,
    StepKind,
    StepState,
    release_for,
    take_decisions,
)
from bot.release.requests import RUNNING, Record
from bot.release.rollout import MessageEditor, RolloutStatus
from bot.release.stalls import Stalls

if TYPE_CHECKING:
    from bot.core.services import Services

log = logging.getLogger(__name__)

PREFIX = "hello-chatops-release-"
KEY = "release.json"
LABELS = {"app.kubernetes.io/component": "release"}
PROBLEM_AFTER = 10.0  # seconds a problem lasts before the release's message mentions it
STORE_WAIT = Backoff(first=0.2, most=3.0, attempts=None)  # the cluster is away: store the progress when it is back
STEP_WAIT = Backoff(first=0.5, most=3.0, attempts=None)  # ... and do the step then (HELLO_CLUSTER_PATIENCE at most)
STALL_LOOK = 1.0  # seconds between looks for a wait on the cluster that lasts (bot.release.stalls)
# The steps that take moments unless the cluster is slow (the others wait by nature and say why themselves)
BRIEF = frozenset({StepKind.SET_IMAGE, StepKind.RESTORE_REVISION, StepKind.SCALE, StepKind.SET_WEIGHT,
                   StepKind.CHECK_CANARY, StepKind.TRIGGER_ISSUANCE})
FINAL_EDIT_WAIT = 60.0  # seconds a finished release's driver waits for its last edit (the sweeper sends it later)


class Lost(Exception):
    """Another replica drives this release now."""


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

    def new_release(self, record: Record) -> Release:
        config = self.services.config_for(record.change.service, record.change.environment)
        return release_for(record, config, created=iso(self.clock()))

    async def drive(self, record: Record) -> Release:
        """Carry ``record``'s release to its end, continuing from what its ConfigMap says."""
        release = await self.load(record.id) or self.new_release(record)
        release.ts = release.ts or record.ts
        driver = Driver(self, record, release)
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
            out.append(await self.load(record.id) or self.new_release(record))
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
                await cluster.delete_configmap(configmap_name(rid))
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


class Driver:
    """One release carried out by this replica."""

    def __init__(self, engine: Engine, record: Record, release: Release) -> None:
        self.engine = engine
        self.record = record
        self.release = release
        self.config = engine.services.config_for(release.service, release.environment)
        self.status: RolloutStatus | None = None
        self.stalls = Stalls(after=PROBLEM_AFTER)
        self._stall_note = ""  # the problem this driver noted for a stall, dropped when the stall ends
        self._lock = asyncio.Lock()
        editor = None
        if release.ts:
            editor = MessageEditor(engine.services.messenger, release.channel, release.ts,
                                   interval=engine.edit_interval)
        self.editor = editor

    async def save(self, *, claim: bool = False) -> None:
        """Store the release; with ``claim`` this replica becomes its driver. Raises :class:`Lost`."""
        me = self.engine.identity
        release = self.release

        def mutate(data: dict[str, str]) -> None:
            if KEY in data:
                stored = Release.from_json(data[KEY])
                if stored.state == ReleaseState.SUPERSEDED:
                    raise Lost(release.id)
                if not claim and stored.driver != me:
                    raise Lost(release.id)
                take_decisions(stored, release)
            release.driver, release.heartbeat = me, iso(self.engine.clock())
            data[KEY] = release.to_json()

        async def unreachable(exc: BaseException | None) -> None:
            self.note_problem(f"cannot reach the cluster to store the release's progress ({exc})")
            await self.show()

        with self.stalls.watch("storing the release's progress"):
            async with self._lock:
                await retry(self.engine.store(release.id).update, mutate, backoff=STORE_WAIT, on_retry=unreachable)

    async def heartbeat(self) -> None:
        every = max(0.5, self.config.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            await self.save()

    async def watch_stalls(self) -> None:
        """Every second: a wait on the cluster of :data:`PROBLEM_AFTER` seconds is said in the message, and
        unsaid when it ends (whatever the cause: errors say so through their retries too)."""
        while True:
            await asyncio.sleep(STALL_LOOK)
            stall, release = self.stalls.look(), self.release
            if stall is not None and release.problem in ("", self._stall_note):
                if release.problem != stall.text:
                    release.problem, self._stall_note = stall.text, stall.text
                    release.problem_since = iso(self.engine.clock() - timedelta(seconds=stall.seconds))
                    await self.show()
            elif stall is None and self._stall_note and release.problem == self._stall_note:
                release.problem = release.problem_since = self._stall_note = ""
                await self.show()

    def note_problem(self, text: str) -> None:
        release = self.release
        if release.problem != text:
            release.problem = text
            release.problem_since = release.problem_since or iso(self.engine.clock())

    async def show(self) -> None:
        if self.editor is None:
            return
        text, blocks = self.engine.services.approvals.progress_view(self.release, self.status,
                                                                     problem=self._visible_problem())
        await self.editor.show(text, blocks)

    def _visible_problem(self) -> str:
        since = parse_time(self.release.problem_since)
        if not self.release.problem or since is None:
            return ""
        if (self.engine.clock() - since).total_seconds() < PROBLEM_AFTER:
            return ""
        return f"{self.release.problem}; trying again since {since.strftime('%H:%M:%S UTC')}"

    async def on_status(self, status: RolloutStatus) -> None:
        self.status = status
        await self.show()

    async def run(self) -> None:
        release, engine = self.release, self.engine
        await self.show()
        while release.state == ReleaseState.RUNNING:
            if release.outcome is None:
                step = release.current
                if step is None:
                    release.outcome = step_runner.succeeded(release, self.config)
                    await self.save()
                    continue
                await self._step(step)
                continue
            release.state = ReleaseState.SUCCEEDED if release.outcome.ok else ReleaseState.FAILED
            release.finished = iso(engine.clock())
            await self.save()
        if release.state == ReleaseState.SUPERSEDED:
            raise Lost(release.id)
        await self._report()

    async def _step(self, step: Any) -> None:
        release, engine = self.release, self.engine
        if step.state != StepState.RUNNING:
            step.state, step.started = StepState.RUNNING, step.started or iso(engine.clock())
        step.runs += 1
        await self.save()
        await self.show()

        async def attempt() -> step_runner.StepResult:
            cluster = await engine.services.cluster_for(self.config)
            driven = {StepKind.ANALYSE: driven_steps.analyse, StepKind.GATE: driven_steps.gate,
                      StepKind.BAKE: driven_steps.bake}
            if step.kind in driven:  # the steps that wait on people, metrics or alerts are the driver's
                return await driven[step.kind](self, step, cluster)
            # the rest by their handler (bot.release.steps.HANDLERS)
            return await step_runner.execute(step, cluster, self.config, on_status=self.on_status,
                                             clock=engine.clock, cause=release.change_cause())

        async def unreachable(exc: BaseException | None) -> None:
            """The cluster is away: say so, and give up (raise) once it has been away too long."""
            log.info("release %s: step %s waits for the cluster: %s", release.id, step.kind, exc)
            self.note_problem(f"cannot reach the cluster ({exc})")
            since = parse_time(release.problem_since) or engine.clock()
            if (engine.clock() - since).total_seconds() >= self.config.cluster_patience_seconds:
                assert exc is not None
                raise exc
            await self.show()

        try:
            with self.stalls.watch(step.title) if step.kind in BRIEF else contextlib.nullcontext():
                result = await retry(attempt, backoff=STEP_WAIT, on_retry=unreachable)
        except ClusterError as exc:  # refused (403, 404, 422), or away longer than the patience
            return await self._stop(step, str(exc))
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("release %s: step %s failed (reference %s)", release.id, step.kind, ref)
            step.state, step.finished = StepState.FAILED, iso(engine.clock())
            begun = "; ".join(s.title for s in release.steps if s.state != StepState.WAITING)
            release.outcome = Outcome(False, f"Stopped by an error on my side (reference {ref}).",
                                      details=[f"Steps begun: {begun}."],
                                      buttons=step_runner.FALLBACK_BUTTONS.get(release.action, ()))
            await self.save()
            return
        step.finished, step.note, step.details = iso(engine.clock()), result.note, result.details
        step.facts = dict(result.facts)
        release.problem = release.problem_since = ""
        if result.ok:
            step.state = StepState.DONE
        else:
            step.state = StepState.FAILED
            release.outcome = step_runner.failed(release, step, result, self.config)
        await self.save()

    async def _stop(self, step: Step, reason: str) -> None:
        """The cluster refused the step (403, 404, 422) or stayed away too long: the release stops here."""
        step.state, step.finished, step.note = StepState.FAILED, iso(self.engine.clock()), reason
        self.release.outcome = step_runner.stopped(self.release, reason, self.config)
        self.release.problem = self.release.problem_since = ""
        await self.save()

    async def _report(self) -> None:
        """The final message and audit record (once, as ``reported`` says), then the request is finished."""
        release, engine = self.release, self.engine
        approvals = engine.services.approvals
        outcome = release.outcome or Outcome(False, "Stopped")
        if not release.reported:
            if release.params.analysed:
                await driven_steps.analysis_chart(self)
            await approvals.audit_outcome(self.record, outcome)
            release.reported = True
            await self.save()
        if self.editor is not None:  # also when an earlier driver reported it: its edit may be lost with it
            await self.editor.final(*approvals.progress_view(release, self.status, outcome=outcome))
        await approvals.finish(release.id, "succeeded" if outcome.ok else "failed", outcome.headline)
        if self.editor is not None:  # the request is finished; the driver ends once its message says so
            await self.editor.sent(FINAL_EDIT_WAIT)
