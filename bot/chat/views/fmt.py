"""How views write times, ratios and progress: ASCII figures, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A moment in UTC (``unknown`` for none)."""
    if value is None:
        return "unknown"
    return value.astimezone(UTC).strftime(fmt)


def percent(value: float | None, digits: int = 1) -> str:
    """A ratio as a percentage (``n/a`` for none)."""
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def bar(done: int, total: int, width: int = 10) -> str:
    """A one-line progress bar: ``▰▰▰▱▱▱▱▱▱▱``."""
    if total <= 0:
        return "▱" * width
    filled = max(0, min(width, round(width * done / total)))
    return "▰" * filled + "▱" * (width - filled)
