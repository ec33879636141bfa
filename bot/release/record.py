"""The release aggregate: one record per change, from its request to its end, and the lock object of a service
and environment.

A :class:`Record` is what was asked (the :class:`bot.release.actions.Change`, who, where, why), its plan (the
steps, computed once when it is asked for, shown in the approval message and carried out after approval),
its decisions (approvals, who approved, when), its progress (each step's state, the driver and its heartbeat,
a lasting problem), its outcome and whether its message shows how it ended (``shown``). Its state is the one
lifecycle of :mod:`bot.release.lifecycle`; it moves only by :meth:`Record.move`. The repository that stores
records is :mod:`bot.release.records`.

The one-change-at-a-time lock of a service and environment is a small object of its own (:class:`Lock`):
the id of the record that holds it and the ids queued behind it. The lock names its holder; whether the
holder still holds it is its record's business (pending and not expired, or running and advanced). The lock
moves from a record to another only after the first one's record has left pending and running (or never got
there), and a record becomes pending only after the lock names it: so a compare-and-swap of a record from
pending to running is always a change by the lock's holder.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.target import Target
from bot.core.text import escape
from bot.core.times import iso, parse_time
from bot.release.actions import Change
from bot.release.lifecycle import PENDING, QUEUED, Event, State, transition
from bot.release.plan import ChangeParams, Outcome, Step, StepState, steps_for

if TYPE_CHECKING:
    from bot.core.config import Config

FORMAT = 3  # requests and releases in one record (2: a request object and a release ConfigMap; 1: one document)
# What the driver of a release writes; everything else is the request's and its decisions'
PROGRESS = ("steps", "driver", "heartbeat", "problem", "problem_since", "outcome", "began")


def at(text: str) -> datetime:
    """A stored time of a record; an unreadable one counts as long past."""
    return parse_time(text) or datetime.min.replace(tzinfo=UTC)


@dataclass
class Record:
    """One release, as stored in the cluster: the request, its plan, its decisions, progress and outcome."""

    id: str
    change: Change
    requester: str
    channel: str
    created: str  # when it was asked for
    expires: str  # when its approval expires (counted from when it opens)
    state: State = PENDING
    steps: list[Step] = field(default_factory=list)  # the plan, computed once when asked for
    ts: str = ""  # its one message
    approver: str = ""
    decided: str = ""
    finished: str = ""
    headline: str = ""  # how it ended, in one line
    token: str = ""  # set by whoever won the pending -> running transition
    needed: int = 1  # distinct approvers it needs (the environment's ``approvals``; 2 under break-glass)
    approvals: list[str] = field(default_factory=list)  # who approved so far, in order
    break_glass: str = ""  # why it needs break-glass (the freeze in force when it was asked), else ""
    began: str = ""  # when its driver first took it up
    driver: str = ""  # the replica advancing it
    heartbeat: str = ""  # when its driver last said it is alive
    problem: str = ""  # a lasting problem (the cluster unreachable), shown in its message
    problem_since: str = ""
    outcome: Outcome | None = None
    reported: bool = False  # its outcome is audited (set with the end of a run, in the same write)
    shown: bool = False  # Slack took the edit that shows how it ended
    format: int = FORMAT

    # ------------------------------------------------------------------ stored form
    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["change"] = Change(**data["change"])
        data["state"] = State(data.get("state", PENDING))
        data["steps"] = [Step.from_dict(s) for s in data.get("steps") or []]
        data["outcome"] = Outcome.from_dict(data["outcome"]) if data.get("outcome") else None
        return cls(**data)

    # ------------------------------------------------------------------ the lifecycle
    def move(self, event: Event, now: datetime, headline: str = "") -> None:
        """Apply ``event`` (:func:`bot.release.lifecycle.transition`: raises on an illegal move) and its times."""
        self.state = transition(self.state, event)
        moment = iso(now)
        if event in (Event.APPROVE, Event.REJECT, Event.WITHDRAW, Event.EXPIRE):
            self.decided = moment
        if event == Event.CANCEL and not self.decided:
            self.decided = moment
        if event not in (Event.OPEN, Event.APPROVE):
            self.finished, self.headline = moment, headline or self.headline

    def expired(self, now: datetime) -> bool:
        return self.state == PENDING and now >= at(self.expires)

    @property
    def key(self) -> tuple[str, str]:
        """The lock it takes: one change at a time per service and environment."""
        return self.change.service, self.change.environment

    # ------------------------------------------------------------------ what it is
    @property
    def action(self) -> str:
        return self.change.action

    @property
    def label(self) -> str:
        return self.change.label

    @property
    def summary(self) -> str:
        return self.change.summary

    @property
    def params(self) -> ChangeParams:
        return self.change.params

    @property
    def reason(self) -> str:
        return self.change.reason

    @property
    def service(self) -> str:
        return self.change.service

    @property
    def environment(self) -> str:
        return self.change.environment

    @property
    def where(self) -> str:
        """"greeter in production", or "" for the one service of a configuration without a catalogue."""
        return f"{self.service} in {self.environment}" if self.service else ""

    @property
    def approved_so_far(self) -> str:
        """"1 of 2 approvals: <@U2>" while it waits for more approvers ("" when it needs one)."""
        if self.needed <= 1:
            return ""
        who = ", ".join(f"<@{u}>" for u in self.approvals) or "nobody yet"
        return f"{len(self.approvals)} of {self.needed} approvals: {who}"

    def what(self) -> str:
        return f"*{self.change.label}* {escape(self.change.summary)}"

    def change_cause(self) -> str:
        """The ``kubernetes.io/change-cause`` its changes carry: what ``kubectl rollout history`` shows."""
        return (f"hello-chatops {self.label.lower()} {self.summary} (request {self.id} by {self.requester}, "
                f"approved by {self.approver or 'nobody'})")

    # ------------------------------------------------------------------ its progress
    @property
    def current(self) -> Step | None:
        """The first step not done yet (``None`` once every step is done)."""
        return next((s for s in self.steps if s.state != StepState.DONE), None)

    def running_line(self) -> str:
        """``*Deploy* helloworld: v1 → v2 — step 2/2: Rolling out · request `id``` (mrkdwn, escaped)."""
        step = self.current
        where = (f"step {self.steps.index(step) + 1}/{len(self.steps)}: {escape(step.title)}"
                 if step is not None else "reporting")
        return f"*{escape(self.label)}* {escape(self.summary)} — {where} · request `{self.id}`"

    def take_decisions(self, stored: Record) -> None:
        """A person's Continue / Abort is written by whichever replica got the click: keep it."""
        for mine, theirs in zip(self.steps, stored.steps, strict=False):
            if mine.waiting and theirs.decision and not mine.decision and theirs.waiting == mine.waiting:
                mine.decision, mine.decided_by = theirs.decision, theirs.decided_by

    def take_progress(self, driven: Record) -> None:
        """The progress its driver has in memory (the rest stays as stored: the request and its decisions)."""
        for name in PROGRESS:
            setattr(self, name, getattr(driven, name))


def request_record(change: Change, requester: str, channel: str, config: Config, now: datetime, *, needed: int = 1,
                   break_glass: str = "") -> Record:
    """A new request of ``change`` (queued: it holds nothing until admitted), with its plan computed once."""
    return Record(
        id=uuid.uuid4().hex[:10], change=change, requester=requester, channel=channel,
        created=iso(now), expires=iso(now + timedelta(seconds=config.approval_ttl_seconds)),
        state=QUEUED, needed=needed, break_glass=break_glass,
        steps=steps_for(change.action, change.params, config),  # the plan, once: shown, approved, carried out
    )


def named(change: Change, target: Target) -> Change:
    """``change`` for ``target``: with a catalogue, its service and environment, and its summary says them."""
    if target.named:
        config = target.config
        change.service, change.environment = target.names
        summary = change.summary  # "greeter: v1 → v2" says the service's Deployment; said once is enough
        if summary.startswith(f"{config.stable_deployment}: "):
            summary = summary[len(config.stable_deployment) + 2:]
        change.summary = f"{target.service.name} ({target.environment.name}): {summary}"
    return change


@dataclass
class Lock:
    """The lock of one service and environment: who holds it and who waits, in order."""

    holder: str = ""
    queue: list[str] = field(default_factory=list)
    #: Who asked for each queued request (HELLO_QUEUE_PER_PERSON is counted from the lock alone); a lock stored
    #: by an earlier version has none for its queue: those requests' records say.
    who: dict[str, str] = field(default_factory=dict)

    def place(self, request_id: str) -> int:
        """1 for the first in line (0: not queued)."""
        return self.queue.index(request_id) + 1 if request_id in self.queue else 0


_UNSAFE = re.compile(r"[^a-z0-9-]+")


def lock_name(prefix: str, key: tuple[str, str]) -> str:
    """The lock's ConfigMap: ``<prefix>-lock`` for the one service, else ``<prefix>-lock-<service>-<env>``."""
    if not any(key):
        return f"{prefix}-lock"
    words = "-".join(_UNSAFE.sub("-", part.lower()).strip("-") for part in key)
    digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:8]  # names that clean up alike stay apart
    return f"{prefix}-lock-{words[:180]}-{digest}"


def seat(lock: Lock, request_id: str) -> None:
    if not lock.holder:
        lock.holder = request_id


def enqueue(lock: Lock, request_id: str) -> None:
    if request_id not in lock.queue and lock.holder != request_id:
        lock.queue.append(request_id)


def leave(lock: Lock, request_id: str) -> None:
    lock.queue = [q for q in lock.queue if q != request_id]


def lock_from(text: str | None) -> Lock:
    """The lock as stored; an unreadable one is taken as free."""
    if not text:
        return Lock()
    data: Any = json.loads(text)
    queue = [str(q) for q in data.get("queue") or []]
    who = {str(q): str(w) for q, w in (data.get("who") or {}).items() if q in queue}
    return Lock(holder=str(data.get("holder") or ""), queue=queue, who=who)


__all__ = ["FORMAT", "QUEUED", "Lock", "Record", "at", "enqueue", "leave", "lock_from", "lock_name", "named",
           "request_record", "seat"]
