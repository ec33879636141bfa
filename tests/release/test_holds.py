"""Holds: locks and freezes, decided without a cluster (``decide``), then stored in the emulated cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core import args as checks
from bot.core import catalogue_file
from bot.core.errors import UsageError
from bot.release.holds import Freeze, FreezeSource, HoldState, Lock, decide
from tests.catalogues import WITH_FREEZES

CATALOGUE = catalogue_file.parse(WITH_FREEZES)
HELLO = CATALOGUE.service("helloworld")
PAY = CATALOGUE.service("payments")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def held(service: str, env: str, now: datetime, *, locks: list[Lock] = (), freezes: list[Freeze] = (),
         timezone: str = "UTC") -> HoldState:
    return decide(CATALOGUE.service(service), env, now, locks, freezes, timezone=timezone)


def ad_hoc(service: str, env: str | None, until: datetime, reason: str = "incident") -> Freeze:
    return Freeze(service=service, environment=env, reason=reason, until=until, source=FreezeSource.AD_HOC,
                  user="U1", since=until - timedelta(hours=1))


# -------------------------------------------------------------------------------- catalogue windows


@pytest.mark.parametrize(("now", "frozen"), [
    ("2030-01-04 16:59", False),  # Friday 17:59 in Paris (UTC+1)
    ("2030-01-04 17:00", True),  # Friday 18:00 in Paris: the window opens
    ("2030-01-06 12:00", True),  # Sunday
    ("2030-01-07 08:59", True),  # Monday 09:59 in Paris
    ("2030-01-07 09:00", False),  # Monday 10:00 in Paris: 64 hours later
    ("2030-01-08 17:30", False),  # a Tuesday evening
])
def test_a_weekly_window_is_read_in_its_own_time_zone(now: str, frozen: bool) -> None:
    state = held("helloworld", "production", at(now))
    assert state.frozen is frozen and state.lock is None
    if frozen:
        assert state.freeze == Freeze(service="helloworld", environment="production", reason="weekend",
                                      until=at("2030-01-07 09:00"), source=FreezeSource.WINDOW,
                                      since=at("2030-01-04 17:00"))


def test_a_window_applies_only_to_its_environments() -> None:
    assert held("helloworld", "staging", at("2030-01-05 12:00")).free
    assert held("helloworld", "production", at("2030-01-05 12:00")).frozen


def test_a_window_lasts_its_duration_in_elapsed_time_across_a_daylight_saving_change() -> None:
    # Friday 29 March 2030 18:00 CET = 17:00 UTC; clocks go forward on Sunday 31 March: 64 h later is
    # Monday 09:00 UTC, which is 11:00 in Paris.
    assert held("helloworld", "production", at("2030-03-29 16:59")).free
    state = held("helloworld", "production", at("2030-04-01 08:59"))
    assert state.freeze is not None and state.freeze.until == at("2030-04-01 09:00")
    assert held("helloworld", "production", at("2030-04-01 09:00")).free


@pytest.mark.parametrize(("now", "frozen"), [
    ("2030-01-07 14:30", True),  # 09:30 in New York in winter (UTC-5)
    ("2030-01-07 09:30", False),  # 09:30 UTC is 04:30 there
    ("2030-07-08 13:30", True),  # 09:30 in New York in summer (UTC-4)
    ("2030-07-08 14:30", False),  # 10:30 there: the hour is over
])
def test_a_daily_window_follows_new_york_time(now: str, frozen: bool) -> None:
    state = held("payments", "staging", at(now))
    assert state.frozen is frozen
    if frozen:
        assert state.freeze is not None and state.freeze.reason == "batch"


def test_a_window_without_a_time_zone_is_read_in_the_bots() -> None:
    noon_utc = at("2030-01-07 12:10")
    assert held("payments", "production", noon_utc).freeze.reason == "lunch"  # type: ignore[union-attr]
    assert held("payments", "production", noon_utc, timezone="Asia/Tokyo").free  # 21:10 in Tokyo
    tokyo_noon = held("payments", "production", at("2030-01-07 03:10"), timezone="Asia/Tokyo")
    assert tokyo_noon.freeze is not None and tokyo_noon.freeze.until == at("2030-01-07 03:30")


# ----------------------------------------------------------------------------------- ad-hoc freezes

NOW = at("2030-01-08 10:00")  # a Tuesday: no window is open


def test_an_ad_hoc_freeze_holds_until_it_ends_and_is_ignored_after() -> None:
    freeze = ad_hoc("helloworld", None, NOW + timedelta(minutes=5))
    assert held("helloworld", "staging", NOW, freezes=[freeze]).freeze == freeze
    assert held("helloworld", "staging", NOW + timedelta(minutes=5), freezes=[freeze]).free
    assert held("helloworld", "staging", NOW + timedelta(hours=3), freezes=[freeze]).free


def test_all_freezes_every_service_and_one_service_only_itself() -> None:
    everything = ad_hoc("all", "production", NOW + timedelta(hours=1))
    one = ad_hoc("payments", None, NOW + timedelta(hours=1))
    assert held("helloworld", "production", NOW, freezes=[everything]).freeze == everything
    assert held("payments", "production", NOW, freezes=[everything]).freeze == everything
    assert held("helloworld", "staging", NOW, freezes=[everything]).free  # another environment
    assert held("payments", "staging", NOW, freezes=[one]).freeze == one
    assert held("helloworld", "staging", NOW, freezes=[one]).free


def test_of_several_freezes_the_one_that_ends_last_is_reported() -> None:
    short = ad_hoc("all", None, NOW + timedelta(hours=1), "short")
    long = ad_hoc("helloworld", "production", NOW + timedelta(hours=5), "long")
    assert held("helloworld", "production", NOW, freezes=[long, short]).freeze == long
    assert held("helloworld", "staging", NOW, freezes=[long, short]).freeze == short
    friday = at("2030-01-04 20:00")  # the weekend window (until Monday 09:00) outlasts a 1 h freeze
    state = held("helloworld", "production", friday, freezes=[ad_hoc("helloworld", None, friday + timedelta(hours=1))])
    assert state.freeze is not None and state.freeze.source == FreezeSource.WINDOW


# ------------------------------------------------------------------------------------------- locks


def lock(service: str, env: str | None, minutes: int, reason: str = "migration") -> Lock:
    return Lock(service=service, environment=env, reason=reason, user="U1", since=NOW - timedelta(minutes=minutes))


def test_a_lock_holds_its_service_in_its_environment_or_in_all() -> None:
    prod = lock("payments", "production", 5)
    assert held("payments", "production", NOW, locks=[prod]).lock == prod
    assert held("payments", "staging", NOW, locks=[prod]).free
    assert held("helloworld", "production", NOW, locks=[prod]).free
    everywhere = lock("payments", None, 1)
    assert held("payments", "staging", NOW, locks=[everywhere]).lock == everywhere
    # the environment's own lock is named first, even when the service-wide one is older
    assert held("payments", "production", NOW, locks=[lock("payments", None, 60), prod]).lock == prod


def test_a_lock_and_a_freeze_are_both_reported() -> None:
    state = held("payments", "production", NOW, locks=[lock("payments", None, 5)],
                 freezes=[ad_hoc("all", None, NOW + timedelta(hours=1))])
    assert state.locked and state.frozen and not state.free
    assert (state.service, state.environment) == ("payments", "production")


# ---------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)),
    ("1h30m", timedelta(minutes=90)), ("2W", timedelta(weeks=2)),
])
def test_durations(text: str, expected: timedelta) -> None:
    assert checks.duration(text, "usage") == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("2", "is not a duration"), ("2 h", "is not a duration"), ("２h", "is not a duration"), ("h", "is not a duration"),
    ("0m", "out of range"), ("32d", "out of range"), ("1.5h", "is not a duration"),
])
def test_bad_durations(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        checks.duration(text, "usage")
