"""Plans as data: the steps a change is carried out by, their typed inputs and progress, and an outcome.

The steps come from the change's typed parameters (:func:`steps_for`, pure), once, when the change is asked
for: they are stored with its record (:class:`bot.release.record.Record`), shown in the approval message
before anyone clicks and carried out after approval by whichever replica leads. Every step is idempotent (it
re-reads the cluster and does only what is missing), so a step cut short by a crash is simply done again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from bot.core.config import Config


class StepKind(StrEnum):
    SET_IMAGE = "set_image"  # a Deployment's container image (and HELLO_VERSION)
    RESTORE_REVISION = "restore_revision"  # a revision's whole pod template, as `kubectl rollout undo`
    SCALE = "scale"  # a Deployment's replicas
    WAIT_READY = "wait_ready"  # follow a Deployment's rollout until it is complete, stuck or out of time
    SET_WEIGHT = "set_weight"  # the canary Mapping's weight
    CHECK_CANARY = "check_canary"  # the canary has a ready pod (before raising its weight)
    TRIGGER_ISSUANCE = "trigger_issuance"  # Issuing=True on the Certificate, as `cmctl renew` does
    WAIT_ISSUED = "wait_issued"  # follow the Certificate until re-issued or failed
    ANALYSE = "analyse"  # judge the canary against stable from Prometheus until it passes or fails
    GATE = "gate"  # wait for an approver's click before going on
    BAKE = "bake"  # watch the service's critical alerts for a while; one firing rolls the change back
    LOAD = "load"  # a load test: a Job running `hey` against each track's Service, until its end; its figures


class StepState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class ChangeParams:
    """What a change is about, as planned from the cluster at request time (typed; stored as JSON)."""

    version: str = ""  # the version it puts in place
    image: str = ""
    from_version: str = ""  # what ran before
    from_image: str = ""
    percent: int = 0  # canary: the share it ends at
    from_weight: int = 0
    replicas: int = 0  # canary: replicas while it runs
    from_replicas: int = 0
    revision: int = 0  # rollback: the revision to go back to; renewal: the Certificate's revision before
    from_revision: int = 0
    analysed: bool = False  # canary: walk ``steps`` with analysis
    steps: tuple[int, ...] = ()
    gates: tuple[int, ...] = ()
    not_after: str = ""  # renewal: the Certificate as it was
    failed_attempts: int = 0
    last_failure: str = ""
    rps: int = 0  # load test: requests per second to each track, for ``seconds``, at ``path``
    seconds: int = 0
    tracks: tuple[str, ...] = ()  # ... "stable", "canary"
    path: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | ChangeParams) -> ChangeParams:
        if isinstance(data, ChangeParams):
            return data
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        for name in ("steps", "gates"):
            if name in values:
                values[name] = tuple(int(x) for x in values[name] or ())
        if "tracks" in values:
            values["tracks"] = tuple(str(x) for x in values["tracks"] or ())
        return cls(**values)

    def facts(self) -> dict[str, Any]:
        """The set values, for the audit record."""
        return {k: v for k, v in asdict(self).items() if v not in ("", 0, False, (), [])}


@dataclass
class Step:
    """One step of a plan: what to do (typed inputs), and what happened (state, times, note)."""

    kind: StepKind
    title: str  # how the step reads in chat
    target: str  # the object it works on (Deployment, Mapping or Certificate name)
    image: str = ""
    version: str = ""
    replicas: int = 0
    percent: int = 0
    revision: int = 0  # the Certificate's revision before the renewal
    failed_attempts: int = 0  # ... and its failed issuance attempts then
    last_failure: str = ""  # ... and its lastFailureTime then
    state: StepState = StepState.WAITING
    started: str = ""
    finished: str = ""
    note: str = ""  # the result in one line (a rollout's counts, a certificate's new expiry, an error)
    details: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what it saw, for the audit record (a new revision)
    runs: int = 0  # how many times the step was begun (more than once after a take-over)
    index: int = 0  # analysis: which traffic step (1-based) of how many
    total: int = 0
    looks: int = 0  # analysis: checks made; inconclusive ones in a row
    inconclusive: int = 0
    verdict: str = ""  # analysis: the last verdict, in one line
    next_check: str = ""
    waiting: str = ""  # why the step waits for a person ("" when it does not)
    decision: str = ""  # what the person decided: continue | abort
    decided_by: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["kind"] = StepKind(values["kind"])
        values["state"] = StepState(values.get("state", StepState.WAITING))
        return cls(**values)


@dataclass
class Outcome:
    """How a release ended, for its message, the audit trail and the follow-up buttons.

    ``headline`` and ``details`` are mrkdwn without mentions or links: rendering escapes them again
    (idempotently); text from the cluster in them went through :func:`bot.core.text.foreign`.
    """

    ok: bool
    headline: str
    details: list[str] = field(default_factory=list)
    buttons: tuple[str, ...] = ()  # follow-ups offered: "rollback", "promote", "abort"
    facts: dict[str, Any] = field(default_factory=dict)  # for the audit record (versions, notAfter, ...)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(ok=bool(data["ok"]), headline=str(data["headline"]), details=list(data.get("details") or []),
                   buttons=tuple(data.get("buttons") or ()), facts=dict(data.get("facts") or {}))


# ---------------------------------------------------------------------------------- plans


def steps_for(action: str, params: ChangeParams, config: Config) -> list[Step]:
    """The plan of a change, from its parameters (pure)."""
    stable, canary, mapping = config.stable_deployment, config.canary_deployment, config.canary_mapping
    image, version = params.image, params.version
    if action == "deploy":
        return [Step(StepKind.SET_IMAGE, f"Set `{stable}` to `{image}`", stable, image=image, version=version),
                Step(StepKind.WAIT_READY, "Rolling out", stable), *bake(action, config)]
    if action == "rollback":
        return [Step(StepKind.RESTORE_REVISION, f"Set `{stable}` back to `{image}` (revision "
                     f"{params.revision})", stable, image=image, version=version, revision=params.revision),
                Step(StepKind.WAIT_READY, "Rolling out", stable), *bake(action, config)]
    if action == "canary":
        replicas, percent = params.replicas or 1, params.percent
        start = [Step(StepKind.SET_IMAGE, f"Set `{canary}` to `{image}`", canary, image=image, version=version),
                 Step(StepKind.SCALE, f"Scale `{canary}` to {replicas}", canary, replicas=replicas),
                 Step(StepKind.WAIT_READY, f"Waiting for `{canary}` to be ready", canary)]
        if not params.analysed:
            return [*start, Step(StepKind.SET_WEIGHT, f"Set the canary weight to {percent}%", mapping,
                                 percent=percent)]
        weights, gates = list(params.steps), set(params.gates)
        for index, weight in enumerate(weights, 1):
            if weight in gates:
                start.append(Step(StepKind.GATE, f"Wait for an approver before {weight}%", mapping, percent=weight,
                                  index=index, total=len(weights)))
            start.append(Step(StepKind.SET_WEIGHT, f"Set the canary weight to {weight}%", mapping, percent=weight))
            start.append(Step(StepKind.ANALYSE, f"Analyse the canary at {weight}% (step {index}/{len(weights)})",
                              mapping, percent=weight, index=index, total=len(weights)))
        return start
    if action == "shift":
        percent = params.percent
        steps = []
        if percent > params.from_weight:
            steps.append(Step(StepKind.CHECK_CANARY, f"Check that `{canary}` has a ready pod", canary))
        steps.append(Step(StepKind.SET_WEIGHT, f"Set the canary weight to {percent}%", mapping, percent=percent))
        return steps
    if action == "abort":
        return retire_steps(config)
    if action == "promote":
        return [Step(StepKind.SET_IMAGE, f"Set `{stable}` to `{image}`", stable, image=image, version=version),
                Step(StepKind.WAIT_READY, "Rolling out the stable track", stable),
                *retire_steps(config), *bake(action, config)]
    if action == "renew":
        name = config.certificate
        before = dict(revision=params.revision, failed_attempts=params.failed_attempts,
                      last_failure=params.last_failure)
        return [Step(StepKind.TRIGGER_ISSUANCE, f"Trigger the re-issuance of `{name}` (Issuing=True, "
                     "ManuallyTriggered)", name, **before),
                Step(StepKind.WAIT_ISSUED, "Waiting for cert-manager to issue it", name, **before)]
    if action == "loadtest":
        each = " and ".join(f"`{stable if t == 'stable' else canary}`" for t in params.tracks)
        return [Step(StepKind.LOAD, f"Load {each} with {params.rps} req/s each for {params.seconds} s "
                     f"(`{params.path}`)", stable)]
    raise ValueError(f"no plan for the action {action!r}")


def bake(action: str, config: Config) -> list[Step]:
    """The bake window after a deploy, a promotion or a rollback, when Alertmanager is configured."""
    if not config.alertmanager_url or config.bake_minutes <= 0:
        return []
    minutes = f"{config.bake_minutes:g}"
    if action == "rollback" or not config.auto_rollback:
        then = "a critical alert is reported (no automatic rollback" + (" after a rollback)" if action == "rollback"
                                                                       else ": HELLO_AUTO_ROLLBACK=false)")
    else:
        then = "a critical alert rolls it back"
    return [Step(StepKind.BAKE, f"Bake for {minutes} min: {then}", config.stable_deployment)]


def retire_steps(config: Config) -> list[Step]:
    canary = config.canary_deployment
    return [Step(StepKind.SET_WEIGHT, "Set the canary weight to 0%", config.canary_mapping, percent=0),
            Step(StepKind.SCALE, f"Scale `{canary}` to 0", canary, replicas=0)]
