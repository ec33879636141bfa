"""A request's message: who asks for what and why, the plan, its state, and Approve / Reject (or Withdraw)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.views import kit
from bot.core.text import escape

APPROVE, REJECT = "approve", "reject"


@dataclass(frozen=True)
class Approval:
    """What a request's message shows (mrkdwn written by the bot; ``summary``, ``details`` and ``plan``
    are escaped here, ``reason`` already is)."""

    id: str
    requester: str
    label: str
    summary: str
    state_line: str
    reason: str = ""
    break_glass: str = ""
    details: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    pending: bool = False  # Approve and Reject
    queued: bool = False  # Withdraw


def decision(request_id: str, *, block_id: str) -> kit.Block:
    """Approve and Reject, for a request waiting for approval (its message, and the Home tab)."""
    return kit.actions([kit.button("Approve", APPROVE, value=request_id, style="primary"),
                        kit.button("Reject", REJECT, value=request_id, style="danger")], block_id=block_id)


def blocks(a: Approval) -> list[dict]:
    why = f"\n:speech_balloon: Reason: “{a.reason}”" if a.reason else ""
    return kit.blocks(
        kit.section(f":raised_hand: <@{a.requester}> asks for a *{a.label}*\n*{escape(a.summary)}*{why}"),
        kit.section(f":rotating_light: *Break-glass*: {a.break_glass}. Two different approvers are needed.")
        if a.break_glass else None,
        kit.section("• " + "\n• ".join(escape(d) for d in a.details)) if a.details else None,
        kit.context("Plan: " + " → ".join(escape(p) for p in a.plan)) if a.plan else None,
        decision(a.id, block_id=f"decision-{a.id}") if a.pending else None,
        kit.actions([kit.button("Withdraw", REJECT, value=a.id)], block_id=f"decision-{a.id}") if a.queued else None,
        kit.context(f"{a.state_line} · request `{a.id}`"),
    )


def superseded(label: str, summary: str, headline: str) -> list[dict]:
    """A request another one replaced (a rollback supersedes what it rolls back)."""
    return kit.blocks(kit.section(f":arrow_heading_down: *{label}* {escape(summary)}\n{headline}"))
