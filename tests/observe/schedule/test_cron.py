"""Cron validation and slot arithmetic (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.config import Config
from bot.core.cron import latest_slot, next_slot, slots_between, validate_cron
from bot.core.errors import UsageError
from commands import schedule as command

CONFIG = Config(slack_bot_token="xoxb-x", slack_signing_secret="s")


@pytest.mark.parametrize(("expr", "field"), [
    ("60 * * * *", "minute"), ("*/0 * * * *", "minute"), ("x * * * *", "minute"), ("0 -1 * * *", "hour"),
    ("0 0 0 * *", "day of month"), ("0 0 1 0 *", "month"), ("0 0 * foo *", "month"), ("0 0 * * 9", "day of week"),
])
def test_each_bad_field_is_named(expr: str, field: str) -> None:
    with pytest.raises(UsageError, match=f"invalid {field} field"):
        validate_cron(expr)


@pytest.mark.parametrize(("expr", "needle"), [
    ("* * * *", "has 4"), ("* * * * * *", "has 6"), ("@sometimes", "unknown cron alias"), ("", "empty"),
    ("0 0 30 2 *", "never fires"),
])
def test_other_mistakes_are_explained(expr: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        validate_cron(expr)


def test_valid_expressions_are_normalised() -> None:
    assert validate_cron("  */15  *  * * * ") == "*/15 * * * *"
    assert validate_cron("0 9 * * mon-fri") == "0 9 * * mon-fri"
    assert validate_cron("@Daily") == "@daily"


def test_slots_in_a_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2030, 1, 7, 8, 30, tzinfo=UTC)  # 09:30 in Paris
    assert latest_slot("0 9 * * *", now, paris) == datetime(2030, 1, 7, 9, tzinfo=paris)
    assert next_slot("0 9 * * *", now, paris) == datetime(2030, 1, 8, 9, tzinfo=paris)
    exact = datetime(2030, 1, 7, 8, tzinfo=UTC)
    assert latest_slot("0 9 * * *", exact, paris) == exact  # a slot is due at its own instant
    assert slots_between("*/15 * * * *", exact, exact.replace(hour=9), UTC) == 3


def test_parse_add_channel_and_range_forms() -> None:
    request = command.parse(["add", "0 9 * * 1-5", "<#C0123|ops>", "24h"], CONFIG)
    assert (request.cron, request.channel, request.range, request.mutating) == ("0 9 * * 1-5", "C0123", "24h", True)
    assert command.parse(["add", "*/5", "*", "*", "*", "*", "G042"], CONFIG).channel == "G042"
    assert command.parse(["add", "@hourly"], CONFIG).channel is None
    assert command.parse(["list"], CONFIG).mutating is False
    with pytest.raises(UsageError, match="autocomplete"):
        command.parse(["add", "@hourly", "#ops"], CONFIG)
    with pytest.raises(UsageError, match="unexpected `2d`"):
        command.parse(["add", "@hourly", "2d"], CONFIG)
    with pytest.raises(UsageError, match="schedule id"):
        command.parse(["remove", "nope"], CONFIG)
