"""A release's one message, edited as it goes: who, the steps begun, the rollout, the outcome, what next."""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.views import kit
from bot.chat.views.fmt import bar
from bot.core.text import escape

#: The buttons under a release, by name: its outcome's follow-ups, and Continue / Abort canary while it
#: waits for a person (a gate, or an analysis that could not decide or failed in advise mode).
BUTTONS: dict[str, dict[str, str]] = {
    "rollback": {"action_id": "release_rollback", "text": "Roll back", "style": "danger"},
    "promote": {"action_id": "release_promote", "text": "Promote", "style": "primary"},
    "abort": {"action_id": "release_abort", "text": "Abort canary", "style": "danger"},
    "continue": {"action_id": "analysis_continue", "text": "Continue", "style": "primary"},
    "stop": {"action_id": "analysis_abort", "text": "Abort canary", "style": "danger"},
}


@dataclass(frozen=True)
class Rollout:
    """One reading of a Deployment's rollout (``name`` and ``version`` are escaped here)."""

    name: str
    version: str
    updated: int
    ready: int
    desired: int


@dataclass(frozen=True)
class Progress:
    """What the release's message shows (mrkdwn written by the bot; ``summary`` and ``details`` are escaped
    here, the rest already is)."""

    id: str
    label: str
    summary: str
    who: str
    headline: str  # "Running…", or the outcome's, with its mark
    elapsed: str
    reason: str = ""
    steps: tuple[str, ...] = ()  # one line per step begun
    rollout: Rollout | None = None
    final: bool = False  # the release ended: its outcome is shown
    details: tuple[str, ...] = ()  # the outcome's
    buttons: tuple[str, ...] = ()  # names in BUTTONS


def rollout_line(r: Rollout, elapsed: str) -> str:
    return (f"`{bar(r.updated, r.desired)}`  *{escape(r.name)}* `{escape(r.version)}`  {r.updated}/{r.desired} "
            f"updated · {r.ready}/{r.desired} ready · {elapsed}")


def blocks(p: Progress) -> list[dict]:
    why = f"\n:speech_balloon: Reason: “{p.reason}”" if p.reason else ""
    details = "\n• " + "\n• ".join(escape(d) for d in p.details) if p.details else ""
    buttons = [kit.button(BUTTONS[name]["text"], BUTTONS[name]["action_id"], value=p.id,
                          style=BUTTONS[name]["style"]) for name in p.buttons if name in BUTTONS]
    return kit.blocks(
        kit.section(f"*{p.label}* {escape(p.summary)}\n{p.who}{why}"),
        kit.section("\n".join(p.steps)) if p.steps else None,
        kit.section(rollout_line(p.rollout, p.elapsed)) if p.rollout is not None else None,
        kit.section(p.headline + details) if p.final else None,
        kit.actions(buttons, block_id=f"next-{p.id}") if buttons else None,
        kit.context(f"{'Finished' if p.final else 'Running'} · {p.elapsed} · request `{p.id}`"),
    )
