"""Delivery metrics from the audit trail: how often changes reach users, how often they fail, how fast.

Pure: the audit entries (:class:`bot.release.audit.Entry`, or anything with its attributes) come in,
figures come out; nothing here reads the cluster or the clock. What the figures mean:

- **deployments**: deploys and canary promotions that succeeded in the range (a deploy rolled back
  later still was one), per week and per day;
- **change failure rate**: of the changes that ended in the range (deploys, promotions, canaries of a
  new version; not weight shifts, aborts, rollbacks or certificate renewals), the share that failed: the
  release failed (a rollout that failed, a canary aborted by its analysis, a critical alert in the bake
  window), or the next change of the same track was an approved rollback (after a deploy or a
  promotion) or an abort (after a canary);
- **time to restore**: from a failure (the failed release's end, or the rollback or abort being asked
  for) to the next change of that track that succeeded. Failures the bot undid itself (a canary aborted
  by its analysis, a deploy rolled back by its bake window) are counted apart: the trail does not say
  when the trouble began, so they have no duration;
- **request to live**: from a deploy's or a promotion's request to its success (approval wait, rollout
  and bake window included).

Durations are medians with their counts. The figures cover what the trail still holds
(:attr:`Delivery.covered_since`): Kubernetes Events expire (one hour by default); the JSON audit log
lines are the durable record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from bot.core.audit_entry import AuditEntry
from bot.core.durations import duration

LIVE = ("Deploy", "Promote", "EnvPromote")  # a version in front of every user
UNDO = {"stable": "Rollback", "canary": "Abort"}
ENDS = ("Succeeded", "Failed", "Superseded")
RANGES = {"7d": 7, "30d": 30, "90d": 90}


@dataclass(frozen=True)
class Median:
    seconds: float | None  # None: nothing to measure
    count: int


@dataclass(frozen=True)
class Release:
    """One change as the trail tells it: asked for, approved, ended."""

    request_id: str
    verb: str
    action: str
    track: str  # stable | canary | "" (a certificate)
    requested: datetime | None
    approved: datetime | None
    ended: datetime | None  # None: still running
    phase: str  # Succeeded | Failed | Superseded | "" (running, or never approved)
    version: str = ""
    facts: dict[str, Any] = field(default_factory=dict, compare=False)
    where: tuple[str, str] = ("", "")  # the service and environment (several services: a track is theirs)

    @property
    def first(self) -> datetime:
        return self.requested or self.approved or self.ended  # type: ignore[return-value]

    @property
    def is_change(self) -> bool:
        """A change the failure rate is about: a deploy, a promotion, a canary of a new version."""
        return self.verb in LIVE or self.action == "canary"


@dataclass(frozen=True)
class Outcome:
    """How a change that ended in the range went (what the failure rate and the restore time are made of)."""

    release: Release
    failed: bool
    how: str = ""  # failed | rolled back | aborted | rolled back by the bot | aborted by the bot
    failed_at: datetime | None = None
    restored_at: datetime | None = None
    automatic: bool = False  # the bot undid it itself, in the same release


@dataclass(frozen=True)
class Day:
    day: date
    deployments: int
    failures: int


@dataclass(frozen=True)
class Delivery:
    start: datetime
    end: datetime
    days: int
    deployments: int
    outcomes: list[Outcome]
    restore: Median
    lead: Median
    restored_automatically: int
    unrestored: int
    daily: list[Day]
    leads: list[tuple[datetime, float]]  # (when live, seconds from request) per deployment, for the chart
    covered_since: datetime | None  # the oldest record the trail holds

    @property
    def changes(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> int:
        return sum(1 for o in self.outcomes if o.failed)

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.changes if self.changes else None

    @property
    def per_week(self) -> float:
        return self.deployments * 7 / self.days

    @property
    def per_day(self) -> float:
        return self.deployments / self.days

    @property
    def partial(self) -> bool:
        """The trail holds less than the range: the figures cover only its end."""
        return self.covered_since is None or self.covered_since > self.start


def _track(verb: str, action: str) -> str:
    if verb in ("Deploy", "Rollback", "Promote", "EnvPromote"):
        return "stable"
    if verb in ("Canary", "Abort"):
        return "canary"
    return ""


def releases(entries: Iterable[AuditEntry]) -> list[Release]:
    """The trail's records grouped by request, oldest request first."""
    groups: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        if entry.request_id and entry.verb:
            groups.setdefault(entry.request_id, []).append(entry)
    out = []
    for rid, group in groups.items():
        group.sort(key=lambda e: e.at)
        first = group[0]
        action = next((e.action for e in group if e.action), "")
        if not action and first.verb == "Canary":  # records from before the action was kept
            action = "canary" if any("image" in e.facts for e in group) else "shift"
        at = {e.phase: e.at for e in group}
        end = next((e for e in reversed(group) if e.phase in ENDS), None)
        if not ({"Requested", "Approved"} & at.keys()) and end is None:
            continue  # not a change request (a lock or freeze set or lifted): nothing to measure
        facts: dict[str, Any] = {}
        for e in group:
            facts.update(e.facts)
        out.append(Release(request_id=rid, verb=first.verb, action=action or first.verb.lower(),
                           track=_track(first.verb, action), requested=at.get("Requested"),
                           approved=at.get("Approved"), ended=end.at if end else None,
                           phase=end.phase if end else "", version=str(facts.get("version") or ""), facts=facts,
                           where=(first.service, first.environment)))
    out.sort(key=lambda r: r.first)
    return out


def _outcome(change: Release, later: list[Release]) -> Outcome | None:
    """Judge a change by its own end and by the next approved change of its track (``later``: oldest first)."""
    same = [r for r in later if (r.track == change.track or (change.track == "canary" and r.verb == "Promote"))
            and r.where == change.where  # another service's rollback undoes nothing of this one
            and r.approved is not None and r.action != "shift" and r.request_id != change.request_id]
    nxt = next((r for r in same if r.first >= change.first), None)
    undone = nxt is not None and nxt.verb == UNDO.get(change.track)

    def next_success(after: datetime) -> datetime | None:
        return next((r.ended for r in same if r.phase == "Succeeded" and r.ended and r.ended >= after), None)

    if change.phase == "Failed" or (change.phase == "Superseded" and change.facts.get("rolled_back")):
        automatic = bool(change.facts.get("rolled_back") or change.facts.get("aborted"))
        if automatic:
            how = "rolled back by the bot" if change.facts.get("rolled_back") else "aborted by the bot"
            return Outcome(change, True, how, change.ended, change.ended, automatic=True)
        return Outcome(change, True, "failed", change.ended, next_success(change.ended))  # type: ignore[arg-type]
    if change.phase not in ("Succeeded", "Superseded"):
        return None
    if undone:
        assert nxt is not None
        failed_at = nxt.requested or nxt.approved
        how = "rolled back" if nxt.verb == "Rollback" else "aborted"
        return Outcome(change, True, how, failed_at, next_success(failed_at))  # type: ignore[arg-type]
    if change.phase == "Superseded":
        return None  # superseded because nobody advanced it: it neither went live nor failed
    return Outcome(change, False)


def compute(entries: Iterable[AuditEntry], *, end: datetime, days: int) -> Delivery:
    """The delivery figures of the ``days`` before ``end`` from the audit ``entries`` (any order)."""
    entries = list(entries)
    start = end - timedelta(days=days)
    every = releases(entries)
    in_range = [r for r in every if r.ended is not None and start <= r.ended <= end]
    live = [r for r in in_range if r.verb in LIVE and r.phase == "Succeeded"]
    outcomes = [o for o in (_outcome(r, every) for r in in_range if r.is_change) if o is not None]
    failed = [o for o in outcomes if o.failed]
    restores = [(o.restored_at - o.failed_at).total_seconds() for o in failed
                if not o.automatic and o.restored_at is not None and o.failed_at is not None]
    leads = [(r.ended, (r.ended - r.requested).total_seconds()) for r in live if r.requested and r.ended]
    first_day, last_day = start.date(), end.date()
    daily = []
    for n in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=n)
        daily.append(Day(day, sum(1 for r in live if r.ended and r.ended.date() == day),
                         sum(1 for o in failed if o.release.ended and o.release.ended.date() == day)))
    return Delivery(
        start=start, end=end, days=days, deployments=len(live), outcomes=outcomes,
        restore=Median(median(restores) if restores else None, len(restores)),
        lead=Median(median(s for _, s in leads) if leads else None, len(leads)),
        restored_automatically=sum(1 for o in failed if o.automatic),
        unrestored=sum(1 for o in failed if not o.automatic and o.restored_at is None),
        daily=daily, leads=[(at, s) for at, s in leads if at is not None],
        covered_since=min((e.at for e in entries), default=None),
    )


# ---------------------------------------------------------------- words (pure)


def figures(d: Delivery) -> dict[str, str]:
    """The four figures in words: deployments, failure rate, time to restore, request to live."""
    rate = d.failure_rate
    restore = f"median {duration(d.restore.seconds, compact=True)} ({d.restore.count} restored"
    if d.restored_automatically:
        restore += f"; {d.restored_automatically} undone by the bot"
    if d.unrestored:
        restore += f"; {d.unrestored} not restored yet"
    restore += ")"
    return {
        "deployments": f"{d.deployments} in {d.days} days · {d.per_week:.1f}/week · {d.per_day:.2f}/day",
        "failure_rate": "–" if rate is None else f"{rate * 100:.0f}% ({d.failures} of {d.changes} changes)",
        "restore": restore if d.failures else "no failures",
        "lead": f"median {duration(d.lead.seconds, compact=True)} "
                f"({d.lead.count} deployment{'' if d.lead.count == 1 else 's'})"
        if d.lead.count else "–",
    }


def summary_line(d: Delivery) -> str:
    """One line for the weekly digest."""
    f = figures(d)
    plural = "" if d.deployments == 1 else "s"
    return (f"*Delivery, last {d.days} days:* {d.deployments} deployment{plural} ({d.per_week:.1f}/week) · "
            f"change failure rate {f['failure_rate']} · time to restore {f['restore']} · request to live "
            f"{f['lead']}")
