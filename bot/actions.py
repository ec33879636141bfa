"""The cluster changes a release makes, and the plans that describe them before approval.

Each change has two halves:

- ``plan_*`` reads the cluster at request time and returns a :class:`Change`: what will change, from
  what to what, in words for the approval message; it refuses (``CommandError``) what would be
  pointless or unsafe (nothing to roll back to, raising the canary weight with no ready pod, ...).
- ``run_*`` carries it out after approval, reporting each step through a :class:`Job` and returning
  an :class:`Outcome`. A change that stops half-way says exactly which steps were done and which
  were not.

Every API call goes through :func:`retry`: a 409 is retried on fresh state (each step re-reads
what it changes), 5xx answers, timeouts and unreachable servers are retried with exponential
backoff, and after the last attempt the error is reported.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot import rollout
from bot.config import Config
from bot.errors import ClusterError, CommandError, Conflict, Forbidden, NotFound
from bot.kube import Cluster, cert_from, image_version, parse_time, route_from, track_from
from bot.rollout import RolloutStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
DEPLOYMENT = ("apps/v1", "Deployment")
MAPPING = ("getambassador.io/v3alpha1", "Mapping")
CERTIFICATE = ("cert-manager.io/v1", "Certificate")
RETRY_ATTEMPTS = 5


# ---------------------------------------------------------------- retries


def transient(exc: BaseException) -> bool:
    """Worth another try: a conflict (re-read and redo), a 5xx/429, a timeout or an unreachable server."""
    if isinstance(exc, Conflict):
        return True
    if isinstance(exc, NotFound | Forbidden) or not isinstance(exc, ClusterError):
        return False
    return exc.status == 0 or exc.status == 429 or exc.status >= 500


async def retry(fn: Callable[..., Awaitable[T]], *args: Any, attempts: int = RETRY_ATTEMPTS, **kwargs: Any) -> T:
    """``await fn(*args, **kwargs)``, retried on :func:`transient` errors with exponential backoff."""
    async for attempt in AsyncRetrying(stop=stop_after_attempt(attempts), reraise=True,
                                       wait=wait_exponential(multiplier=0.05, max=1.0),
                                       retry=retry_if_exception(transient)):
        with attempt:
            return await fn(*args, **kwargs)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- data


@dataclass
class Change:
    """A change as requested and approved: stored with the request, run after approval."""

    command: str  # the sub-command module that runs it ("deploy", "canary", ...)
    action: str  # deploy | canary | shift | promote | abort | rollback | renew
    verb: str  # for audit reasons: Deploy, Canary, Promote, Abort, Rollback, CertRenew
    summary: str  # one line: what, from -> to
    details: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    target: dict[str, str] = field(default_factory=dict)  # apiVersion, kind, name of the object changed
    needs_approval: bool = True

    @property
    def label(self) -> str:
        """How people call this change: "Deploy", "Canary", "Certificate renewal"..."""
        return LABELS.get(self.verb, self.verb)


LABELS = {"CertRenew": "Certificate renewal", "Promote": "Canary promotion", "Abort": "Canary abort",
          "Canary": "Canary", "Deploy": "Deploy", "Rollback": "Rollback"}


@dataclass
class Outcome:
    ok: bool
    headline: str
    details: list[str] = field(default_factory=list)
    buttons: tuple[str, ...] = ()  # follow-ups offered: "rollback", "promote", "abort"
    facts: dict[str, Any] = field(default_factory=dict)  # for the audit record (versions, notAfter, ...)


class Job(Protocol):
    """What a running change reports to (implemented by :class:`bot.approvals.Run`)."""

    cluster: Cluster
    config: Config
    params: dict[str, Any]
    record: Any  # the stored request (id, change, requester, approver): what the change cause names

    async def step(self, text: str) -> None: ...  # a new step begins (the previous one is done)

    async def watching(self, status: RolloutStatus) -> None: ...  # a rollout reading


def target(kind: tuple[str, str], name: str) -> dict[str, str]:
    return {"apiVersion": kind[0], "kind": kind[1], "name": name}


def image_for(config: Config, version: str) -> str:
    return f"{config.image_repository}:{version}"


# ---------------------------------------------------------------- reading


async def _track(cluster: Cluster, name: str, config: Config, role: str):  # -> Track
    return track_from(role, await retry(cluster.get_deployment, name), config.container)


async def _route(cluster: Cluster, name: str):  # -> Route
    return route_from(await retry(cluster.get_mapping, name))


@dataclass(frozen=True)
class Revision:
    number: int
    image: str
    version: str
    replicaset: str
    template: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # its pod template


async def revisions(cluster: Cluster, name: str, config: Config) -> tuple[int, list[Revision]]:
    """The Deployment's current revision and its ReplicaSet history, oldest first."""
    deploy = await retry(cluster.get_deployment, name)
    meta = deploy.get("metadata") or {}
    labels = ((deploy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    sets = await retry(cluster.list_replicasets, selector)
    out = []
    for rs in sets:
        rs_meta = rs.get("metadata") or {}
        if not any(ref.get("uid") == meta.get("uid") for ref in rs_meta.get("ownerReferences") or []):
            continue
        number = int((rs_meta.get("annotations") or {}).get(REVISION, "0") or 0)
        image = track_from("rs", rs, config.container).image
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        (template.get("metadata") or {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
        out.append(Revision(number, image, image_version(image) if image else "", rs_meta.get("name", ""), template))
    out.sort(key=lambda r: r.number)
    current = int((meta.get("annotations") or {}).get(REVISION, "0") or 0)
    return current, out


# ---------------------------------------------------------------- plans


async def plan_deploy(cluster: Cluster, config: Config, version: str) -> Change:
    stable = await _track(cluster, config.stable_deployment, config, "stable")
    image = image_for(config, version)
    if stable.image == image:
        raise CommandError(f"`{stable.deployment}` already runs `{version}` ({stable.ready}/{stable.desired} ready).")
    return Change(
        command="deploy", action="deploy", verb="Deploy",
        summary=f"{stable.deployment}: {stable.version or 'nothing'} → {version}",
        details=[f"image `{stable.image or 'none'}` → `{image}`",
                 f"rolling update of {stable.desired} replica(s)"],
        params={"version": version, "image": image, "from_version": stable.version, "from_image": stable.image},
        target=target(DEPLOYMENT, stable.deployment),
    )


async def plan_canary(cluster: Cluster, config: Config, version: str, percent: int) -> Change:
    canary = await _track(cluster, config.canary_deployment, config, "canary")
    route = await _route(cluster, config.canary_mapping)
    image = image_for(config, version)
    current = route.weight or 0
    return Change(
        command="canary", action="canary", verb="Canary",
        summary=(f"{canary.deployment}: {canary.version or 'none'} at {current}% → {version} at {percent}%"),
        details=[f"`{canary.deployment}` image `{canary.image or 'none'}` → `{image}`",
                 f"scale `{canary.deployment}` {canary.desired} → {config.canary_replicas} replica(s), "
                 "wait until ready",
                 f"Mapping `{route.mapping}` weight {current}% → {percent}%"],
        params={"version": version, "image": image, "percent": percent, "from_version": canary.version,
                "from_weight": current, "replicas": config.canary_replicas},
        target=target(DEPLOYMENT, canary.deployment),
    )


async def plan_shift(cluster: Cluster, config: Config, percent: int) -> Change:
    canary = await _track(cluster, config.canary_deployment, config, "canary")
    route = await _route(cluster, config.canary_mapping)
    current = route.weight or 0
    if percent == current:
        raise CommandError(f"The canary already gets {current}% of the traffic.")
    if percent > current and canary.ready == 0:
        raise CommandError(
            f"Refusing to raise the canary weight to {percent}%: `{canary.deployment}` has no ready pod "
            f"({canary.ready}/{canary.desired}). Start it with `/hello canary <version> {percent}%`.")
    return Change(
        command="canary", action="shift", verb="Canary",
        summary=f"{canary.deployment}: {canary.version} weight {current}% → {percent}%",
        details=[f"Mapping `{route.mapping}` weight {current}% → {percent}% "
                 f"(`{canary.deployment}` {canary.ready}/{canary.desired} ready)"],
        params={"percent": percent, "from_weight": current, "version": canary.version},
        target=target(MAPPING, route.mapping),
    )


async def plan_promote(cluster: Cluster, config: Config) -> Change:
    stable = await _track(cluster, config.stable_deployment, config, "stable")
    canary = await _track(cluster, config.canary_deployment, config, "canary")
    route = await _route(cluster, config.canary_mapping)
    if canary.desired == 0 or canary.ready == 0:
        raise CommandError(f"There is no running canary to promote (`{canary.deployment}` "
                           f"{canary.ready}/{canary.desired} ready).")
    return Change(
        command="canary", action="promote", verb="Promote",
        summary=f"{stable.deployment}: {stable.version} → {canary.version} (promote the canary)",
        details=[f"rolling update of `{stable.deployment}` to `{canary.image}`",
                 f"then Mapping `{route.mapping}` weight {route.weight or 0}% → 0%",
                 f"and scale `{canary.deployment}` {canary.desired} → 0"],
        params={"version": canary.version, "image": canary.image, "from_version": stable.version,
                "from_weight": route.weight or 0},
        target=target(DEPLOYMENT, stable.deployment),
    )


async def plan_abort(cluster: Cluster, config: Config) -> Change:
    canary = await _track(cluster, config.canary_deployment, config, "canary")
    route = await _route(cluster, config.canary_mapping)
    weight = route.weight or 0
    if weight == 0 and canary.desired == 0:
        raise CommandError("There is no canary to abort: it gets no traffic and has no replicas.")
    return Change(
        command="canary", action="abort", verb="Abort",
        summary=f"{canary.deployment}: {canary.version} weight {weight}% → 0%, {canary.desired} → 0 replicas",
        details=[f"Mapping `{route.mapping}` weight {weight}% → 0%", f"scale `{canary.deployment}` to 0"],
        params={"version": canary.version, "from_weight": weight, "from_replicas": canary.desired},
        target=target(DEPLOYMENT, canary.deployment),
        needs_approval=config.abort_needs_approval,
    )


async def plan_rollback(cluster: Cluster, config: Config) -> Change:
    current, history = await revisions(cluster, config.stable_deployment, config)
    now = next((r for r in history if r.number == current), None)
    older = [r for r in history if r.number < current and r.image]
    if not older:
        raise CommandError(f"`{config.stable_deployment}` has no earlier revision to roll back to "
                           f"(revision {current or 'unknown'} is the oldest kept).")
    previous = older[-1]
    from_version = now.version if now else "unknown"
    return Change(
        command="rollback", action="rollback", verb="Rollback",
        summary=(f"{config.stable_deployment}: {from_version} (revision {current}) → "
                 f"{previous.version} (revision {previous.number})"),
        details=[f"image `{now.image if now else 'unknown'}` → `{previous.image}`",
                 f"from ReplicaSet `{previous.replicaset}`"],
        params={"version": previous.version, "image": previous.image, "from_version": from_version,
                "revision": previous.number, "from_revision": current},
        target=target(DEPLOYMENT, config.stable_deployment),
    )


def backoff_until(cert: Any) -> datetime | None:
    """When cert-manager retries a failed issuance: lastFailureTime + 1h × 2^(attempts-1), at most 32h."""
    if cert.last_failure is None or cert.failed_attempts <= 0:
        return None
    hours = min(2 ** (cert.failed_attempts - 1), 32)
    return cert.last_failure + timedelta(hours=hours)


async def plan_renew(cluster: Cluster, config: Config) -> Change:
    cert = cert_from(await retry(cluster.get_certificate))
    if cert.issuing is not None and cert.issuing.status == "True":
        raise CommandError(f"Certificate `{cert.name}` is already being issued ({cert.issuing.reason}): "
                           "wait for it to finish.")
    expires = cert.not_after.strftime("%Y-%m-%d %H:%M UTC") if cert.not_after else "unknown"
    details = [f"set condition Issuing=True (ManuallyTriggered), as `cmctl renew` does; expires now {expires}"]
    retry_at = backoff_until(cert)
    if retry_at is not None:
        details.append(f"cert-manager is backing off after {cert.failed_attempts} failed attempt(s): its next "
                       f"attempt is at {retry_at.strftime('%Y-%m-%d %H:%M UTC')}; renewing now does not wait")
    return Change(
        command="cert", action="renew", verb="CertRenew",
        summary=f"certificate {cert.name}: revision {cert.revision} → a new certificate",
        details=details,
        params={"revision": cert.revision, "not_after": cert.not_after.isoformat() if cert.not_after else ""},
        target=target(CERTIFICATE, cert.name),
    )


# ---------------------------------------------------------------- runs


def _not_done(done: list[str], missing: list[str], reason: str) -> list[str]:
    lines = [f"Stopped: {reason}"]
    if done:
        lines.append("Done: " + "; ".join(done))
    if missing:
        lines.append("Not done: " + "; ".join(missing))
    return lines


def change_cause(job: Job) -> str:
    """The `kubernetes.io/change-cause` of a change: what `kubectl rollout history` shows for it."""
    record = job.record
    change = record.change
    return (f"hello-chatops {change.label.lower()} {change.summary} (request {record.id} by {record.requester}, "
            f"approved by {record.approver or 'nobody'})")


async def _set_image(job: Job, deployment: str, image: str, version: str) -> None:
    """Set the image (and HELLO_VERSION) in one patch that also records the change cause."""
    container = {"name": job.config.container, "image": image, "env": [{"name": "HELLO_VERSION", "value": version}]}
    await retry(job.cluster.patch_deployment, deployment, {
        "metadata": {"annotations": {CHANGE_CAUSE: change_cause(job)}},
        "spec": {"template": {"spec": {"containers": [container]}}}})


async def _restore_revision(job: Job, deployment: str, number: int) -> None:
    """Put back a revision's whole pod template, as `kubectl rollout undo` does, with the change cause."""
    _, history = await revisions(job.cluster, deployment, job.config)
    kept = next((r for r in history if r.number == number and r.template), None)
    if kept is None:
        raise CommandError(f"Revision {number} of `{deployment}` is no longer kept: nothing to roll back to.")
    deploy = await retry(job.cluster.get_deployment, deployment)
    annotations = {**((deploy.get("metadata") or {}).get("annotations") or {}), CHANGE_CAUSE: change_cause(job)}
    await retry(job.cluster.patch_deployment, deployment, [
        {"op": "replace", "path": "/spec/template", "value": kept.template},
        {"op": "add", "path": "/metadata/annotations", "value": annotations}])


async def _follow(job: Job, deployment: str) -> rollout.RolloutResult:
    cfg = job.config
    return await rollout.follow(job.cluster, deployment, on_change=job.watching,
                                timeout=cfg.rollout_timeout_seconds, stall=cfg.rollout_stall_seconds,
                                container=cfg.container)


def _failure(result: rollout.RolloutResult) -> list[str]:
    return [f"Reason: {result.reason}", *(f"Warning {w}" for w in result.warnings)]


async def _roll_stable(job: Job, step: str, done: str, failed: str, done_buttons: tuple[str, ...]) -> Outcome:
    """Set the stable Deployment's image from the job's params (a rollback: the whole pod template of
    the revision in the params) and follow the rollout."""
    p, cfg = job.params, job.config
    await job.step(step)
    if job.record.change.action == "rollback":
        await _restore_revision(job, cfg.stable_deployment, int(p["revision"]))
    else:
        await _set_image(job, cfg.stable_deployment, p["image"], p["version"])
    await job.step("Rolling out")
    result = await _follow(job, cfg.stable_deployment)
    facts = {"version": p["version"], "from_version": p.get("from_version", "")}
    if result.ok:
        return Outcome(True, f"{done}: {result.status.line()}", buttons=done_buttons, facts=facts)
    return Outcome(False, f"{failed}: {result.status.line()}", details=_failure(result), buttons=("rollback",),
                   facts=facts)


async def run_deploy(job: Job) -> Outcome:
    p, cfg = job.params, job.config
    return await _roll_stable(job, f"Set `{cfg.stable_deployment}` to `{p['image']}`",
                              f"`{cfg.stable_deployment}` runs `{p['version']}`",
                              f"The rollout of `{p['version']}` failed", ("rollback",))


async def run_rollback(job: Job) -> Outcome:
    p, cfg = job.params, job.config
    return await _roll_stable(job, f"Set `{cfg.stable_deployment}` back to `{p['image']}` (revision {p['revision']})",
                              f"`{cfg.stable_deployment}` is back on `{p['version']}`",
                              f"The rollback to `{p['version']}` failed", ())


async def _weight(job: Job, percent: int) -> None:
    await retry(job.cluster.patch_mapping, job.config.canary_mapping, {"spec": {"weight": percent}})


async def run_canary(job: Job) -> Outcome:
    p, cfg = job.params, job.config
    canary, percent = cfg.canary_deployment, int(p["percent"])
    steps = [f"image `{p['image']}`", f"{p['replicas']} replica(s)", "ready", f"weight {percent}%"]
    done: list[str] = []
    facts = {"version": p["version"], "percent": percent, "from_version": p.get("from_version", "")}
    try:
        await job.step(f"Set `{canary}` to `{p['image']}`")
        await _set_image(job, canary, p["image"], p["version"])
        done.append(steps[0])
        await job.step(f"Scale `{canary}` to {p['replicas']}")
        await retry(job.cluster.scale_deployment, canary, int(p["replicas"]))
        done.append(steps[1])
        await job.step(f"Waiting for `{canary}` to be ready")
        result = await _follow(job, canary)
        if not result.ok:
            return Outcome(False, f"The canary `{p['version']}` did not become ready: {result.status.line()}",
                           details=[*_failure(result),
                                    *_not_done(done, steps[2:], "the canary is not ready; its weight is unchanged "
                                               f"({p.get('from_weight', 0)}%)")[1:]],
                           buttons=("abort",), facts=facts)
        done.append(steps[2])
        await job.step(f"Set the canary weight to {percent}%")
        await _weight(job, percent)
        done.append(steps[3])
    except ClusterError as exc:
        missing = [s for s in steps if s not in done]
        return Outcome(False, f"The canary change stopped half-way: {exc}",
                       details=_not_done(done, missing, str(exc)), buttons=("abort",), facts=facts)
    return Outcome(True, f"Canary `{p['version']}` gets {percent}% of the traffic ({result.status.line()})",
                   buttons=("promote", "abort"), facts=facts)


async def run_shift(job: Job) -> Outcome:
    p, cfg = job.params, job.config
    percent = int(p["percent"])
    facts = {"version": p.get("version", ""), "percent": percent, "from_weight": p.get("from_weight", 0)}
    if percent > int(p.get("from_weight", 0)):
        canary = await _track(job.cluster, cfg.canary_deployment, cfg, "canary")
        if canary.ready == 0:
            return Outcome(False, f"Not raised: `{canary.deployment}` has no ready pod any more "
                           f"({canary.ready}/{canary.desired}); the weight is unchanged.",
                           buttons=("abort",), facts=facts)
    await job.step(f"Set the canary weight to {percent}%")
    try:
        await _weight(job, percent)
    except ClusterError as exc:
        return Outcome(False, f"The weight was not changed: {exc}", buttons=("abort",), facts=facts)
    return Outcome(True, f"Canary `{p.get('version', '')}` gets {percent}% of the traffic",
                   buttons=("promote", "abort"), facts=facts)


async def _abort_steps(job: Job, done: list[str]) -> None:
    cfg = job.config
    await job.step("Set the canary weight to 0%")
    await _weight(job, 0)
    done.append("weight 0%")
    await job.step(f"Scale `{cfg.canary_deployment}` to 0")
    await retry(job.cluster.scale_deployment, cfg.canary_deployment, 0)
    done.append("canary scaled to 0")


async def run_abort(job: Job) -> Outcome:
    p = job.params
    done: list[str] = []
    facts = {"version": p.get("version", ""), "from_weight": p.get("from_weight", 0)}
    try:
        await _abort_steps(job, done)
    except ClusterError as exc:
        missing = [s for s in ("weight 0%", "canary scaled to 0") if s not in done]
        return Outcome(False, f"The abort stopped half-way: {exc}", details=_not_done(done, missing, str(exc)),
                       buttons=("abort",), facts=facts)
    return Outcome(True, f"Canary `{p.get('version', '')}` aborted: no traffic, no replicas", facts=facts)


async def run_promote(job: Job) -> Outcome:
    p, cfg = job.params, job.config
    facts = {"version": p["version"], "from_version": p.get("from_version", "")}
    done: list[str] = []
    try:
        await job.step(f"Set `{cfg.stable_deployment}` to `{p['image']}`")
        await _set_image(job, cfg.stable_deployment, p["image"], p["version"])
        await job.step("Rolling out the stable track")
        result = await _follow(job, cfg.stable_deployment)
        if not result.ok:
            return Outcome(False, f"Promoting `{p['version']}` failed: the stable rollout did not complete "
                           f"({result.status.line()}); the canary still gets {p.get('from_weight', 0)}%",
                           details=_failure(result), buttons=("rollback", "abort"), facts=facts)
        done.append(f"stable runs {p['version']}")
        await _abort_steps(job, done)
    except ClusterError as exc:
        missing = [s for s in (f"stable runs {p['version']}", "weight 0%", "canary scaled to 0") if s not in done]
        return Outcome(False, f"Promoting stopped half-way: {exc}", details=_not_done(done, missing, str(exc)),
                       buttons=("abort",), facts=facts)
    return Outcome(True, f"`{cfg.stable_deployment}` runs `{p['version']}` ({result.status.line()}); the canary is "
                   "scaled to 0 and gets no traffic", buttons=("rollback",), facts=facts)


def _issuing(cert: dict) -> dict | None:
    return next((c for c in (cert.get("status") or {}).get("conditions") or [] if c.get("type") == "Issuing"), None)


async def _trigger(cluster: Cluster, name: str) -> dict:
    """Set Issuing=True as ``cmctl renew`` does, guarded by the resourceVersion just read."""
    cert = await cluster.get_certificate(name)
    meta = cert.get("metadata") or {}
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [c for c in (cert.get("status") or {}).get("conditions") or [] if c.get("type") != "Issuing"]
    conditions.append({"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
                       "message": "Certificate re-issuance manually triggered", "lastTransitionTime": stamp,
                       "observedGeneration": int(meta.get("generation") or 1)})
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": {"conditions": conditions}}
    return await cluster.patch_certificate_status(name, patch)


async def run_renew(job: Job) -> Outcome:
    cfg, cluster = job.config, job.cluster
    name = cfg.certificate
    await job.step(f"Trigger the re-issuance of `{name}` (Issuing=True, ManuallyTriggered)")
    before = cert_from(await retry(cluster.get_certificate, name))
    updated = await retry(_trigger, cluster, name)
    await job.step("Waiting for cert-manager to issue it")
    rv = str((updated.get("metadata") or {}).get("resourceVersion", ""))
    deadline = cfg.cert_timeout_seconds
    loop_clock = time.monotonic
    end = loop_clock() + deadline
    latest = updated
    while loop_clock() < end:
        try:
            async for obj in cluster.watch_certificate(name, timeout=max(1.0, end - loop_clock()),
                                                       resource_version=rv or None):
                latest = obj
                rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                verdict = _renewal_verdict(before, obj)
                if verdict is not None:
                    return verdict
        except ClusterError as exc:
            if isinstance(exc, NotFound):
                raise
            log.info("certificate watch ended (%s); reading it again", exc)
            await asyncio.sleep(0.2)
            latest = await retry(cluster.get_certificate, name)
            rv = str((latest.get("metadata") or {}).get("resourceVersion", ""))
            verdict = _renewal_verdict(before, latest)
            if verdict is not None:
                return verdict
    state = cert_from(latest)
    return Outcome(False, f"`{name}` was not re-issued within {deadline}s (revision still {state.revision})",
                   details=[f"Ready: {state.reason or 'unknown'} {state.message}".strip()],
                   facts={"revision": state.revision})


def _renewal_verdict(before: Any, obj: dict) -> Outcome | None:
    state = cert_from(obj)
    if state.revision > before.revision and (state.issuing is None or state.issuing.status != "True"):
        expires = state.not_after.strftime("%Y-%m-%d %H:%M UTC") if state.not_after else "unknown"
        return Outcome(True, f"`{state.name}` re-issued: revision {state.revision}, valid until {expires}",
                       facts={"revision": state.revision, "not_after": state.not_after.isoformat()
                              if state.not_after else ""})
    issuing = _issuing(obj)
    failed_at = parse_time((obj.get("status") or {}).get("lastFailureTime"))
    if issuing and issuing.get("status") == "False" and failed_at is not None \
            and (before.last_failure is None or failed_at > before.last_failure
                 or state.failed_attempts > before.failed_attempts):
        retry_at = backoff_until(state)
        details = [f"cert-manager: {issuing.get('reason', '')}: {issuing.get('message', '')}",
                   f"failed attempts in a row: {state.failed_attempts}, last at "
                   f"{failed_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"]
        if retry_at is not None:
            details.append(f"cert-manager backs off and tries again at {retry_at.strftime('%Y-%m-%d %H:%M UTC')}")
        return Outcome(False, f"`{state.name}` was not re-issued: the issuance failed", details=details,
                       facts={"revision": state.revision, "failed_attempts": state.failed_attempts})
    return None


RUNS: dict[str, Callable[[Job], Awaitable[Outcome]]] = {
    "deploy": run_deploy, "canary": run_canary, "shift": run_shift, "promote": run_promote,
    "abort": run_abort, "rollback": run_rollback, "renew": run_renew,
}


def jitter(low: float = 0.0, high: float = 0.02) -> float:
    return random.uniform(low, high)


# ---------------------------------------------------------------- argument checks shared by the commands


def check_version(text: str, config: Config, usage: str) -> str:
    """The version as typed, if it matches ``HELLO_VERSION_PATTERN``; else a :class:`UsageError` saying why."""
    import re

    from bot.errors import UsageError

    if not re.fullmatch(config.version_pattern, text):
        raise UsageError(f"`{text[:40]}` is not a version I can deploy: versions look like `v2` or `v2.1.0-rc1` "
                         f"(pattern `{config.version_pattern}`).", usage)
    return text


def check_percent(text: str, usage: str) -> int:
    """``10%`` -> 10; anything else, or outside 0-100, is a :class:`UsageError`."""
    import re

    from bot.errors import UsageError

    match = re.fullmatch(r"(\d{1,4})%", text)
    if not match:
        raise UsageError(f"`{text[:40]}` is not a percentage: write it like `10%`.", usage)
    value = int(match.group(1))
    if not 0 <= value <= 100:
        raise UsageError(f"{value}% is not a traffic share: use 0% to 100%.", usage)
    return value
