"""The step of a load test (``StepKind.LOAD``): one Job running `hey` against each track's Service, followed
until both end, then their figures read from the pods' logs and the Jobs deleted.

The Jobs are named after the release and the track, owned by the release's record when it lives in the
same namespace (so Kubernetes deletes them with it), and have ``activeDeadlineSeconds``: the load never
outlives its reason. The step stores when it created them; a driver that takes the release over finds
them by name and goes on following them, and one that finds them gone (``/hello loadtest stop`` deletes
them) ends the step as stopped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.core.text import foreign
from bot.core.times import iso, parse_time
from bot.release import load
from bot.release.plan import Step
from bot.release.steps import StepResult

if TYPE_CHECKING:
    from bot.release.driver import Driver

POLL = 1.0  # seconds between looks at the Jobs


def job_state(job: dict[str, Any]) -> tuple[str, str]:
    """``("running" | "complete" | "failed", why it failed)`` from the Job's conditions."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "complete", ""
        if condition.get("type") == "Failed":
            return "failed", f"{condition.get('reason', '')}: {condition.get('message', '')}"
    return "running", ""


async def record_of(driver: Driver, cluster: Any) -> dict | None:
    """The release's record (its ConfigMap) when it is in the Jobs' namespace: their owner."""
    state = await driver.engine.services.cluster()
    if state.host != cluster.host or state.namespace != cluster.namespace:
        return None  # an owner must be in the same namespace: the deadline and the bot end the load instead
    return await state.configmaps.get(driver.engine.records.name(driver.release.id))


async def end(cluster: Any, names: dict[str, str]) -> None:
    for name in names.values():
        await cluster.jobs.delete(name)


async def load_test(driver: Driver, step: Step, cluster: Any) -> StepResult:
    """Start (or find again) the Jobs, show their progress, and end with each track's figures."""
    release, config, clock = driver.release, driver.config, driver.engine.clock
    p = release.params
    names = {track: load.job_name(release.id, track) for track in p.tracks}
    if not step.facts.get("started"):
        owner = await record_of(driver, cluster)
        for track, name in names.items():
            if await cluster.jobs.get(name) is None:
                await cluster.jobs.create(load.job_manifest(config, release.id, track, rps=p.rps, seconds=p.seconds,
                                                            path=p.path, owner=owner))
        step.facts = {"started": iso(clock()), "jobs": sorted(names.values())}
        await driver.save()
    began = parse_time(step.facts["started"]) or clock()
    while True:
        jobs = {track: await cluster.jobs.get(name) for track, name in names.items()}
        gone = [track for track, job in jobs.items() if job is None]
        if gone:
            await end(cluster, names)
            return StepResult(False, f"Stopped before its end: the load's Jobs were deleted ({', '.join(gone)})",
                              facts={"stopped": True})
        states = {track: job_state(job) for track, job in jobs.items() if job is not None}
        if all(state != "running" for state, _ in states.values()):
            break
        elapsed = min(float(p.seconds), (clock() - began).total_seconds())
        step.verdict = f"{elapsed:.0f} s of {p.seconds} s"
        await driver.show()
        await asyncio.sleep(POLL)
    measured, lines, failures = {}, [], []
    for track, name in names.items():
        logs = await cluster.jobs.logs(name)
        measured[track] = load.figures(logs[-1] if logs else "", p.seconds)
        lines.append(load.line(track, measured[track], expected=p.rps * p.seconds))
        state, why = states[track]
        if state == "failed":
            failures.append(f"{track}: {foreign(why, 200)}")
    await end(cluster, names)
    driver.measured = measured
    facts = {track: {"requests": f.requests, "errors": f.errors, "p99_ms": round(f.p99 * 1000, 1)}
             for track, f in measured.items()}
    if failures:
        return StepResult(False, "The load's Job failed: " + "; ".join(failures), details=lines, facts=facts)
    return StepResult(True, f"{p.rps} req/s for {p.seconds} s to each of {', '.join(p.tracks)}", details=lines,
                      facts=facts)
