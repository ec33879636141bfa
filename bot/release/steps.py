"""Carrying out one step of a release, idempotently, and telling how the release ended.

Every step re-reads what it changes and does only what is missing: an image already set is not set
again, a weight already in place is not patched, a certificate already re-issued is not triggered
again. So a step that was cut short (its replica died, the API went away) is run again from the
start with no harm, and nothing happens twice.

A step returns a :class:`StepResult`; transient cluster errors (5xx, timeouts, an unreachable API)
are raised for the engine to wait and retry; 403/404/422 end the step as failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.cluster.certificates import cert_from
from bot.cluster.deployments import track_from
from bot.cluster.kube import Cluster
from bot.core import times
from bot.core.config import Config
from bot.core.errors import ClusterError, NotFound
from bot.core.retry import retry
from bot.core.text import foreign
from bot.core.times import iso, parse_time
from bot.release import rollout
from bot.release.actions import CHANGE_CAUSE, backoff_until, revisions
from bot.release.plan import Outcome, Step, StepKind, StepState
from bot.release.record import Record
from bot.release.rollout import RolloutStatus

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    ok: bool
    note: str = ""  # one line: what the step saw at its end
    details: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


OnStatus = Callable[[RolloutStatus], Awaitable[None]]


async def _no_status(status: RolloutStatus) -> None:
    return None


@dataclass(frozen=True)
class StepContext:
    """What a step handler works with: the service's cluster (its router: ``cluster.traffic``) and configuration."""

    cluster: Cluster
    config: Config
    on_status: OnStatus = _no_status
    clock: Callable[[], datetime] = times.now
    cause: str = ""  # the change cause recorded on the Deployments it changes


Handler = Callable[[Step, StepContext], Awaitable[StepResult]]
HANDLERS: dict[StepKind, Handler] = {}  # the step kinds carried out here; the engine drives gates, analyses, bakes


def handles(kind: StepKind) -> Callable[[Handler], Handler]:
    """Register the handler of a step kind (one per kind)."""
    def register(handler: Handler) -> Handler:
        if kind in HANDLERS:
            raise ValueError(f"a handler of {kind} is registered already")
        HANDLERS[kind] = handler
        return handler

    return register


async def execute(step: Step, cluster: Cluster, config: Config, *, on_status: OnStatus = _no_status,
                  clock: Callable[[], datetime] = times.now, cause: str = "") -> StepResult:
    """Do what is still missing of ``step``, by its kind's handler. ``step.started`` (stored) anchors its
    deadlines; ``cause`` is the change cause recorded on the Deployments it changes."""
    handler = HANDLERS.get(step.kind)
    if handler is None:
        raise ValueError(f"unknown step kind {step.kind!r}")
    return await handler(step, StepContext(cluster, config, on_status, clock, cause))


@handles(StepKind.SET_IMAGE)
async def _set_image_step(step: Step, ctx: StepContext) -> StepResult:
    return await _set_image(step, ctx.cluster, ctx.config, ctx.cause)


@handles(StepKind.RESTORE_REVISION)
async def _restore_revision_step(step: Step, ctx: StepContext) -> StepResult:
    return await _restore_revision(step, ctx.cluster, ctx.config, ctx.cause)


@handles(StepKind.SCALE)
async def _scale(step: Step, ctx: StepContext) -> StepResult:
    deploy = await ctx.cluster.deployments.get(step.target)
    if int((deploy.get("spec") or {}).get("replicas", 1)) != step.replicas:
        await ctx.cluster.deployments.scale(step.target, step.replicas)
    return StepResult(True, f"{step.replicas} replica(s)")


@handles(StepKind.WAIT_READY)
async def _wait_ready_step(step: Step, ctx: StepContext) -> StepResult:
    return await _wait_ready(step, ctx.cluster, ctx.config, ctx.on_status, ctx.clock)


@handles(StepKind.SET_WEIGHT)
async def _set_weight(step: Step, ctx: StepContext) -> StepResult:
    await ctx.cluster.traffic.set_canary_share(step.percent)
    return StepResult(True, f"weight {step.percent}%")


@handles(StepKind.CHECK_CANARY)
async def _check_canary(step: Step, ctx: StepContext) -> StepResult:
    canary = track_from("canary", await ctx.cluster.deployments.get(step.target), ctx.config.container)
    if canary.ready == 0:
        return StepResult(False, f"`{canary.deployment}` has no ready pod any more "
                          f"({canary.ready}/{canary.desired})")
    return StepResult(True, f"{canary.ready}/{canary.desired} ready")


@handles(StepKind.TRIGGER_ISSUANCE)
async def _trigger_issuance(step: Step, ctx: StepContext) -> StepResult:
    state = cert_from(await ctx.cluster.certificates.get(step.target))
    issuing = state.issuing is not None and state.issuing.status == "True"
    if state.revision <= step.revision and not issuing:
        await retry(_trigger, ctx.cluster, step.target)
    return StepResult(True, f"revision {state.revision}")


@handles(StepKind.WAIT_ISSUED)
async def _wait_issued_step(step: Step, ctx: StepContext) -> StepResult:
    return await _wait_issued(step, ctx.cluster, ctx.config, ctx.clock)


async def _set_image(step: Step, cluster: Cluster, config: Config, cause: str) -> StepResult:
    deploy = await cluster.deployments.get(step.target)
    containers = (((deploy.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == config.container), containers[0] if containers else {})
    env = {e.get("name"): e.get("value") for e in chosen.get("env") or []}
    if chosen.get("image") != step.image or env.get("HELLO_VERSION") != step.version:
        # one strategic-merge patch: the image, HELLO_VERSION and the change cause
        container = {"name": config.container, "image": step.image,
                     "env": [{"name": "HELLO_VERSION", "value": step.version}]}
        patch: dict[str, Any] = {"spec": {"template": {"spec": {"containers": [container]}}}}
        if cause:
            patch["metadata"] = {"annotations": {CHANGE_CAUSE: cause}}
        await cluster.deployments.patch(step.target, patch)
    return StepResult(True, f"image {step.image}")


async def _restore_revision(step: Step, cluster: Cluster, config: Config, cause: str) -> StepResult:
    """Put back the revision's whole pod template, as ``kubectl rollout undo`` does (unless it is back)."""
    _, history = await revisions(cluster, step.target, config)
    kept = next((r for r in history if r.number == step.revision and r.template), None)
    deploy = await cluster.deployments.get(step.target)
    current = (deploy.get("spec") or {}).get("template") or {}
    if kept is None:
        if track_from("stable", deploy, config.container).image == step.image:
            return StepResult(True, f"image {step.image}")  # rolled back already, its ReplicaSet adopted
        return StepResult(False, f"revision {step.revision} of `{step.target}` is no longer kept: "
                          "nothing to roll back to")
    if current != kept.template:
        annotations = {**((deploy.get("metadata") or {}).get("annotations") or {})}
        if cause:
            annotations[CHANGE_CAUSE] = cause
        await cluster.deployments.patch(step.target, [
            {"op": "replace", "path": "/spec/template", "value": kept.template},
            {"op": "add", "path": "/metadata/annotations", "value": annotations}])
    return StepResult(True, f"revision {step.revision}'s pod template")


async def _wait_ready(step: Step, cluster: Cluster, config: Config, on_status: OnStatus,
                      clock: Callable[[], datetime]) -> StepResult:
    started = parse_time(step.started) or clock()
    left = config.rollout_timeout_seconds - (clock() - started).total_seconds()
    result = await rollout.follow(cluster, step.target, on_change=on_status, timeout=max(1.0, left),
                                  stall=config.rollout_stall_seconds, container=config.container)
    if result.ok:
        return StepResult(True, result.status.line(), facts={"line": result.status.line()})
    return StepResult(False, result.status.line(), details=[f"Reason: {result.reason}",
                                                            *(f"Warning {w}" for w in result.warnings)],
                      facts={"line": result.status.line()})


async def _trigger(cluster: Cluster, name: str) -> dict:
    """Set Issuing=True as ``cmctl renew`` does, guarded by the resourceVersion just read."""
    cert = await cluster.certificates.get(name)
    meta = cert.get("metadata") or {}
    stamp = times.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [c for c in (cert.get("status") or {}).get("conditions") or [] if c.get("type") != "Issuing"]
    conditions.append({"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
                       "message": "Certificate re-issuance manually triggered", "lastTransitionTime": stamp,
                       "observedGeneration": int(meta.get("generation") or 1)})
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": {"conditions": conditions}}
    return await cluster.certificates.patch_status(name, patch)


async def _wait_issued(step: Step, cluster: Cluster, config: Config, clock: Callable[[], datetime]) -> StepResult:
    started = parse_time(step.started) or clock()
    end = started.timestamp() + config.cert_timeout_seconds
    latest = await cluster.certificates.get(step.target)
    while True:
        verdict = renewal_verdict(step, latest)
        if verdict is not None:
            return verdict
        left = end - clock().timestamp()
        if left <= 0:
            break
        rv = str((latest.get("metadata") or {}).get("resourceVersion", "")) or None
        try:
            async for obj in cluster.certificates.watch(step.target, timeout=max(1.0, left), resource_version=rv):
                latest = obj
                if renewal_verdict(step, obj) is not None:
                    break
        except NotFound:
            raise
        except ClusterError as exc:
            log.info("certificate watch ended (%s); reading it again", exc)
            await asyncio.sleep(0.2)
            latest = await cluster.certificates.get(step.target)
    state = cert_from(latest)
    return StepResult(False, f"`{state.name}` was not re-issued within {config.cert_timeout_seconds}s "
                      f"(revision still {state.revision})",
                      details=[f"Ready: {foreign(state.reason or 'unknown', 80)} {foreign(state.message)}".strip()],
                      facts={"revision": state.revision})


def renewal_verdict(step: Step, obj: dict) -> StepResult | None:
    """Re-issued (a newer revision, no longer issuing), failed (a new failure), or ``None`` (not yet)."""
    state = cert_from(obj)
    if state.revision > step.revision and (state.issuing is None or state.issuing.status != "True"):
        expires = state.not_after.strftime("%Y-%m-%d %H:%M UTC") if state.not_after else "unknown"
        return StepResult(True, f"`{state.name}` re-issued: revision {state.revision}, valid until {expires}",
                          facts={"revision": state.revision,
                                 "not_after": iso(state.not_after)})
    issuing = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Issuing"), None)
    failed_at = parse_time((obj.get("status") or {}).get("lastFailureTime"))
    before = parse_time(step.last_failure)
    if issuing and issuing.get("status") == "False" and failed_at is not None \
            and (before is None or failed_at > before or state.failed_attempts > step.failed_attempts):
        retry_at = backoff_until(state)
        details = [f"cert-manager: {foreign(issuing.get('reason', ''), 80)}: {foreign(issuing.get('message', ''))}",
                   f"failed attempts in a row: {state.failed_attempts}, last at "
                   f"{failed_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"]
        if retry_at is not None:
            details.append(f"cert-manager backs off and tries again at {retry_at.strftime('%Y-%m-%d %H:%M UTC')}")
        return StepResult(False, f"`{state.name}` was not re-issued: the issuance failed", details=details,
                          facts={"revision": state.revision, "failed_attempts": state.failed_attempts})
    return None


# ---------------------------------------------------------------------------------- outcomes

FALLBACK_BUTTONS = {"deploy": ("rollback",), "rollback": ("rollback",), "promote": ("rollback", "abort"),
                    "canary": ("abort",), "shift": ("abort",), "abort": ("abort",)}


def short(step: Step) -> str:
    """A step in two or three words, for the lists of what was done and what was not."""
    if step.kind in (StepKind.SET_IMAGE, StepKind.RESTORE_REVISION):
        return f"image `{step.image}`"
    if step.kind == StepKind.SCALE:
        return "canary scaled to 0" if step.replicas == 0 else f"{step.replicas} replica(s)"
    if step.kind == StepKind.SET_WEIGHT:
        return f"weight {step.percent}%"
    return {StepKind.WAIT_READY: "ready", StepKind.CHECK_CANARY: "canary ready",
            StepKind.TRIGGER_ISSUANCE: "re-issuance triggered", StepKind.WAIT_ISSUED: "issued",
            StepKind.ANALYSE: f"analysis at {step.percent}%", StepKind.GATE: f"approval for {step.percent}%",
            StepKind.BAKE: "bake window", StepKind.LOAD: "load test"}[step.kind]


def _done_and_missing(release: Record, reason: str) -> list[str]:
    done = [short(s) for s in release.steps if s.state == StepState.DONE]
    missing = [short(s) for s in release.steps if s.state != StepState.DONE]
    lines = [f"Stopped: {reason}"]
    if done:
        lines.append("Done: " + "; ".join(done))
    if missing:
        lines.append("Not done: " + "; ".join(missing))
    return lines


def succeeded(release: Record, config: Config) -> Outcome:
    """The outcome of a release whose every step is done."""
    p, action = release.params, release.action
    version = p.version
    line = next((s.note for s in reversed(release.steps) if s.kind == StepKind.WAIT_READY), "")
    stable = config.stable_deployment
    facts: dict[str, Any] = {"version": version, "from_version": p.from_version}
    if action == "deploy":
        return Outcome(True, f"`{stable}` runs `{version}`: {line}", buttons=("rollback",), facts=facts)
    if action == "rollback":
        return Outcome(True, f"`{stable}` is back on `{version}`: {line}", facts=facts)
    if action == "canary" and p.analysed:
        walk = " → ".join(f"{w}%" for w in p.steps)
        return Outcome(True, f"Canary `{version}` passed analysis at {walk} and gets {p.percent}% of the "
                       "traffic: promote it when you are ready",
                       details=[s.note for s in release.steps if s.kind == StepKind.ANALYSE and s.note],
                       buttons=("promote", "abort"), facts={**facts, "percent": p.percent, "analysed": True})
    if action == "canary":
        return Outcome(True, f"Canary `{version}` gets {p.percent}% of the traffic ({line})",
                       buttons=("promote", "abort"), facts={**facts, "percent": p.percent})
    if action == "shift":
        return Outcome(True, f"Canary `{version}` gets {p.percent}% of the traffic",
                       buttons=("promote", "abort"),
                       facts={"version": version, "percent": p.percent, "from_weight": p.from_weight})
    if action == "abort":
        return Outcome(True, f"Canary `{version}` aborted: no traffic, no replicas",
                       facts={"version": version, "from_weight": p.from_weight})
    if action == "promote":
        return Outcome(True, f"`{stable}` runs `{version}` ({line}); the canary is scaled to 0 and gets no traffic",
                       buttons=("rollback",), facts=facts)
    if action in ("renew", "loadtest"):
        last = release.steps[-1]
        return Outcome(True, last.note, details=list(last.details), facts=dict(last.facts))
    return Outcome(True, "Done", facts=facts)


def failed(release: Record, step: Step, result: StepResult, config: Config) -> Outcome:
    """The outcome of a release stopped by ``step``, which ended as ``result``."""
    p, action = release.params, release.action
    version = p.version
    facts: dict[str, Any] = {"version": version, "from_version": p.from_version, **result.facts}
    facts.pop("line", None)
    if step.kind == StepKind.WAIT_READY:
        line = result.note
        if action == "deploy":
            return Outcome(False, f"The rollout of `{version}` failed: {line}", details=result.details,
                           buttons=("rollback",), facts=facts)
        if action == "rollback":
            return Outcome(False, f"The rollback to `{version}` failed: {line}", details=result.details, facts=facts)
        if action == "canary":
            reason = f"the canary is not ready; its weight is unchanged ({p.from_weight}%)"
            return Outcome(False, f"The canary `{version}` did not become ready: {line}",
                           details=[*result.details, *_done_and_missing(release, reason)[1:]],
                           buttons=("abort",), facts={**facts, "percent": p.percent})
        if action == "promote":
            return Outcome(False, f"Promoting `{version}` failed: the stable rollout did not complete ({line}); "
                           f"the canary still gets {p.from_weight}%", details=result.details,
                           buttons=("rollback", "abort"), facts=facts)
    if step.kind == StepKind.CHECK_CANARY:
        return Outcome(False, f"Not raised: {result.note}; the weight is unchanged.", buttons=("abort",),
                       facts={"version": version, "percent": p.percent, "from_weight": p.from_weight})
    if step.kind == StepKind.WAIT_ISSUED:
        return Outcome(False, result.note, details=result.details, facts=result.facts)
    if step.kind == StepKind.BAKE:
        rolled_back = bool(result.facts.get("rolled_back"))
        return Outcome(False, result.note, details=result.details, buttons=() if rolled_back else ("rollback",),
                       facts={**facts, **result.facts})
    if step.kind == StepKind.LOAD:
        return Outcome(False, result.note, details=result.details, facts=result.facts)
    if step.kind in (StepKind.ANALYSE, StepKind.GATE):
        return Outcome(False, result.note, details=result.details,
                       facts={**facts, "percent": step.percent})
    return stopped(release, result.note, config)


def stopped(release: Record, reason: str, config: Config) -> Outcome:
    """A step failed on an error from the cluster (403, 404, 422): what was done and what was not."""
    labels = {"canary": "The canary change stopped half-way", "abort": "The abort stopped half-way",
              "promote": "Promoting stopped half-way", "shift": "The weight was not changed"}
    head = labels.get(release.action)
    version = release.params.version
    facts = {"version": version, "from_version": release.params.from_version}
    buttons = FALLBACK_BUTTONS.get(release.action, ())
    if head is not None:
        return Outcome(False, f"{head}: {reason}", details=_done_and_missing(release, reason), buttons=buttons,
                       facts=facts)
    begun = "; ".join(s.title for s in release.steps if s.state != StepState.WAITING)
    return Outcome(False, f"Stopped: {reason}." + (f" Steps begun: {begun}." if begun else ""),
                   details=["Check the state with `/hello status` before trying again."], buttons=buttons,
                   facts=facts)
