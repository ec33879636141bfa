"""Cron expressions (croniter): the one reader for schedules, freeze windows and settings, and their times.

An expression has five fields (minute hour day-of-month month day-of-week) or is one of the ``@daily``-style
aliases. :func:`validate_cron` says which field is wrong, in words for the person who wrote it; the times
are computed in a time zone, so ``0 9 * * *`` in Europe/Paris is 09:00 there, summer and winter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from bot.core.errors import UsageError
from bot.core.text import foreign

FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-6 or sun-sat"),
)
ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class NeverFires(UsageError):
    """A well-formed expression no date matches (``0 0 30 2 *``)."""


def validate_cron(expr: str, *, aliases: bool = True) -> str:
    """Return the normalised expression or raise :class:`UsageError` naming the bad field.

    Five fields (minute hour day-of-month month day-of-week) or, with ``aliases``, one of the
    ``@daily``-style aliases. Each field is checked on its own (croniter's own messages do not say which
    field is wrong), then the whole, and finally that it ever fires (:class:`NeverFires`).
    """
    text = " ".join(expr.split())
    if not text:
        raise UsageError("the cron expression is empty")
    shown = foreign(text, 80)
    if not text.isascii():
        raise UsageError(f"`{shown}` is not a cron expression: its fields are ASCII digits, `*`, `,`, `-` and `/`")
    if text.startswith("@") and aliases:
        if text.lower() not in ALIASES:
            raise UsageError(f"unknown cron alias `{shown}`: use one of {', '.join(ALIASES)}")
        return text.lower()
    parts = text.split(" ")
    if len(parts) != 5:
        raise UsageError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"`{shown}` has {len(parts)}"
        )
    for index, (name, allowed) in enumerate(FIELDS):
        probe = ["*"] * 5
        probe[index] = parts[index]
        if not croniter.is_valid(" ".join(probe)):
            raise UsageError(f"invalid {name} field `{foreign(parts[index], 40)}` in `{shown}`: "
                             f"allowed values are {allowed}")
    if not croniter.is_valid(text):
        raise UsageError(f"`{shown}` is not a valid cron expression")
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise NeverFires(f"`{shown}` never fires: no date matches its day of month and month") from None
    return text


def latest_slot(cron: str, now: datetime, tz: ZoneInfo) -> datetime:
    """The most recent time at or before ``now`` the expression fires (aware, in ``tz``)."""
    return croniter(cron, now.astimezone(tz) + timedelta(microseconds=1)).get_prev(datetime)


def next_slot(cron: str, now: datetime, tz: ZoneInfo) -> datetime:
    """The first time strictly after ``now`` the expression fires (aware, in ``tz``)."""
    return croniter(cron, now.astimezone(tz)).get_next(datetime)


def slots_between(cron: str, after: datetime, before: datetime, tz: ZoneInfo, limit: int = 10_000) -> int:
    """How many times the expression fires strictly between ``after`` and ``before`` (capped at ``limit``)."""
    it = croniter(cron, after.astimezone(tz))
    count = 0
    while count < limit:
        at = it.get_next(datetime)
        if at >= before:
            break
        count += 1
    return count
