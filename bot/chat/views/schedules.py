"""``/hello schedule list``: the scheduled status posts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.views import kit
from bot.core.text import foreign

SHOWN = 40


@dataclass(frozen=True)
class Schedule:
    """One schedule as listed (the bot's own mrkdwn; ``error`` escaped already)."""

    id: str
    cron: str
    channel: str
    range: str
    source: str  # "from config", "by <@U1>", "from chat"
    next: str  # formatted
    last: str  # "last posted 3m ago", "not posted yet"
    error: str = ""  # the last post's failure
    invite: bool = False  # it failed because the bot is not in the channel


def _line(s: Schedule) -> str:
    line = f"`{s.id}`  `{s.cron}` → <#{s.channel}> · last {s.range} · {s.source}\nnext {s.next} · {s.last}"
    if s.error:
        line += f"\n:warning: last post failed: {s.error}" + (" — invite the bot" if s.invite else "")
    return line


def listing(items: Sequence[Schedule], *, timezone: str, leader: str = "") -> list[dict]:
    """Every schedule (the first 40), and which replica posts them (``leader``: the Lease's holder)."""
    holder = f": {foreign(leader, 120)}" if leader else ""
    return kit.blocks(
        kit.header("Scheduled status posts"),
        None if items else kit.section('No schedules. Add one with `/hello schedule add "0 9 * * 1-5" #channel 24h`.'),
        [kit.section(_line(s)) for s in items[:SHOWN]],
        kit.context(f"Times in {timezone}. Posted by the replica holding the lease{holder}."),
    )
