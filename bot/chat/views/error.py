"""A refusal or a failure, as the person who asked sees it (privately)."""

from __future__ import annotations

from bot.chat.views import kit


def blocks(message: str, usage: str = "", ref: str = "") -> list[dict]:
    """``message`` (the bot's words, foreign text already escaped), the usage to try, a reference for the log."""
    return kit.blocks(
        kit.section(f":warning: {message}"),
        kit.context(f"Usage: `{usage}`") if usage else None,
        kit.context(f"Reference: `{ref}`") if ref else None,
    )
