"""The messages of a request and of its release: the approval request, then the release's progress.

Pure: records and releases in, ``(text, blocks)`` out (the blocks from the ``approval`` and ``progress``
views of :mod:`bot.chat.views`). Everything the bot did not write (summaries, reasons, errors from
the cluster) is escaped here or in the views.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.chat import views
from bot.chat.views import approval, progress
from bot.chat.views.progress import BUTTONS
from bot.core.durations import duration
from bot.core.text import foreign
from bot.release.lifecycle import PENDING, QUEUED
from bot.release.plan import Outcome, Step, StepKind, StepState
from bot.release.record import Record, at
from bot.release.rollout import RolloutStatus

REASON_SHOWN = 300  # characters of a reason shown in a message
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{1,20}", re.ASCII)
__all__ = ["BUTTONS", "already_text", "approval_view", "busy_text", "full_text", "place_text", "progress_view",
           "superseded_view"]


def approval_view(record: Record, *, place: str = "") -> tuple[str, list[dict]]:
    """A request's message: what, why, its plan, and its state (queued with its place, pending with buttons)."""
    state_line = {
        QUEUED: f":hourglass: Queued, {place or 'waiting for the change before it'}: its approval opens when "
                "that one ends",
        PENDING: f"Waiting for approval until {views.when(at(record.expires), '%H:%M UTC')}"
                 + (f" · {record.approved_so_far}" if record.approved_so_far else ""),
        "rejected": f":no_entry: {sentence(record.headline) or 'Rejected'}: nothing was changed",
        "withdrawn": f":no_entry: {sentence(record.headline) or 'Withdrawn'}: nothing was changed",
        "expired": f":hourglass: Expired at {views.when(at(record.expires), '%H:%M UTC')}: "
                   "nothing was changed",
        "cancelled": f":x: Cancelled: {record.headline}",
    }.get(record.state, str(record.state))
    reason = shown_reason(record.change.reason)
    text = (f"{record.change.label} requested by <@{record.requester}>: {views.escape(record.change.summary)}"
            + (f" — reason: “{reason}”" if reason else "") + f" — {state_line}")
    plan = [step.title for step in record.steps]
    change = record.change
    blocks = approval.blocks(approval.Approval(
        id=record.id, requester=record.requester, label=change.label, summary=change.summary,
        state_line=state_line, reason=reason, break_glass=record.break_glass, details=tuple(change.details or ()),
        plan=tuple(plan), pending=record.state == PENDING, queued=record.state == QUEUED))
    return text, blocks


def superseded_view(record: Record) -> tuple[str, list[dict]]:
    text = f"{record.change.label}: {record.change.summary} — {sentence(record.headline)}"
    return text, approval.superseded(record.change.label, record.change.summary, sentence(record.headline))


def progress_view(release: Record, status: RolloutStatus | None, *, now: datetime, approved: bool,
                  outcome: Outcome | None = None, problem: str = "") -> tuple[str, list[dict]]:
    """The release's one message: who, the steps begun so far, the rollout, the outcome.

    ``approved``: the change went through an approval (an abort may run without one).
    """
    if (release.approver and release.approver != release.requester) or approved:
        who = f"Requested by <@{release.requester}>, approved by <@{release.approver}>"
    else:
        who = f"Run by <@{release.requester}> (no approval needed)"
    steps = []
    waiting = None
    for step in (s for s in release.steps if s.state != StepState.WAITING):
        steps.append(step_line(step))
        if step.waiting and step.state == StepState.RUNNING:
            waiting = step
            steps.append(f":raising_hand: {views.escape(step.waiting)}")
    buttons: tuple[str, ...] = ()
    if outcome is not None:
        buttons = tuple(outcome.buttons)
    elif waiting is not None:
        buttons = ("continue", "stop")
    started = at(release.began) if release.began else now
    end = at(release.finished) if outcome is not None and release.finished else now
    elapsed = duration(max(0.0, (end - started).total_seconds()))
    if outcome is None:
        headline = "Running…"
    else:
        headline = (":white_check_mark: " if outcome.ok else ":x: ") + views.escape(outcome.headline)
    reason = shown_reason(release.reason)
    text = f"{release.label}: {views.escape(release.summary)} — {headline}" + (f" (reason: “{reason}”)"
                                                                               if reason else "")
    if problem and outcome is None:
        steps.append(f":warning: {views.escape(problem)}")
    rollout = None if status is None else progress.Rollout(name=status.name, version=status.version,
                                                           updated=status.updated, ready=status.ready,
                                                           desired=status.desired)
    blocks = progress.blocks(progress.Progress(
        id=release.id, label=release.label, summary=release.summary, who=who, headline=headline, elapsed=elapsed,
        reason=reason, steps=tuple(steps), rollout=rollout, final=outcome is not None,
        details=tuple(outcome.details or ()) if outcome is not None else (), buttons=buttons))
    return text, blocks


def step_line(step: Step) -> str:
    """One begun step in the release's message: its mark and title, and what an analysis or bake shows."""
    mark = {StepState.DONE: ":white_check_mark:", StepState.FAILED: ":x:"}.get(step.state, ":hourglass_flowing_sand:")
    line = f"{mark} {views.escape(step.title)}"
    running = step.state == StepState.RUNNING
    if step.kind == StepKind.ANALYSE and running:
        if step.verdict:
            line += f" — last check: {views.escape(step.verdict)}"
        if step.next_check and not step.waiting:
            line += f" · next check at {views.when(at(step.next_check), '%H:%M:%S UTC')}"
    elif step.kind == StepKind.BAKE and running and step.next_check:
        line += f" — until {views.when(at(step.next_check), '%H:%M:%S UTC')}"
    elif step.kind == StepKind.LOAD and running and step.verdict:
        line += f" — {views.escape(step.verdict)}"
    elif step.kind in (StepKind.ANALYSE, StepKind.BAKE) and step.note:
        line += f" — {views.escape(step.note)}"
    if step.kind == StepKind.ANALYSE and step.facts.get("load_refused") and not step.waiting:
        line += f" · no load: the cluster refused it ({views.escape(str(step.facts['load_refused']))})"
    elif step.kind == StepKind.ANALYSE and isinstance(step.facts.get("load_rps"), int) and not step.waiting:
        auto = " (auto)" if "load_wanted" in step.facts else ""
        line += f" · load: {step.facts['load_rps']} req/s to each track{auto}"
    if step.decided_by and _SLACK_USER.fullmatch(step.decided_by):
        line += f" · decided by <@{step.decided_by}>"
    return line


def already_text(record: Record) -> str:
    """Why a click on a request that is no longer waiting changes nothing."""
    who = f" by <@{record.approver}>" if record.approver else ""
    states = {"running": f"already approved{who} and running", "succeeded": f"already approved{who} and done",
              "failed": f"already approved{who}; it failed", "rejected": f"already rejected{who}",
              "withdrawn": "already withdrawn by its requester",
              "expired": "expired", "cancelled": "cancelled", "superseded": "superseded"}
    return f"This request was {states.get(record.state, record.state)}: nothing more was changed."


def busy_text(busy: Record) -> str:
    """Why a change is refused while another one holds the service and environment."""
    doing = "is waiting for approval" if busy.state in (PENDING, QUEUED) else \
        f"is running (approved by <@{busy.approver}>)"
    return (f"One change at a time: {busy.what()} requested by <@{busy.requester}> {doing}. "
            "Wait for it to finish (or reject it), then ask again.")


def full_text(holder: Record | None, limit: int) -> str:
    """Why a change is refused when the queue of its service and environment is full."""
    behind = f" behind {holder.what()}" if holder is not None else ""
    return (f"The queue of this service and environment is full: {limit} requests wait{behind} "
            "(HELLO_QUEUE_LIMIT). Nothing was changed; ask again when it is shorter.")


def too_many_text(user: str, waiting: int, most: int) -> str:
    """Why a request is refused when its requester has as many waiting for this service and environment as allowed."""
    return (f"<@{user}> has {waiting} requests waiting in the queue of this service and environment already, the "
            f"most one person may (HELLO_QUEUE_PER_PERSON={most}). Nothing was changed; withdraw one or wait "
            "until they are decided.")


def place_text(place: int, holder: Record | None) -> str:
    """"2nd in line, behind *Deploy* greeter (production): v1 → v2" for a queued request."""
    behind = f", behind {holder.what()}" if holder is not None else ""
    return f"{ordinal(place)} in line{behind}"


def shown_reason(reason: str) -> str:
    """A change's reason as a message shows it: on one line, cut, escaped for mrkdwn (it is the requester's text)."""
    return foreign(reason, REASON_SHOWN) if reason else ""


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
