"""Load during analysis: while a canary step is judged, the same known rate on each track.

With ``HELLO_ANALYSIS_LOAD_RPS`` (the catalogue's ``analysis: {load: {rps: N}}``) above 0, every analysed
step runs one Job per track with `hey` at that rate against the track's own Service (the manifest of
:mod:`bot.release.load`: the traffic split is untouched), so both versions get equal, known traffic
besides the real one and the judge's evidence grows at a known pace even on a quiet service. With ``auto``,
the step starts without load (or at the rate the release's earlier steps reached) and after each waiting look
:func:`adjust` raises the rate to what the judge still needs (:func:`bot.release.analysis_runner.load_rate`);
the next look's :func:`keep` replaces the Jobs with a pair at the new rate.

The load lasts as long as the step is judged (:func:`during`, around :func:`bot.release.driven.analyse`):

* :func:`keep`, before each look, starts the step's Jobs or keeps those it finds by name (a replica that
  took the release over finds the Jobs the last one started), and replaces one that ended (its duration,
  :func:`seconds`, is the longest a step is judged before a person is asked, plus two looks);
* :func:`end` deletes them when the step is over, or stops being judged (a person is asked);
* when the step ends by an error, a cancellation or a lost claim, they are deleted unless the release is
  still running (the replica that takes it up next keeps them); :func:`end_all` deletes whatever a
  release's load left when the release ends.

Each Job has ``activeDeadlineSeconds`` and is owned by the release's record: the load never outlives its
reason, even when no replica is left to delete it. A cluster that refuses the Jobs (RBAC, a quota) does not
stop the canary: the step is judged on its real traffic alone and its line in the message says why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from bot.core.config import Config
from bot.core.errors import ClusterError, Conflict, Forbidden
from bot.core.readers import AUTO_LOAD
from bot.release import analysis_runner as runner
from bot.release import load
from bot.release.judge import Verdict
from bot.release.lifecycle import RUNNING
from bot.release.load_step import job_state, record_of
from bot.release.plan import Step, StepKind
from bot.release.steps import StepResult

if TYPE_CHECKING:
    from bot.release.driver import Driver

log = logging.getLogger(__name__)

TRACKS = ("stable", "canary")
WANTED = "load_wanted"  # the step's facts: the rate ``auto`` asked for
REFUSED = "load_refused"  # the step's facts: why the cluster refused the load (the step goes on without it)


def auto(config: Config) -> bool:
    """Whether the load's rate is chosen at each look (``HELLO_ANALYSIS_LOAD_RPS=auto``)."""
    return config.analysis_load_rps == AUTO_LOAD


def rps(config: Config, step: Step | None = None) -> int:
    """The load's requests per second to each track (0: no load): the setting's, or with ``auto`` the rate
    the step's looks have asked for so far (:func:`adjust`)."""
    if auto(config):
        return int(step.facts.get(WANTED, 0)) if step is not None else 0
    return int(config.analysis_load_rps or 0)


def adjust(driver: Driver, step: Step, verdict: Verdict) -> None:
    """With ``auto``, the rate the next looks run under, from this look's verdict
    (:func:`bot.release.analysis_runner.load_rate`); the next :func:`keep` starts it."""
    config = driver.config
    if not auto(config):
        return
    rate = runner.load_rate(verdict, current=rps(config, step), cap=config.loadtest_max_rps,
                            interval=config.analysis_interval_seconds)
    if rate != rps(config, step):
        step.facts = {**step.facts, WANTED: rate}


def carried(driver: Driver, step: Step) -> None:
    """With ``auto``, a step starts at the rate the release's earlier analysed steps reached (the same
    canary, a larger share: it needs no more than they did)."""
    if not auto(driver.config) or WANTED in step.facts:
        return
    earlier = [int(s.facts.get(WANTED, 0)) for s in driver.release.steps
               if s.index < step.index and s.kind == StepKind.ANALYSE]
    if max(earlier, default=0) > 0:
        step.facts = {**step.facts, WANTED: max(earlier)}


def seconds(config: Config) -> int:
    """How long each Job runs: the longest a step is judged before a person is asked, plus two looks."""
    return max(60, int(config.analysis_max_wait_seconds + 2 * config.analysis_interval_seconds))


def job_names(release_id: str, index: int, rate: int) -> dict[str, str]:
    """The step's Job per track at ``rate``, found again by these names:
    ``hello-load-<release>-a<step>r<rate>-<track>`` (a new rate is a new pair of Jobs)."""
    return {track: load.job_name(f"{release_id}-a{index}r{rate}", track) for track in TRACKS}


def manifest(driver: Driver, step: Step, track: str, owner: dict | None) -> dict[str, Any]:
    config, release_id, rate = driver.config, driver.release.id, rps(driver.config, step)
    return load.job_manifest(config, release_id, track, rps=rate, seconds=seconds(config),
                             path=config.loadtest_path, owner=owner,
                             name=job_names(release_id, step.index, rate)[track],
                             labels={load.ANALYSIS_LABEL: str(step.index)})


async def keep(driver: Driver, step: Step, cluster: Any) -> None:
    """Make sure the step's Jobs run: keep those found by name, start the missing ones, replace those that
    ended; the first time for the step here, or at a new rate, delete what else the release's load left (an
    earlier rate, or a replica that died between a step's end and its Jobs' deletion). Says the load in the
    step's facts (the message shows it)."""
    carried(driver, step)
    rate = rps(driver.config, step)
    if rate <= 0 or REFUSED in step.facts:
        return
    try:
        await _keep(driver, step, cluster, rate)
    except Forbidden as exc:  # RBAC or a quota: the step is judged on the real traffic alone, and says so
        log.warning("release %s: the analysis load was refused: %s", driver.release.id, exc)
        step.facts = {**step.facts, REFUSED: str(exc)[:300]}


async def _keep(driver: Driver, step: Step, cluster: Any, rate: int) -> None:
    names = job_names(driver.release.id, step.index, rate)
    if step.facts.get("load_rps") != rate:
        for job in await cluster.jobs.list(f"{load.LOAD_LABEL}={driver.release.id},{load.ANALYSIS_LABEL}"):
            if job["metadata"]["name"] not in names.values():
                await cluster.jobs.delete(job["metadata"]["name"])
        step.facts = {**step.facts, "load_rps": rate}
    owner: dict | None = None
    for track, name in names.items():
        job = await cluster.jobs.get(name)
        if job is not None:
            state, why = job_state(job)
            if state == "running":
                continue
            if state == "failed":
                log.warning("release %s: the analysis load's Job %s failed (%s): starting it again",
                            driver.release.id, name, why)
            await cluster.jobs.delete(name)
        owner = owner or await record_of(driver, cluster)
        try:
            await cluster.jobs.create(manifest(driver, step, track, owner))
        except Conflict:  # the ended one is still being deleted: the next look starts it
            log.info("release %s: the analysis load's Job %s is not gone yet", driver.release.id, name)


async def end(driver: Driver, step: Step, cluster: Any) -> None:
    """Delete the step's Jobs (whether or not they exist)."""
    if "load_rps" not in step.facts and rps(driver.config, step) <= 0:
        return
    for job in await cluster.jobs.list(f"{load.LOAD_LABEL}={driver.release.id},{load.ANALYSIS_LABEL}={step.index}"):
        await cluster.jobs.delete(job["metadata"]["name"])


async def end_all(driver: Driver) -> None:
    """Delete every analysis load Job of the release (at its end; best effort: their deadline and owner
    end them otherwise)."""
    if not driver.release.params.analysed:
        return
    try:
        cluster = await driver.target.cluster()
        for job in await cluster.jobs.list(f"{load.LOAD_LABEL}={driver.release.id},{load.ANALYSIS_LABEL}"):
            await cluster.jobs.delete(job["metadata"]["name"])
    except ClusterError as exc:
        log.info("release %s: cannot delete the analysis load's Jobs: %s", driver.release.id, exc)


async def still_running(driver: Driver) -> bool:
    """Whether the stored release is still running (so a replica takes its step up again)."""
    with contextlib.suppress(ClusterError):
        stored = await driver.engine.load(driver.release.id)
        return stored is not None and stored.state == RUNNING
    return False


@contextlib.asynccontextmanager
async def during(driver: Driver, step: Step, cluster: Any) -> AsyncIterator[None]:
    """The step's load for as long as the step runs here: deleted when it ends; when it is cut short
    (an error, a cancellation, another replica's claim) kept only if the release is still running."""
    try:
        yield
    except BaseException:
        if not await still_running(driver):
            with contextlib.suppress(ClusterError):
                await end(driver, step, cluster)
        raise
    with contextlib.suppress(ClusterError):  # the step is decided: what is left here, end_all deletes
        await end(driver, step, cluster)


def noted(result: StepResult, step: Step) -> StepResult:
    """The step's result with the load it ran under in its facts (the message and the audit show it)."""
    kept = {key: step.facts[key] for key in ("load_rps", WANTED, REFUSED) if key in step.facts}
    if kept:
        result.facts = {**result.facts, **kept}
    return result
