"""``/hello release``: one release step by step, or the releases running now."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat.views import kit
from bot.core.text import escape


def running(lines: Sequence[str]) -> list[dict]:
    """The releases running now, one line each."""
    return kit.blocks(kit.section("\n".join(lines)))


def detail(head: str, steps: Sequence[str], release_id: str, driver: str) -> list[dict]:
    """One release: ``head`` (what, who, how it stands), a line per step, and who drives it (escaped here)."""
    return kit.blocks(
        kit.section(head),
        kit.section("\n".join(steps) or "–"),
        kit.context(f"request `{release_id}` · driven by {escape(driver)}"),
    )
