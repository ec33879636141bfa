"""The plumbing kit: one retry policy, one timestamp format, one duration grammar and formatter (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.core.durations import duration, parse_duration
from bot.core.errors import ClusterError, Conflict, Forbidden, NotFound, SlackError
from bot.core.retry import Backoff, conflict, outage, retry, transient
from bot.core.times import iso, parse_time


class Pauses:
    """A sleep that only records what it was asked to wait (no test waits on the wall clock)."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


class Flaky:
    """Fails with the given errors in turn, then answers ``result``."""

    def __init__(self, *errors: BaseException, result: str = "done") -> None:
        self.errors, self.result, self.calls = list(errors), result, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


# ------------------------------------------------------------------------------------------ retry


@pytest.mark.parametrize(("error", "worth"), [
    (Conflict("x", 409), True), (ClusterError("x", 503), True), (ClusterError("x", 429), True),
    (ClusterError("unreachable", 0), True), (NotFound("x", 404), False), (Forbidden("x", 403), False),
    (ClusterError("x", 422), False), (SlackError("chat.postMessage", "internal_error"), True),
    (SlackError("chat.postMessage", "ClientConnectorError"), True),
    (SlackError("chat.postMessage", "http_502"), True), (SlackError("chat.postMessage", "http_404"), False),
    (SlackError("chat.postMessage", "not_in_channel"), False), (ValueError("bug"), False),
])
def test_one_predicate_says_what_is_worth_another_try(error: BaseException, worth: bool) -> None:
    assert transient(error) is worth
    assert conflict(error) is isinstance(error, Conflict)
    assert outage(error) is (worth and not isinstance(error, Conflict))


async def test_transient_errors_are_tried_again_with_growing_pauses() -> None:
    pauses = Pauses()
    flaky = Flaky(ClusterError("a", 503), ClusterError("b", 503), ClusterError("c", 503))
    assert await retry(flaky, backoff=Backoff(first=0.5, most=1.5), sleep=pauses) == "done"
    assert flaky.calls == 4 and pauses.waited == [0.5, 1.0, 1.5]


async def test_the_last_error_is_raised_when_the_tries_are_spent() -> None:
    pauses = Pauses()
    flaky = Flaky(*(ClusterError(f"try {n}", 500) for n in range(1, 6)))
    with pytest.raises(ClusterError, match="try 3"):
        await retry(flaky, backoff=Backoff(attempts=3), sleep=pauses)
    assert flaky.calls == 3 and len(pauses.waited) == 2


async def test_an_answer_is_raised_at_once() -> None:
    flaky = Flaky(NotFound("deployments/x not found", 404))
    with pytest.raises(NotFound):
        await retry(flaky, sleep=Pauses())
    assert flaky.calls == 1


async def test_on_retry_sees_each_error_and_may_stop_the_tries() -> None:
    seen: list[str] = []

    async def enough(exc: BaseException | None) -> None:
        seen.append(str(exc))
        if len(seen) == 2:
            assert exc is not None
            raise exc

    flaky = Flaky(*(ClusterError(f"away {n}", 0) for n in range(1, 10)))
    with pytest.raises(ClusterError, match="away 2"):
        await retry(flaky, backoff=Backoff(attempts=None), on_retry=enough, sleep=Pauses())
    assert seen == ["away 1", "away 2"] and flaky.calls == 2


async def test_until_waits_on_the_result_and_gives_the_last_one_back() -> None:
    answers = iter([False, False, True])

    async def posted() -> bool:
        return next(answers)

    pauses = Pauses()
    assert await retry(posted, backoff=Backoff(first=2.0, most=2.0, attempts=10), until=bool, sleep=pauses) is True
    assert pauses.waited == [2.0, 2.0]

    async def never_posted() -> bool:
        return False

    assert await retry(never_posted, backoff=Backoff(attempts=3), until=bool, sleep=Pauses()) is False


async def test_a_conflict_is_tried_again_only_when_asked() -> None:
    flaky = Flaky(Conflict("stale", 409), ClusterError("down", 503))
    with pytest.raises(ClusterError, match="down"):
        await retry(flaky, when=conflict, sleep=Pauses())
    assert flaky.calls == 2


# ------------------------------------------------------------------------------------------- times


def test_one_timestamp_format_and_a_reader_for_every_form_met() -> None:
    moment = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
    assert iso(moment) == "2030-01-07T12:00:00Z"
    assert iso(moment.astimezone(timezone(timedelta(hours=2)))) == "2030-01-07T12:00:00Z"
    assert iso(moment + timedelta(microseconds=5)) == "2030-01-07T12:00:00.000005Z"
    assert iso(None) == ""
    for text in ("2030-01-07T12:00:00Z", "2030-01-07T12:00:00+00:00", "2030-01-07T14:00:00+02:00",
                 "2030-01-07T12:00:00", moment.replace(tzinfo=None)):
        assert parse_time(text) == moment, text
    assert parse_time(iso(moment)) == moment
    assert parse_time("") is None and parse_time(None) is None and parse_time("yesterday") is None


# --------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("2h", 7200), ("7d", 7 * 86400), ("1w", 7 * 86400), ("1h30m", 5400),
    ("2H", 7200), ("0m", 0),
])
def test_one_duration_grammar(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["2", "1.5h", "2 h", "２h", "h", "", "10 m", "-5m", "5y"])
def test_what_is_not_a_duration(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(("seconds", "clock", "compact"), [
    (None, "–", "–"), (45.7, "45s", "46s"), (900, "15m 00s", "15m"), (905, "15m 05s", "15m 05s"),
    (7500, "2h 05m", "2h 05m"), (64 * 3600, "64h 00m", "2d 16h"), (-3, "0s", "0s"),
])
def test_one_duration_formatter_in_two_styles(seconds: float | None, clock: str, compact: str) -> None:
    assert duration(seconds) == clock
    assert duration(seconds, compact=True) == compact
