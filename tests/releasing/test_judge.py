"""The canary judge's decisions on fixed windows: each rule, the issue's examples, no data, edge cases."""

from __future__ import annotations

import math

import pytest

from bot.release.judge import AnalysisSettings, State, Verdict, WindowStats, judge

FAST = dict(p50=0.020, p99=0.064)
STABLE = WindowStats(2700, 0, **FAST)


def verdict(canary: WindowStats, stable: WindowStats = STABLE, **settings: float) -> Verdict:
    return judge(canary, stable, AnalysisSettings(**settings), seconds=60)


def row(v: Verdict, name: str):
    return next(r for r in v.metrics if r.name == name)


def test_3_errors_in_20_against_0_in_200_fails_with_the_numbers_in_the_reason() -> None:
    v = verdict(WindowStats(20, 3, **FAST), WindowStats(200, 0, **FAST))
    assert v.state is State.FAIL
    assert v.reason.startswith(
        "3 errors in 20 requests (15.0%) vs 0 in 200 (0.0%), 99.9% confident the canary is worse"
    )
    errors = row(v, "error ratio")
    assert (errors.canary, errors.stable, errors.requests, errors.outcome) == (0.15, 0.0, 20, State.FAIL)
    assert errors.confidence > 0.999
    assert errors.threshold == pytest.approx(0.005)


def test_1_error_in_3_requests_is_inconclusive_not_pass() -> None:
    v = verdict(WindowStats(3, 1, **FAST), WindowStats(200, 0, **FAST))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "3 requests to the canary in 60 s, need 50"


def test_too_few_canary_requests_is_inconclusive_with_the_count() -> None:
    v = verdict(WindowStats(12, 0, **FAST))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "12 requests to the canary in 60 s, need 50"


def test_a_healthy_canary_passes_and_every_metric_has_its_numbers() -> None:
    v = verdict(WindowStats(600, 1, p50=0.021, p99=0.066), WindowStats(5400, 4, **FAST))
    assert v.state is State.PASS, v.reason
    assert v.reason.startswith("no regression in 600 canary requests over 60 s: errors 0.2% vs 0.1%")
    assert [r.name for r in v.metrics] == ["error ratio", "success", "p50", "p99"]
    assert all(r.outcome is State.PASS and r.requests == 600 for r in v.metrics)
    assert row(v, "p99").threshold == pytest.approx(0.064 * 1.5)
    assert row(v, "success").threshold == 0.99


def test_stable_worse_than_canary_passes() -> None:
    v = verdict(WindowStats(300, 0, **FAST), WindowStats(2700, 200, p50=0.05, p99=0.4))
    assert v.state is State.PASS, v.reason


def test_success_under_the_slo_fails_even_when_stable_is_as_bad() -> None:
    v = verdict(WindowStats(1000, 50, **FAST), WindowStats(9000, 450, **FAST))
    assert v.state is State.FAIL
    assert row(v, "error ratio").outcome is State.PASS
    assert row(v, "success").outcome is State.FAIL
    assert v.reason.startswith("success 95.0% over 1000 requests, SLO 99.0%")


def test_one_error_in_50_is_not_an_slo_breach() -> None:
    v = verdict(WindowStats(50, 1, **FAST), WindowStats(450, 2, **FAST))
    assert row(v, "success").outcome is State.PASS
    assert v.state is State.PASS, v.reason


def test_error_ratio_within_the_tolerance_passes_however_confident() -> None:
    v = verdict(WindowStats(100_000, 400, **FAST), WindowStats(900_000, 900, **FAST))  # 0.4% vs 0.1%
    assert row(v, "error ratio").confidence > 0.999
    assert row(v, "error ratio").outcome is State.PASS


def test_p99_twice_stable_fails_once_enough_requests_are_counted() -> None:
    slow = WindowStats(600, 0, p50=0.020, p99=0.128)
    v = verdict(slow, WindowStats(5400, 0, **FAST))
    assert v.state is State.FAIL
    assert v.reason == "p99 latency 128.0 ms vs 64.0 ms (2.00x, limit 96.0 ms)"
    # 300 requests: a p99 is the third slowest request, not judged yet; the rest passes
    v = verdict(WindowStats(300, 0, p50=0.020, p99=0.128), WindowStats(2700, 0, **FAST))
    assert v.state is State.PASS
    assert row(v, "p99").outcome is State.INCONCLUSIVE
    assert "not judged yet: p99 needs 500 requests of each version, has 300" in v.reason


def test_p50_regression_fails() -> None:
    v = verdict(WindowStats(300, 0, p50=0.035, p99=0.064))
    assert v.state is State.FAIL
    assert row(v, "p50").outcome is State.FAIL


def test_sub_millisecond_latency_is_never_a_regression() -> None:
    v = verdict(WindowStats(600, 0, p50=0.0004, p99=0.0004), WindowStats(5400, 0, p50=0.0002, p99=0.0002))
    assert v.state is State.PASS, v.reason
    assert row(v, "p99").threshold == 0.005
    # within 2 ms of stable is no regression either, above the 5 ms floor
    v = verdict(WindowStats(600, 0, p50=0.0055, p99=0.0065), WindowStats(5400, 0, p50=0.0035, p99=0.0045))
    assert v.state is State.PASS, v.reason


@pytest.mark.parametrize("missing", [None, math.nan])
def test_no_canary_data_is_inconclusive(missing: float | None) -> None:
    v = verdict(WindowStats(missing, missing, missing, missing))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "no data for the canary in 60 s"
    assert all(r.outcome is State.INCONCLUSIVE for r in v.metrics)


def test_no_requests_at_all_is_inconclusive() -> None:
    v = verdict(WindowStats(0, 0, math.nan, math.nan), WindowStats(0, 0, math.nan, math.nan))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "0 requests to the canary in 60 s, need 50"


def test_missing_stable_or_latency_is_inconclusive_not_pass() -> None:
    v = verdict(WindowStats(300, 0, **FAST), WindowStats(None, None))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "no data for stable in 60 s, nothing to compare with"
    v = verdict(WindowStats(300, 0, p50=None, p99=math.nan))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "no p50 or p99 data in 60 s"
    v = verdict(WindowStats(300, 0, **FAST), WindowStats(20, 0, **FAST))
    assert v.state is State.INCONCLUSIVE
    assert v.reason == "20 requests to stable in 60 s, need 50 to compare"


def test_a_failing_canary_fails_even_without_stable_data() -> None:
    v = verdict(WindowStats(1000, 100, **FAST), WindowStats(None, None))
    assert v.state is State.FAIL
    assert row(v, "success").outcome is State.FAIL


def test_fractional_counts_from_increase_are_rounded_and_errors_capped() -> None:
    v = verdict(WindowStats(299.6, 301.2, **FAST), WindowStats(2700.4, 0.2, **FAST))
    errors = row(v, "error ratio")
    assert (errors.requests, errors.canary) == (300, 1.0)
    assert v.state is State.FAIL


def test_negative_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        verdict(WindowStats(-1, 0, **FAST))


def test_settings_are_frozen_keyword_only_with_the_issue_defaults() -> None:
    s = AnalysisSettings()
    assert (s.min_requests, s.max_latency_ratio, s.min_success) == (50, 1.5, 0.99)
    with pytest.raises(TypeError):
        AnalysisSettings(10)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.min_requests = 1  # type: ignore[misc]
    v = verdict(WindowStats(12, 0, **FAST), min_requests=10)
    assert v.state is State.PASS


def cumulative(per_minute: list[tuple[int, int]], latency: dict[str, float]) -> list[WindowStats]:
    """The windows a step sees minute after minute: counts since the step began."""
    out, n, e = [], 0, 0
    for requests, errors in per_minute:
        n, e = n + requests, e + errors
        out.append(WindowStats(n, e, **latency))
    return out


def test_a_faulty_canary_at_low_traffic_holds_then_fails_on_a_fixed_stream() -> None:
    canary = cumulative([(30, 0), (28, 1), (31, 0), (30, 1), (29, 2)], FAST)
    stable = cumulative([(270, 0), (272, 1), (268, 0), (271, 0), (270, 0)], FAST)
    states = [judge(c, s, seconds=60 * (i + 1)).state for i, (c, s) in enumerate(zip(canary, stable, strict=True))]
    assert states == [State.INCONCLUSIVE, State.PASS, State.PASS, State.PASS, State.FAIL]


def test_a_healthy_canary_on_a_fixed_stream_never_fails() -> None:
    canary = cumulative([(30, 0), (31, 1), (29, 0), (30, 0), (30, 1)] * 3, FAST)
    stable = cumulative([(270, 1), (268, 2), (271, 1), (270, 1), (269, 2)] * 3, FAST)
    verdicts = [judge(c, s) for c, s in zip(canary, stable, strict=True)]
    assert verdicts[0].state is State.INCONCLUSIVE
    assert all(v.state is State.PASS for v in verdicts[1:]), [v.reason for v in verdicts]
