"""Planning a change: read the cluster at request time and describe what will change, from what to what.

Each ``plan_*`` returns a :class:`Change` (what, from -> to, in words for the approval message, and the
typed parameters its release is planned from, see :func:`bot.release.plan.steps_for`); it refuses
(``CommandError``) what would be pointless or unsafe (nothing to roll back to, raising the canary
weight with no ready pod, ...). The steps that carry a change out are in :mod:`bot.release.steps`.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.cluster.certificates import cert_from
from bot.cluster.deployments import Track, image_version, track_from
from bot.cluster.kube import Cluster
from bot.core.config import Config
from bot.core.errors import CommandError
from bot.core.text import foreign
from bot.core.times import iso
from bot.release.plan import ChangeParams

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
DEPLOYMENT = ("apps/v1", "Deployment")
ROUTE_KINDS = {"Mapping": ("getambassador.io/v3alpha1", "Mapping"),
               "HTTPRoute": ("gateway.networking.k8s.io/v1", "HTTPRoute")}
CERTIFICATE = ("cert-manager.io/v1", "Certificate")


# ---------------------------------------------------------------- data


@dataclass
class Change:
    """A change as requested and approved: stored with the request, run after approval."""

    command: str  # the sub-command module that runs it ("deploy", "canary", ...)
    action: str  # deploy | canary | shift | promote | abort | rollback | renew
    verb: str  # for audit reasons: Deploy, EnvPromote, Canary, Promote, Abort, Rollback, CertRenew
    summary: str  # one line: what, from -> to
    details: list[str] = field(default_factory=list)
    params: ChangeParams = field(default_factory=ChangeParams)
    target: dict[str, str] = field(default_factory=dict)  # apiVersion, kind, name of the object changed
    needs_approval: bool = True
    reason: str = ""  # why, as the requester gave it (free text: escape it where it is shown)
    service: str = ""  # the catalogue's service and environment it changes ("": the one service)
    environment: str = ""

    def __post_init__(self) -> None:
        self.params = ChangeParams.from_dict(self.params)  # stored requests hold plain JSON

    @property
    def label(self) -> str:
        """How people call this change: "Deploy", "Canary", "Certificate renewal"..."""
        return LABELS.get(self.verb, self.verb)


LABELS = {"CertRenew": "Certificate renewal", "Promote": "Canary promotion", "Abort": "Canary abort",
          "Canary": "Canary", "Deploy": "Deploy", "Rollback": "Rollback",
          "EnvPromote": "Promotion between environments", "LoadTest": "Load test"}


def target(kind: tuple[str, str], name: str) -> dict[str, str]:
    return {"apiVersion": kind[0], "kind": kind[1], "name": name}


def image_for(config: Config, version: str) -> str:
    return f"{config.image_repository}:{version}"


# ---------------------------------------------------------------- reading


async def read_track(cluster: Cluster, name: str, config: Config, role: str) -> Track:
    """One Deployment of the service as a :class:`~bot.cluster.deployments.Track` (version, image, replicas)."""
    return track_from(role, await cluster.deployments.get(name), config.container)


@dataclass(frozen=True)
class Revision:
    number: int
    image: str
    version: str
    replicaset: str
    template: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # its pod template


async def revisions(cluster: Cluster, name: str, config: Config) -> tuple[int, list[Revision]]:
    """The Deployment's current revision and its ReplicaSet history, oldest first."""
    deploy = await cluster.deployments.get(name)
    meta = deploy.get("metadata") or {}
    labels = ((deploy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    sets = await cluster.replicasets.list(selector)
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


async def plan_deploy(cluster: Cluster, config: Config, version: str, *, reason: str = "") -> Change:
    stable = await read_track(cluster, config.stable_deployment, config, "stable")
    image = image_for(config, version)
    if stable.image == image:
        raise CommandError(f"`{stable.deployment}` already runs `{version}` ({stable.ready}/{stable.desired} ready).")
    return Change(
        command="deploy", action="deploy", verb="Deploy",
        summary=f"{stable.deployment}: {stable.version or 'nothing'} → {version}",
        details=[f"image `{stable.image or 'none'}` → `{image}`",
                 f"rolling update of {stable.desired} replica(s)"],
        params=ChangeParams(version=version, image=image, from_version=stable.version, from_image=stable.image),
        target=target(DEPLOYMENT, stable.deployment), reason=reason,
    )


async def plan_canary(cluster: Cluster, config: Config, version: str, percent: int | None = None, *,
                      reason: str = "") -> Change:
    """A canary of ``version``: at ``percent`` (manual, no analysis), or analysed through ``HELLO_CANARY_STEPS``."""
    canary = await read_track(cluster, config.canary_deployment, config, "canary")
    route = await cluster.traffic.canary_route()
    image = image_for(config, version)
    current = route.weight or 0
    details = [f"`{canary.deployment}` image `{canary.image or 'none'}` → `{image}`",
               f"scale `{canary.deployment}` {canary.desired} → {config.canary_replicas} replica(s), "
               "wait until ready"]
    params = ChangeParams(version=version, image=image, from_version=canary.version, from_weight=current,
                          replicas=config.canary_replicas)
    if percent is None:
        steps = list(config.canary_steps)
        walk = " → ".join(f"{w}%" for w in steps)
        gates = [w for w in config.canary_gates if w in steps]
        details.append(f"{route.label} weight {current}% → {walk}, each step analysed against stable "
                       f"every {int(config.analysis_interval_seconds)} s before the next")
        if gates:
            details.append("an approver's click before " + ", ".join(f"{g}%" for g in gates))
        details.append("a failing canary is " + ("aborted (weight 0, scaled to 0)" if config.analysis_mode == "auto"
                                                else "paused for a person to abort or continue"))
        params.percent, params.analysed, params.steps, params.gates = steps[-1], True, tuple(steps), tuple(gates)
        summary = f"{canary.deployment}: {canary.version or 'none'} at {current}% → {version} at {walk}, analysed"
    else:
        details.append(f"{route.label} weight {current}% → {percent}%")
        details.append("analysis is off for a canary at a fixed share: watch it with `/hello status`")
        params.percent, params.analysed = percent, False
        summary = f"{canary.deployment}: {canary.version or 'none'} at {current}% → {version} at {percent}%"
    return Change(command="canary", action="canary", verb="Canary", summary=summary, details=details,
                  params=params, target=target(DEPLOYMENT, canary.deployment), reason=reason)


async def plan_shift(cluster: Cluster, config: Config, percent: int, *, reason: str = "") -> Change:
    canary = await read_track(cluster, config.canary_deployment, config, "canary")
    route = await cluster.traffic.canary_route()
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
        details=[f"{route.label} weight {current}% → {percent}% "
                 f"(`{canary.deployment}` {canary.ready}/{canary.desired} ready)"],
        params=ChangeParams(percent=percent, from_weight=current, version=canary.version),
        target=target(ROUTE_KINDS[route.kind], route.mapping), reason=reason,
    )


async def plan_promote(cluster: Cluster, config: Config, *, reason: str = "") -> Change:
    stable = await read_track(cluster, config.stable_deployment, config, "stable")
    canary = await read_track(cluster, config.canary_deployment, config, "canary")
    route = await cluster.traffic.canary_route()
    if canary.desired == 0 or canary.ready == 0:
        raise CommandError(f"There is no running canary to promote (`{canary.deployment}` "
                           f"{canary.ready}/{canary.desired} ready).")
    return Change(
        command="canary", action="promote", verb="Promote",
        summary=f"{stable.deployment}: {stable.version} → {canary.version} (promote the canary)",
        details=[f"rolling update of `{stable.deployment}` to `{canary.image}`",
                 f"then {route.label} weight {route.weight or 0}% → 0%",
                 f"and scale `{canary.deployment}` {canary.desired} → 0"],
        params=ChangeParams(version=canary.version, image=canary.image, from_version=stable.version,
                from_weight=route.weight or 0),
        target=target(DEPLOYMENT, stable.deployment), reason=reason,
    )


async def plan_abort(cluster: Cluster, config: Config, *, reason: str = "") -> Change:
    canary = await read_track(cluster, config.canary_deployment, config, "canary")
    route = await cluster.traffic.canary_route()
    weight = route.weight or 0
    if weight == 0 and canary.desired == 0:
        raise CommandError("There is no canary to abort: it gets no traffic and has no replicas.")
    return Change(
        command="canary", action="abort", verb="Abort",
        summary=f"{canary.deployment}: {canary.version} weight {weight}% → 0%, {canary.desired} → 0 replicas",
        details=[f"{route.label} weight {weight}% → 0%", f"scale `{canary.deployment}` to 0"],
        params=ChangeParams(version=canary.version, from_weight=weight, from_replicas=canary.desired),
        target=target(DEPLOYMENT, canary.deployment),
        needs_approval=config.abort_needs_approval, reason=reason,
    )


async def plan_rollback(cluster: Cluster, config: Config, *, reason: str = "") -> Change:
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
        params=ChangeParams(version=previous.version, image=previous.image, from_version=from_version,
                revision=previous.number, from_revision=current),
        target=target(DEPLOYMENT, config.stable_deployment), reason=reason,
    )


async def plan_loadtest(cluster: Cluster, config: Config, rps: int, seconds: int, tracks: tuple[str, ...], *,
                        reason: str = "") -> Change:
    """Load on each of ``tracks``' Services: refused for a track with no ready replica (nothing to load)."""
    details = []
    for track in tracks:
        name = config.stable_deployment if track == "stable" else config.canary_deployment
        read = await read_track(cluster, name, config, track)
        if read.ready == 0:
            raise CommandError(f"The {track} track has no ready replica (`{name}` {read.ready}/{read.desired} "
                               "ready): there is nothing to load. Nothing was changed.")
        details.append(f"`hey` at {rps} req/s for {seconds} s against Service `{name}` (`{read.version}`, "
                       f"{read.ready} ready), path `{config.loadtest_path}`")
    details.append("each in a Job of its own, deleted when the test ends; the traffic split is untouched")
    both = " and ".join(tracks)
    return Change(
        command="loadtest", action="loadtest", verb="LoadTest",
        summary=f"{config.stable_deployment}: {rps} req/s for {seconds} s to {both}",
        details=details, params=ChangeParams(rps=rps, seconds=seconds, tracks=tracks, path=config.loadtest_path),
        target=target(DEPLOYMENT, config.stable_deployment), reason=reason,
    )


def backoff_until(cert: Any) -> datetime | None:
    """When cert-manager retries a failed issuance: lastFailureTime + 1h × 2^(attempts-1), at most 32h."""
    if cert.last_failure is None or cert.failed_attempts <= 0:
        return None
    hours = min(2 ** (cert.failed_attempts - 1), 32)
    return cert.last_failure + timedelta(hours=hours)


async def plan_renew(cluster: Cluster, config: Config, *, reason: str = "") -> Change:
    cert = cert_from(await cluster.certificates.get())
    if cert.issuing is not None and cert.issuing.status == "True":
        raise CommandError(f"Certificate `{cert.name}` is already being issued ({foreign(cert.issuing.reason, 80)}): "
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
        params=ChangeParams(revision=cert.revision, not_after=iso(cert.not_after),
                failed_attempts=cert.failed_attempts,
                last_failure=iso(cert.last_failure)),
        target=target(CERTIFICATE, cert.name), reason=reason,
    )
