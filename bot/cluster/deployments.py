"""The one model of a Deployment: its rollout (rolled out, stuck, or still going) and the track it serves.

:func:`status_of` reads a Deployment the way ``kubectl rollout status`` does: the controller must
have observed the latest generation, every desired replica must be updated, no old replica may be
left, and every updated replica must be available. ``Progressing=False`` (with reason
``ProgressDeadlineExceeded``) on the observed spec means the rollout is stuck. Status warnings and the
release engine's rollout step both read a Deployment through it. :func:`track_from` gives the
:class:`Track` that ``/hello status`` shows (its version, replicas, conditions and rollout).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.cluster.client import Condition


def image_version(image: str) -> str:
    """``registry/helloworld:v2.1`` -> ``v2.1``; an image without a tag reports ``latest``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


@dataclass(frozen=True)
class RolloutStatus:
    """One reading of a Deployment's rollout."""

    name: str
    version: str
    desired: int
    updated: int
    ready: int
    available: int
    total: int  # pods of every revision (status.replicas)
    observed: bool  # the controller has seen the latest spec
    stuck_reason: str = ""  # Progressing=False reason, e.g. ProgressDeadlineExceeded
    stuck_message: str = ""
    resource_version: str = ""

    @property
    def done(self) -> bool:
        return (self.observed and self.updated >= self.desired and self.total <= self.updated
                and self.available >= self.updated)

    @property
    def stuck(self) -> bool:
        return bool(self.stuck_reason)

    @property
    def signature(self) -> tuple[int, ...]:
        """What counts as progress: any change in these numbers."""
        return (int(self.observed), self.updated, self.ready, self.available, self.total)

    def line(self) -> str:
        return f"{self.updated}/{self.desired} updated · {self.ready}/{self.desired} ready"


def status_of(deploy: dict, container: str = "") -> RolloutStatus:
    meta, spec, status = deploy.get("metadata") or {}, deploy.get("spec") or {}, deploy.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == container), containers[0] if containers else {})
    progressing = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
    observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    # As `kubectl rollout status`: a condition about an older spec says nothing about this rollout.
    stuck = observed and progressing is not None and progressing.get("status") == "False"
    replicas = spec.get("replicas")
    return RolloutStatus(
        name=str(meta.get("name", "")),
        version=image_version(chosen.get("image", "")) if chosen.get("image") else "",
        desired=1 if replicas is None else int(replicas),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        total=int(status.get("replicas") or 0),
        observed=observed,
        stuck_reason=str(progressing.get("reason") or "ProgressDeadlineExceeded") if stuck else "",
        stuck_message=str(progressing.get("message") or "") if stuck else "",
        resource_version=str(meta.get("resourceVersion", "")),
    )


@dataclass(frozen=True)
class Track:
    """One Deployment of the service (stable or canary) as the bot sees it."""

    name: str  # "stable" | "canary"
    deployment: str
    image: str
    version: str
    desired: int
    updated: int
    ready: int
    available: int
    generation: int
    observed_generation: int
    revision: str
    conditions: tuple[Condition, ...] = ()
    rollout: RolloutStatus | None = None  # the one model of "rolled out / stuck" (status_of)

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def stuck(self) -> bool:
        return self.rollout is not None and self.rollout.stuck

    @property
    def rolled_out(self) -> bool:
        return self.rollout is not None and self.rollout.done


def _container(deploy: dict, container: str) -> dict:
    containers = deploy.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    for c in containers:
        if c.get("name") == container:
            return c
    return containers[0] if containers else {}


def track_from(name: str, deploy: dict, container: str) -> Track:
    """The track ``name`` ("stable" or "canary") that the Deployment ``deploy`` serves."""
    meta, spec, status = deploy.get("metadata", {}), deploy.get("spec", {}), deploy.get("status") or {}
    image = _container(deploy, container).get("image", "")
    return Track(
        name=name,
        deployment=meta.get("name", ""),
        image=image,
        version=image_version(image) if image else "",
        desired=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        revision=str((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "")),
        conditions=tuple(Condition.of(c) for c in status.get("conditions") or []),
        rollout=status_of(deploy, container),
    )
