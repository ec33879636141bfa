"""The driver of one release: it carries the release's steps out on this replica, stores its progress and
shows it in the release's one message, then reports the outcome (:class:`Driver`, started by the leader's
:class:`bot.release.engine.Engine`).

A driver marks a step running (stored) before doing it and done (stored) after, so a replica that dies
mid-step leaves a step that the next leader does again; steps are idempotent. Every write names the
driver: a driver whose release was taken over stops at its next write (:class:`Lost`). While the cluster
cannot be reached, or keeps the driver waiting (slow answers, refused writes), it waits and tries again
and after :data:`PROBLEM_AFTER` seconds says so in the message; it never reports a success it did not
see. Its message's edits go through a queue (:class:`bot.release.rollout.MessageEditor`): no step waits
on Slack. When the last step is done (or one failed) the outcome is stored, the audit trail gets its record
(once: its Event's name is the release's and the outcome's, so a driver that took over from one that died
while writing it does not record it again), the record leaves the ``running`` state (marked ``reported`` in
the same write) and the message gets its final edit; once Slack takes it the record is marked ``shown``
(one Slack did not take is sent again by the leader, :meth:`bot.release.engine.Engine.repair`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.core.errors import ClusterError, DependencyUnavailable
from bot.core.retry import Backoff, retry
from bot.core.target import Target
from bot.core.times import iso, parse_time
from bot.release import analysis_load, load_chart, load_step
from bot.release import driven as driven_steps
from bot.release import steps as step_runner
from bot.release.lifecycle import RUNNING, Event
from bot.release.plan import Outcome, Step, StepKind, StepState
from bot.release.record import Record
from bot.release.rollout import MessageEditor, RolloutStatus
from bot.release.stalls import Stalls

if TYPE_CHECKING:
    from bot.release.engine import Engine

log = logging.getLogger("bot.release.engine")

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


class Driver:
    """One release carried out by this replica."""

    def __init__(self, engine: Engine, release: Record, target: Target) -> None:
        self.engine = engine
        self.release = release
        self.target = target  # resolved once, where the engine took the release up
        self.config = target.config
        self.status: RolloutStatus | None = None
        self.stalls = Stalls(after=PROBLEM_AFTER)
        self._stall_note = ""  # the problem this driver noted for a stall, dropped when the stall ends
        self._lock = asyncio.Lock()
        self.measured: dict[str, Any] = {}  # a load test's figures per track (bot.release.load.Figures, with each
        # response's (offset, latency): the chart in the thread, bot.release.load_chart)
        editor = None
        if release.ts:
            editor = MessageEditor(engine.services.messenger, release.channel, release.ts,
                                   interval=engine.edit_interval)
        self.editor = editor

    async def save(self, *, claim: bool = False, end: Event | None = None) -> None:
        """Store the release's progress; with ``claim`` this replica becomes its driver; with ``end`` (succeed or
        fail) the release ends, reported, in the same write. Raises :class:`Lost` when it was superseded or is
        driven by another replica."""
        me = self.engine.identity
        release = self.release

        def mutate(stored: Record) -> bool:
            if stored.state != RUNNING or (not claim and stored.driver != me):
                raise Lost(release.id)
            release.take_decisions(stored)
            now = self.engine.clock()
            release.driver, release.heartbeat = me, iso(now)
            release.began = release.began or stored.began or iso(now)
            stored.take_progress(release)
            if end is not None:
                stored.move(end, now, release.outcome.headline if release.outcome else "")
                stored.reported = True
                release.state, release.finished, release.headline = stored.state, stored.finished, stored.headline
                release.reported = True
            return True

        async def store() -> None:
            if await self.engine.records.update(release.id, mutate) is None:
                raise Lost(release.id)  # its record is gone (pruned): nothing is left to drive

        async def unreachable(exc: BaseException | None) -> None:
            self.note_problem(f"cannot reach the cluster to store the release's progress ({exc})")
            await self.show()

        with self.stalls.watch("storing the release's progress"):
            async with self._lock:
                await retry(store, backoff=STORE_WAIT, on_retry=unreachable)

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
        text, blocks = self.engine.approvals.progress_view(self.release, self.status,
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
        release = self.release
        await self.show()
        while release.outcome is None:
            step = release.current
            if step is None:
                release.outcome = step_runner.succeeded(release, self.config)
                await self.save()
            else:
                await self._step(step)
        await self._report()

    async def _step(self, step: Any) -> None:
        release, engine = self.release, self.engine
        if step.state != StepState.RUNNING:
            step.state, step.started = StepState.RUNNING, step.started or iso(engine.clock())
        step.runs += 1
        await self.save()
        await self.show()

        async def attempt() -> step_runner.StepResult:
            cluster = await self.target.cluster()
            driven = {StepKind.ANALYSE: driven_steps.analyse, StepKind.GATE: driven_steps.gate,
                      StepKind.BAKE: driven_steps.bake, StepKind.LOAD: load_step.load_test}
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
        """The audit record (once), the end of the release (reported, in one write), its final message; then the
        lock frees for the next one."""
        release, engine = self.release, self.engine
        approvals = engine.approvals
        outcome = release.outcome or Outcome(False, "Stopped")
        if not release.reported:
            await analysis_load.end_all(self)  # what an analysed step's load left (a replica died mid-step)
            if release.params.analysed:
                await driven_steps.analysis_chart(self)
            await load_chart.post(self)  # a load test's latency over time, per track
            await approvals.audit_outcome(release, outcome)
        await self.save(end=Event.SUCCEED if outcome.ok else Event.FAIL)
        if self.editor is not None:
            await self.editor.final(*approvals.progress_view(release, self.status, outcome=outcome))
        await approvals.ended(release.key)
        if self.editor is not None and await self.editor.sent(FINAL_EDIT_WAIT) and self.editor.final_taken:
            with contextlib.suppress(DependencyUnavailable):
                await engine.records.mark_shown(release.id)
