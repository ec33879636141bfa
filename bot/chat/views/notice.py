"""A message of one mrkdwn section: what a command did (a lock, a freeze, a schedule added or removed)."""

from __future__ import annotations

from bot.chat.views import kit


def blocks(text: str) -> list[dict]:
    """``text``: the bot's own mrkdwn, whatever came from elsewhere in it escaped already."""
    return kit.blocks(kit.section(text))
