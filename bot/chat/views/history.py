"""``/hello history``: the last changes as the audit trail recorded them, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.chat.views import kit
from bot.chat.views.fmt import when
from bot.chat.views.status import running_section
from bot.core.text import cut


class Entry(Protocol):
    """One audit record read back (``bot.release.audit.Entry`` is one). Rich text is not mrkdwn: nothing in
    it needs escaping."""

    @property
    def at(self) -> datetime: ...
    @property
    def reason(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def note(self) -> str: ...
    @property
    def change_reason(self) -> str: ...


def _line(e: Entry) -> list[kit.RichPart]:
    parts = [kit.rich_text(when(e.at, "%Y-%m-%d %H:%M:%S") + "  ", code=True),
             kit.rich_text(f" {e.reason} ", bold=True),
             kit.rich_user(e.user),
             kit.rich_text((": " + e.summary + (f" — {e.note}" if e.note else ""))[:400])]
    if e.change_reason:
        parts.append(kit.rich_text(f" — reason: “{cut(e.change_reason, 300)}”", italic=True))
    return parts


def blocks(entries: Sequence[Entry], count: int, *, running: Sequence[str] = ()) -> list[dict]:
    """The last ``count`` entries asked for; ``running``: a line per release running now."""
    return kit.blocks(
        kit.header(f"Release history (last {count})"),
        running_section(running) if running else None,
        kit.rich_list([_line(e) for e in entries]) if entries else kit.section("No releases recorded yet."),
        kit.context("Newest first · read from the cluster's Events (source hello-chatops)"),
    )
