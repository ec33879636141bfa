"""The steps a release's driver waits through: a gate (a person's click), an analysis (the canary judged from
Prometheus until the runner decides), a bake window (critical alerts from Alertmanager), and the chart of
the analysed windows at the end. Each takes the :class:`bot.release.driver.Driver` of the release (to save
its progress, show it, and reach the services) and returns a :class:`bot.release.steps.StepResult`, as the
step handlers of :mod:`bot.release.steps` do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.cluster.deployments import track_from
from bot.core.errors import DependencyUnavailable
from bot.core.retry import Backoff, retry
from bot.core.text import escape, foreign
from bot.core.times import iso, parse_time
from bot.observe.critical import critical_alerts
from bot.observe.grafana import prometheus_graph_url
from bot.observe.prom import window_expressions
from bot.release import analysis, analysis_load, bake_rollback
from bot.release import analysis_runner as runner
from bot.release import steps as step_runner
from bot.release.judge import State, Verdict, judge
from bot.release.plan import Step, StepKind, StepState, retire_steps

if TYPE_CHECKING:
    from bot.release.driver import Driver

log = logging.getLogger(__name__)

CARD_NOTE = Backoff(first=2.0, most=2.0, attempts=10)  # the alert's card may be posted a little after the alert
DECISION_POLL = 1.0  # seconds between looks for a person's Continue / Abort (any replica may get the click)


async def wait_for_decision(driver: Driver, step: Step) -> str:
    """Wait until a person has clicked Continue or Abort on the waiting ``step``; returns which."""
    while not step.decision:
        stored = await driver.engine.records.get(driver.release.id)
        if stored is not None:
            driver.release.take_decisions(stored)
        if not step.decision:
            await asyncio.sleep(DECISION_POLL)
    decision, who = step.decision, step.decided_by
    step.waiting = step.decision = ""
    step.decided_by = who
    await driver.save()
    return decision


async def gate(driver: Driver, step: Step, cluster: Any) -> step_runner.StepResult:
    if not step.waiting:
        step.waiting = f"Waiting for an approver to continue to {step.percent}%"
        await driver.save()
        await driver.show()
    if await wait_for_decision(driver, step) == "continue":
        return step_runner.StepResult(True, "continued by a person")
    return await abort_canary(driver, cluster, f"Canary `{driver.release.params.version}` aborted by "
                              f"a person before {step.percent}%")


async def analyse(driver: Driver, step: Step, cluster: Any) -> step_runner.StepResult:
    """Judge the canary every interval and act on the runner's decision (:mod:`analysis_runner`), with
    the analysis load on both tracks while it is judged (:mod:`analysis_load`).

    Each look judges the evidence since the release's first analysis step began (the same version at
    every weight; the judge's bounds hold over every look), so a resumed step judges again at once on
    all of it; the step itself waits at least one interval at its weight.
    """
    async with analysis_load.during(driver, step, cluster):
        result = await judged(driver, step, cluster)
    return analysis_load.noted(result, step)


async def judged(driver: Driver, step: Step, cluster: Any) -> step_runner.StepResult:
    config, clock = driver.config, driver.engine.clock
    policy = runner.Policy.from_config(config)
    version = driver.release.params.version
    began = last = clock()
    while True:
        if step.waiting:
            await analysis_load.end(driver, step, cluster)  # not judged while a person decides
            await driver.save()
            await driver.show()
            decision = await wait_for_decision(driver, step)
            if decision == "abort":
                return await abort_canary(driver, cluster, f"Canary `{version}` aborted by a person at "
                                          f"{step.percent}%", [step.verdict])
            return step_runner.StepResult(True, f"continued by a person after: {step.verdict}")
        await analysis_load.keep(driver, step, cluster)
        due = last + timedelta(seconds=config.analysis_interval_seconds)
        step.next_check = iso(due)
        await driver.save()
        await driver.show()
        await asyncio.sleep(max(0.0, (due - clock()).total_seconds()))
        last = clock()
        since = runner.evidence_since((parse_time(s.started) for s in driver.release.steps
                                       if s.kind == StepKind.ANALYSE and s.started), began)
        verdict = await look(driver, cluster, version, (last - since).total_seconds())
        step.looks += 1
        step.verdict = analysis.summary(verdict)
        await post_card(driver, step, verdict)
        move = runner.decide(verdict, policy=policy, percent=step.percent, inconclusive=step.inconclusive,
                             waited=(last - began).total_seconds())
        step.inconclusive = move.inconclusive
        if move.action == runner.Action.NEXT:
            return step_runner.StepResult(True, step.verdict, details=analysis.metric_lines(verdict))
        if move.action == runner.Action.ABORT:
            return await abort_canary(
                driver, cluster, f"Canary `{version}` failed analysis at {step.percent}% and was aborted: "
                f"{verdict.reason}", analysis.metric_lines(verdict))
        if move.action == runner.Action.ASK:
            step.waiting = move.question
        if move.action == runner.Action.WAIT:
            analysis_load.adjust(driver, step, verdict)


async def look(driver: Driver, cluster: Any, version: str, seconds: float) -> Verdict:
    """One look: the canary against stable over the last ``seconds``, judged (a blind wait without metrics)."""
    stable = track_from("stable", await cluster.deployments.get(driver.config.stable_deployment),
                        driver.config.container)
    if stable.version == version:
        return Verdict(State.WAIT, f"the canary runs the stable version `{version}`: nothing to compare",
                       (), seconds, blind=True)
    prometheus = driver.target.prometheus
    try:
        counts = await prometheus.window(seconds)
    except DependencyUnavailable as exc:
        return Verdict(State.WAIT, f"no metrics: {exc}", (), seconds, blind=True)
    return judge(analysis.stats(counts.get(version)), analysis.stats(counts.get(stable.version)),
                 analysis.settings_for(driver.config), seconds=seconds)


async def post_card(driver: Driver, step: Step, verdict: Verdict) -> None:
    """The look's verdict card in the release's thread, with a link to its queries in Prometheus."""
    release = driver.release
    if not release.ts:
        return
    services = driver.engine.services
    exprs = window_expressions(driver.config.metrics, int(verdict.seconds))
    links = [("the queries in Prometheus", prometheus_graph_url(driver.config.prometheus_url, exprs))]
    text, blocks = analysis.card(verdict, version=release.params.version, percent=step.percent,
                                 index=step.index, total=step.total, look=step.looks, links=links)
    try:
        await services.messenger.post(release.channel, text, blocks, thread_ts=release.ts)
    except DependencyUnavailable as exc:
        log.warning("release %s: cannot post the verdict card: %s", release.id, exc)


async def bake(driver: Driver, step: Step, cluster: Any) -> step_runner.StepResult:
    """Watch the service's critical alerts until the window ends; one that started since the change
    began rolls it back (once: a rollback's own window only reports).

    The alerts are :func:`bot.observe.critical.critical_alerts` of the release's service and environment,
    the same ones `/hello promote` asks about.
    """
    config, clock, release = driver.config, driver.engine.clock, driver.release
    services = driver.engine.services
    began = parse_time(step.started) or clock()
    end = began + timedelta(minutes=config.bake_minutes)
    since = parse_time(release.began) or began
    step.next_check = iso(end)
    await driver.save()
    await driver.show()
    poll = max(1.0, min(10.0, config.bake_minutes * 60 / 20))
    while clock() < end:
        try:
            fired = await critical_alerts(driver.target, services.catalogue, since=since)
        except DependencyUnavailable as exc:
            driver.note_problem(str(exc))
            await driver.show()
            fired = []
        else:
            if driver.release.problem:
                driver.release.problem = driver.release.problem_since = ""
        if fired:
            return await baked_badly(driver, step, cluster, fired[0], since)
        await asyncio.sleep(max(0.0, min(poll, (end - clock()).total_seconds())))
    return step_runner.StepResult(True, f"no critical alert in {config.bake_minutes:g} min")


async def baked_badly(driver: Driver, step: Step, cluster: Any, alert: Any, since: datetime
                      ) -> step_runner.StepResult:
    """A critical alert fired in the bake window: a rollback release of the bot's own supersedes this one
    (:mod:`bot.release.bake_rollback`; unless this is a rollback, or HELLO_AUTO_ROLLBACK=false), and the alert's
    card says so."""
    release, config = driver.release, driver.config
    minutes = max(0, int(((alert.starts_at or driver.engine.clock()) - since).total_seconds() // 60))
    what = f"the critical alert `{foreign(alert.name, 80)}` fired {minutes} min after the change began"
    what_ = what[0].upper() + what[1:]
    details = [foreign(alert.summary)] if alert.summary else []
    if release.action == "rollback" or not config.auto_rollback:
        why = "a rollback's bake window does not roll back again" if release.action == "rollback" \
            else "automatic rollback is off (HELLO_AUTO_ROLLBACK=false)"
        return step_runner.StepResult(False, f"{what_}; {why}", details=details,
                                      facts={"alert": alert.name})
    result = await bake_rollback.roll_back(driver, step, cluster, alert, what, details)
    note_on_card(driver, alert.name, f":leftwards_arrow_with_hook: rolled back to `{result.facts['to']}` by the "
                 f"bot's rollback `{result.facts['rollback']}`, asked by the bake window of request `{release.id}`")
    return result


def note_on_card(driver: Driver, alertname: str, note: str) -> None:
    """The alert's card says what the release did about it (in the background: Alertmanager's
    notification may reach the bot a little after the bake window saw the alert)."""
    alerts = driver.engine.alerts
    if alerts is None:
        return

    def unavailable(exc: BaseException) -> bool:
        if isinstance(exc, DependencyUnavailable):
            log.info("release %s: cannot note the rollback on the alert's card: %s", driver.release.id, exc)
            return True
        return False

    async def note_it() -> None:
        with contextlib.suppress(DependencyUnavailable):
            await retry(alerts.note_release, alertname, note, driver.release.service, driver.release.environment,
                        backoff=CARD_NOTE, when=unavailable, until=bool)

    driver.engine.background.spawn(note_it(), f"note on the card of {alertname}")


async def analysis_chart(driver: Driver) -> None:
    """The canary against stable over the analysed windows (shaded by verdict), the steps marked,
    in the release's thread. Best effort: without metrics there is no chart, and nothing fails."""
    from bot.observe import charts

    release, services = driver.release, driver.engine.services
    prometheus = driver.target.prometheus
    if not release.ts or prometheus is None:
        return
    states = {StepState.DONE: "pass", StepState.FAILED: "fail"}
    windows, markers = [], []
    for step in release.steps:
        begun, ended = parse_time(step.started), parse_time(step.finished) or driver.engine.clock()
        if step.kind == StepKind.ANALYSE and begun is not None:
            state = states.get(step.state, "inconclusive")
            windows.append(charts.Window(begun, ended, f"{step.percent}% {state}", state))
        elif step.kind == StepKind.SET_WEIGHT and step.finished:
            markers.append(charts.Marker(ended, f"{step.percent}%", kind="canary"))
    try:
        snapshot = await prometheus.snapshot("15m")
        if not snapshot.has_traffic:
            return
        png = await charts.render_chart_async(snapshot, service=driver.config.stable_deployment, kind="all",
                                              markers=markers, canary_version=release.params.version,
                                              windows=windows)
        await services.messenger.upload(release.channel, png, f"canary-{release.id}.png",
                                        f"canary {release.params.version} against stable, analysed windows",
                                        thread_ts=release.ts, comment=chart_caption(release.params.version))
    except DependencyUnavailable as exc:
        log.info("release %s: no analysis chart: %s", release.id, exc)


def chart_caption(version: str) -> str:
    """The line of text posted with the analysis chart: what it shows and how to read it."""
    return (f"Canary `{escape(version)}` (orange, dashed) against stable (blue) over the last 15 min: "
            "requests per second, success ratio and p99 latency per version; the shaded bands are the analysed "
            "steps (green passed, red failed, grey undecided) and the dash-dot lines mark each change of the "
            "canary's weight.")


async def abort_canary(driver: Driver, cluster: Any, headline: str, details: list[str] | None = None
                       ) -> step_runner.StepResult:
    """Weight 0 and the canary scaled to 0 (idempotent), then the step fails with ``headline``."""
    for retire in retire_steps(driver.config):
        await step_runner.execute(retire, cluster, driver.config, clock=driver.engine.clock)
    return step_runner.StepResult(False, headline, details=list(details or []), facts={"aborted": True})

