"""Promotion between environments: what runs in the source environment, whether it has soaked there, and
the change that deploys that exact image (by digest when the cluster reports one) in the target environment.

`/hello promote` (:mod:`commands.promote`) reads :func:`running` and :func:`soak`, then asks for
:func:`plan_promote_environment`; the change is carried out as a deploy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cluster.deployments import track_from
from bot.cluster.kube import Cluster
from bot.core.config import Config
from bot.core.errors import CommandError
from bot.core.text import foreign
from bot.core.times import parse_time
from bot.release.actions import DEPLOYMENT, LABELS, POD_TEMPLATE_HASH, REVISION, Change, read_track, target
from bot.release.plan import ChangeParams

IMAGE_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")  # the end of a pod's containerStatuses[].imageID
PUT_IN_PLACE = ("Deploy", "EnvPromote", "Promote", "Rollback")  # verbs whose success sets the stable version


@dataclass(frozen=True)
class Running:
    """What a service's stable Deployment runs in one environment, as a promotion reads it."""

    deployment: str
    image: str
    version: str
    digest: str  # "sha256:<hex>" every ready pod of the current ReplicaSet reports, else ""
    digest_note: str  # where the digest comes from, or why there is none
    replicaset: str  # the current ReplicaSet ("" if none was found)
    created: datetime | None  # its creationTimestamp
    rolled_out: bool
    ready: int
    desired: int

    @property
    def pinned(self) -> str:
        """The image to run elsewhere: this tag pinned to the digest (``repo:v2@sha256:…``), else the image as is."""
        return f"{self.image.split('@', 1)[0]}@{self.digest}" if self.digest else self.image


def digest_of(image_id: str) -> str:
    """``docker-pullable://repo@sha256:<hex>`` or ``repo@sha256:<hex>`` -> ``sha256:<hex>``; else "".

    A bare ``sha256:<hex>`` (docker's id of a locally built image) is no registry digest: "".
    """
    match = IMAGE_DIGEST.search(image_id.strip())
    return match.group(1) if match else ""


def _ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def running(cluster: Cluster, config: Config) -> Running:
    """The stable Deployment's image, and its digest when every ready pod of the current ReplicaSet reports one."""
    deploy = await cluster.deployments.get(config.stable_deployment)
    stable = track_from("stable", deploy, config.container)
    meta = deploy.get("metadata") or {}
    labels = ((deploy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    revision = str((meta.get("annotations") or {}).get(REVISION, ""))
    current: dict[str, Any] = {}
    for rs in await cluster.replicasets.list(selector):
        rs_meta = rs.get("metadata") or {}
        owned = any(ref.get("uid") == meta.get("uid") for ref in rs_meta.get("ownerReferences") or [])
        if owned and revision and str((rs_meta.get("annotations") or {}).get(REVISION, "")) == revision:
            current = rs_meta
    name = str(current.get("name", ""))
    digest, note = "", f"no ReplicaSet of `{stable.deployment}` has its revision {revision or '(none)'}"
    template_hash = (current.get("labels") or {}).get(POD_TEMPLATE_HASH)
    if template_hash:
        pods = [p for p in await cluster.pods.list(f"{selector},{POD_TEMPLATE_HASH}={template_hash}") if _ready(p)]
        found = set()
        for pod in pods:
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            status = next((c for c in statuses if c.get("name") == config.container), {})
            found.add(digest_of(str(status.get("imageID") or "")))
        if not pods:
            note = f"ReplicaSet `{name}` has no ready pod"
        elif "" in found:
            note = f"a ready pod of ReplicaSet `{name}` reports no image digest"
        elif len(found) > 1:
            note = f"the ready pods of ReplicaSet `{name}` report {len(found)} different digests"
        else:
            digest = found.pop()
            note = f"the {len(pods)} ready pod(s) of ReplicaSet `{name}` report it"
    return Running(deployment=stable.deployment, image=stable.image, version=stable.version, digest=digest,
                   digest_note=note, replicaset=name, created=parse_time(current.get("creationTimestamp")),
                   rolled_out=stable.rolled_out, ready=stable.ready, desired=stable.desired)


def clock_time(moment: datetime, now: datetime) -> str:
    """``14:32 UTC`` (rounded up to the minute), with the date when it is not ``now``'s day."""
    moment = moment.astimezone(UTC)
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    same_day = moment.date() == now.astimezone(UTC).date()
    return moment.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Soak:
    """How long a version has run in an environment, and what went wrong with it there since."""

    version: str
    environment: str
    minutes: float  # the service's soak_minutes
    now: datetime
    start: datetime | None  # when it was in place (None: unknown)
    since: str  # what ``start`` is, in words
    problems: tuple[str, ...] = ()  # failed releases and aborted canaries of the version since ``start``

    @property
    def ends(self) -> datetime | None:
        return None if self.start is None else self.start + timedelta(minutes=self.minutes)

    @property
    def soaked(self) -> bool:
        return self.ends is not None and self.now >= self.ends

    def line(self) -> str:
        """``v2 has run in staging for 12 min of 60; promotable at 14:32 UTC`` (or "... 75 min (soak: 60)")."""
        if self.start is None or self.ends is None:
            return f"`{self.version}` has no known start in {self.environment}"
        ran = max(0, math.floor((self.now - self.start).total_seconds() / 60))
        if self.soaked:
            return f"`{self.version}` has run in {self.environment} for {ran} min (soak: {self.minutes:g} min)"
        return (f"`{self.version}` has run in {self.environment} for {ran} min of {self.minutes:g}; "
                f"promotable at {clock_time(self.ends, self.now)}")


def soak(source: Running, entries: Iterable[Any], *, minutes: float, now: datetime, environment: str) -> Soak:
    """Judge ``source``'s version from its environment's audit entries (:class:`bot.release.audit.Entry`), pure.

    It is in place since the newest successful deploy, promotion or rollback when that one set this version,
    else since the current ReplicaSet was created. A failed release or an aborted canary of the version since
    then is a problem, whatever the time.
    """
    trail = sorted(entries, key=lambda e: e.at)
    placed = [e for e in trail if e.verb in PUT_IN_PLACE and e.phase == "Succeeded"]
    start, since = source.created, f"ReplicaSet `{source.replicaset}` was created"
    if placed and str(placed[-1].facts.get("version", "")) == source.version:
        start, since = placed[-1].at, f"its {LABELS.get(placed[-1].verb, placed[-1].verb).lower()} finished"
    problems = []
    for entry in trail if start is not None else []:
        if entry.at < start or str(entry.facts.get("version", "")) != source.version:
            continue
        when = f"at {clock_time(entry.at, now)} (request `{entry.request_id}`)"
        if entry.phase == "Failed":
            what = "canary" if entry.verb == "Canary" else LABELS.get(entry.verb, entry.verb).lower()
            note = f": {foreign(entry.note, 120)}" if entry.note else ""
            problems.append(f"a {what} of `{source.version}` failed in {environment} {when}{note}")
        elif entry.verb == "Abort" and entry.phase == "Succeeded":
            problems.append(f"a canary of `{source.version}` was aborted in {environment} {when}")
    return Soak(version=source.version, environment=environment, minutes=minutes, now=now, start=start,
                since=since, problems=tuple(problems))


async def plan_promote_environment(cluster: Cluster, config: Config, source: Running, *, source_env: str,
                                   checked: Iterable[str] = (), reason: str = "") -> Change:
    """Deploy, in ``config``'s environment, the exact image ``source`` runs in ``source_env`` (by digest if known)."""
    stable = await read_track(cluster, config.stable_deployment, config, "stable")
    image = source.pinned
    if stable.image == image:
        raise CommandError(f"`{stable.deployment}` already runs `{foreign(image, 200)}` "
                           f"({stable.ready}/{stable.desired} ready), the image that runs in {source_env}.")
    how = (f"pinned to the digest `{source.digest}` ({source.digest_note})" if source.digest
           else f"by its reference, not by digest: {source.digest_note}")
    return Change(
        command="promote", action="deploy", verb="EnvPromote",
        summary=f"{stable.deployment}: {stable.version or 'nothing'} → {source.version} (from {source_env})",
        details=[f"image `{foreign(stable.image or 'none', 200)}` → `{foreign(image, 200)}`",
                 f"the image of `{source.deployment}` in {source_env}, {how}", *checked,
                 f"rolling update of {stable.desired} replica(s)"],
        params=ChangeParams(version=source.version, image=image, from_version=stable.version,
                            from_image=stable.image),
        target=target(DEPLOYMENT, stable.deployment), reason=reason,
    )
