"""The canary judge: its confidence sequences, the three outcomes on evidence, no data, latency from buckets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bot.release.confidence import interval, lower, upper
from bot.release.judge import AnalysisSettings, State, Verdict, WindowStats, duration, judge
from helloworld.metrics import BUCKETS

BOUNDS = (*BUCKETS, math.inf)
STABLE_SIGMA = 0.5  # log-normal spread around a 20 ms median: p99 64 ms


def histogram(n: float, *, median: float = 0.020, sigma: float = STABLE_SIGMA) -> tuple[tuple[float, float], ...]:
    """Cumulative bucket counts of ``n`` requests with log-normal latency (expected counts)."""
    out = []
    for bound in BOUNDS:
        share = 1.0 if math.isinf(bound) else 0.5 * math.erfc(-(math.log(bound / median)) / (sigma * math.sqrt(2)))
        out.append((bound, n * share))
    return tuple(out)


def window(n: float, errors: float, **latency: float) -> WindowStats:
    return WindowStats(n, errors, buckets=histogram(n, **latency))


def verdict(canary: WindowStats, stable: WindowStats, **settings: float) -> Verdict:
    return judge(canary, stable, AnalysisSettings(**settings), seconds=60)


def row(v: Verdict, name: str):
    return next(r for r in v.metrics if r.name == name)


# ------------------------------------------------------------------------------ confidence sequences


def _two_sided_upper_of_no_hits(n: int, alpha: float, a: float = 0.2, b: float = 19.8) -> float:
    """The two-sided beta-binomial mixture's upper bound after 0 hits in ``n`` (closed form), as the judge
    had it before its bounds were one-sided."""
    def betaln(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return 1.0 - math.exp((betaln(a, n + b) - betaln(a, b) - math.log(1.0 / alpha)) / n)


def test_the_bounds_hold_the_estimate_narrow_with_evidence_and_are_one_sided() -> None:
    widths = []
    for n in (100, 1000, 10_000):
        low, high = interval(n // 100, n, 0.1, 0.01)
        assert low < 0.01 < high
        assert (low, high) == (lower(n // 100, n, 0.1, 0.01), upper(n // 100, n, 0.1, 0.01))
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True)
    assert interval(0, 750, 0.1, 0.01)[0] == 0.0
    assert interval(0, 0, 0.1, 0.01) == (0.0, 1.0)
    assert interval(20, 20, 0.1, 0.01)[1] == 1.0
    # one-sided: zero errors are shown under the 0.5-point tolerance after 527 requests; the two-sided
    # mixture needed 598
    assert _two_sided_upper_of_no_hits(598, 0.1) < 0.005 < _two_sided_upper_of_no_hits(597, 0.1)
    assert upper(0, 527, 0.1, 0.01) < 0.005 < upper(0, 526, 0.1, 0.01)


def test_each_bound_holds_at_every_look_of_a_run_not_only_at_one() -> None:
    """Time-uniform, one-sided coverage: over 300 seeded runs of 120 looks each (up to 12,000 requests), the
    share of runs whose lower bound is over the true ratio at ANY look stays under alpha, and so does the
    share whose upper bound is under it (observed: 1.7% and 5%); a fixed-sample interval looked at as
    often misses far more often. A lower bound can only be over the truth when the observed ratio is, so
    each look checks the one side that can miss (the other holds by construction), and a run that has
    missed on a side is not checked there again."""
    rng = np.random.default_rng(22)
    alpha, p, runs, looks, per_look = 0.1, 0.01, 300, 120, 100
    hits = rng.binomial(per_look, p, size=(runs, looks)).cumsum(axis=1)
    low_missed = high_missed = naive_missed = 0
    for r in range(runs):
        low_miss = high_miss = naive_miss = False
        for t in range(looks):
            n, k = per_look * (t + 1), int(hits[r, t])
            if k / n > p and not low_miss:
                low_miss = lower(k, n, alpha, p) > p
            elif k / n < p and not high_miss:
                high_miss = upper(k, n, alpha, p) < p
            half = 1.645 * math.sqrt(max(k, 1) / n * (1 - k / n) / n)  # a 90% Wald interval, per look
            naive_miss |= not k / n - half <= p <= k / n + half
        low_missed += low_miss
        high_missed += high_miss
        naive_missed += naive_miss
    assert low_missed / runs <= alpha
    assert high_missed / runs <= alpha
    assert naive_missed / runs > 2 * alpha


# ----------------------------------------------------------------------------------- three outcomes


def test_the_sandbox_faulty_canary_fails_at_its_first_look_with_interval_and_limit() -> None:
    """4 errors in 20 requests (v2-faulty, 20% failing) against none in 180: under the 99% SLO for sure."""
    v = judge(window(20, 4), window(180, 0), seconds=45.0078)
    assert v.state is State.FAIL
    success = row(v, "success")
    assert success.outcome is State.FAIL
    assert success.canary == pytest.approx(0.8)
    assert success.low is not None and success.high is not None and success.high < 0.99
    assert success.threshold == 0.99
    assert v.reason.startswith("success 80.0% (")
    assert "SLO 99.0%: under the SLO" in v.reason
    assert "45.0078" not in v.reason


def test_a_healthy_canary_passes_only_once_the_evidence_shows_it_within_every_limit() -> None:
    stable = window(18_000, 0)
    v = verdict(window(2000, 0), stable)
    assert v.state is State.PASS, v.reason
    assert v.reason.startswith("within every limit over 2000 canary requests in 60 s: error ratio 0%")
    assert [r.name for r in v.metrics] == ["error ratio", "success", "p50", "p99"]
    for r in v.metrics:
        assert r.outcome is State.PASS and r.requests == 2000 and r.confidence == 0.9
        assert r.low is not None and r.high is not None and r.threshold is not None
    assert row(v, "error ratio").high < row(v, "error ratio").threshold <= 0.005
    assert row(v, "p99").high <= row(v, "p99").threshold


def test_too_little_evidence_waits_and_says_how_much_more_it_needs() -> None:
    v = judge(window(100, 0), window(900, 0), seconds=200)
    assert v.state is State.WAIT and not v.blind
    assert v.reason.startswith("not decided yet over 100 canary requests in 3 min: error ratio 0% (0%–")
    assert "limit 0.5%" in v.reason
    more = v.needs()
    assert more is not None and 300 < more < 900
    # the projection holds: that many more requests at the same (zero) error ratio decide it
    assert verdict(window(100 + more, 0), window(900 + 9 * more, 0)).state is State.PASS
    text = v.waiting_text()
    assert text.startswith("needs about ") and text.endswith(" min at the current rate"), text
    assert text == v.waiting_text(rate=0.5)


def test_the_waiting_estimate_counts_the_analysis_loads_rate() -> None:
    """100 canary requests in 10 min (0.17 req/s): the same evidence is needed, at the load's 10 req/s."""
    quiet = judge(window(100, 0), window(900, 0), seconds=600)
    loaded = judge(window(100, 0), window(900, 0), AnalysisSettings(load_rps=10), seconds=600)
    assert quiet.state is loaded.state is State.WAIT
    assert quiet.needs() == loaded.needs() is not None
    assert quiet.waiting_text() == quiet.waiting_text(rate=100 / 600)
    assert loaded.waiting_text() == quiet.waiting_text(rate=10.0) != quiet.waiting_text()
    # once the load's requests are in the evidence, its average (load and real traffic) is the rate
    busy = judge(window(9000, 70), window(81000, 400), AnalysisSettings(load_rps=10), seconds=600)
    assert busy.state is State.WAIT and busy.waiting_text() == busy.waiting_text(rate=15.0)


@pytest.mark.parametrize("n", [50, 200, 1000, 5000, 20_000])
def test_an_observed_ratio_beyond_a_limit_is_never_a_pass(n: int) -> None:
    v = verdict(window(n, n * 0.012), window(9 * n, 0))  # 1.2%: under the 99% SLO
    assert v.state is not State.PASS
    assert row(v, "success").outcome is not State.PASS


def test_too_few_requests_is_never_a_pass_even_when_everything_else_is() -> None:
    v = verdict(window(40, 0), window(100_000, 0), min_requests=50, confidence=0.5)
    assert v.state is State.WAIT
    assert v.reason == "40 requests to the canary in 60 s, need at least 50"


def test_stable_worse_than_the_canary_passes() -> None:
    v = verdict(window(5000, 0), window(45_000, 1000, median=0.05, sigma=0.8))
    assert v.state is State.PASS, v.reason


def test_success_under_the_slo_fails_even_when_stable_is_as_bad() -> None:
    v = verdict(window(1000, 50), window(9000, 450))
    assert v.state is State.FAIL
    assert row(v, "error ratio").outcome is not State.FAIL
    assert row(v, "success").outcome is State.FAIL


def test_worse_than_stable_beyond_the_tolerance_fails_within_the_slo() -> None:
    v = verdict(window(100_000, 800), window(900_000, 900))  # 0.8% vs 0.1%: within the SLO, 0.7 points worse
    assert row(v, "success").outcome is not State.FAIL
    assert row(v, "error ratio").outcome is State.FAIL
    assert v.state is State.FAIL


def test_an_error_ratio_within_the_tolerance_passes_however_many_requests() -> None:
    v = verdict(window(200_000, 800), window(1_800_000, 1800))  # 0.4% vs 0.1%
    assert row(v, "error ratio").outcome is State.PASS
    assert row(v, "success").outcome is State.PASS


# ------------------------------------------------------------------------------------------ latency


def test_a_doubled_p99_fails_from_the_bucket_counts() -> None:
    doubled = STABLE_SIGMA + math.log(2) / 2.3263  # same median, p99 128 ms
    v = verdict(window(5000, 0, sigma=doubled), window(45_000, 0))
    assert v.state is State.FAIL
    p99 = row(v, "p99")
    assert p99.outcome is State.FAIL and p99.low is not None and p99.threshold is not None
    assert p99.low > p99.threshold
    assert v.reason.startswith("p99 ")
    assert "over the limit" in v.reason
    # a doubled p99 is never a pass, however little evidence there is
    assert all(verdict(window(n, 0, sigma=doubled), window(9 * n, 0)).state is not State.PASS
               for n in (60, 300, 1000, 3000))
    # nor does p99 advisory let one shown over its limit through
    advisory = verdict(window(5000, 0, sigma=doubled), window(45_000, 0), p99_advisory=True)
    assert advisory.state is State.FAIL and row(advisory, "p99").outcome is State.FAIL


def test_a_p50_regression_fails() -> None:
    v = verdict(window(2000, 0, median=0.060), window(18_000, 0))
    assert row(v, "p50").outcome is State.FAIL
    assert v.state is State.FAIL


def test_sub_millisecond_latency_is_never_a_regression() -> None:
    v = verdict(window(3000, 0, median=0.0004, sigma=0.3), window(27_000, 0, median=0.0002, sigma=0.3))
    assert row(v, "p50").outcome is State.PASS and row(v, "p99").outcome is State.PASS
    assert row(v, "p99").threshold == 0.005


def test_without_bucket_counts_latency_is_not_judged_and_nothing_passes() -> None:
    v = verdict(WindowStats(5000, 0, p50=0.02, p99=0.064), WindowStats(45_000, 0, p50=0.02, p99=0.064))
    assert v.state is State.WAIT and not v.blind
    assert row(v, "p99").outcome is State.WAIT
    assert row(v, "p99").canary == 0.064
    assert "p99: no histogram buckets, cannot judge the latency" in v.reason


def test_an_undecided_p99_holds_back_a_pass_unless_p99_is_advisory() -> None:
    """p99 30% over stable's at 1,000 canary requests: errors and p50 pass, p99 cannot be told from its limit."""
    slower = STABLE_SIGMA + math.log(1.3) / 2.3263
    canary, stable = window(1000, 0, sigma=slower), window(9000, 0)
    strict = verdict(canary, stable)
    assert strict.state is State.WAIT and row(strict, "p99").outcome is State.WAIT
    assert "p99 95 ms (" in strict.reason and ": could be up to " in strict.reason

    advisory = verdict(canary, stable, p99_advisory=True)
    assert advisory.state is State.PASS
    p99 = row(advisory, "p99")
    assert p99.outcome is State.WAIT and p99.advisory and not row(advisory, "p50").advisory
    assert advisory.reason.startswith("within every limit over 1000 canary requests in 60 s: error ratio 0%")
    assert advisory.reason.endswith("; p99 is advisory and not decided yet (" + p99.note + ")")
    from bot.release import analysis

    text, blocks = analysis.card(advisory, version="v2", percent=10, index=1, total=3, look=4, links=[])
    assert "analysis passed" in text and "p99 is advisory and not decided yet" in blocks[0]["text"]["text"]
    p99_line = blocks[1]["text"]["text"].splitlines()[3]
    assert p99_line.startswith(":hourglass_flowing_sand: *p99*: canary 95 ms (90% bounds ")
    assert p99_line.endswith(" · 1000 canary requests · advisory: does not hold back a pass")


def test_p99_advisory_comes_from_the_variable_or_the_catalogue(tmp_path: Path) -> None:
    from bot.core.catalogue_file import load as load_catalogue
    from bot.core.config import load
    from bot.release.analysis import settings_for

    base = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "zz-signing-secret-zz"}
    assert settings_for(load(base)).p99_advisory is False
    assert settings_for(load({**base, "HELLO_ANALYSIS_P99_ADVISORY": "true"})).p99_advisory is True
    services = tmp_path / "services.yaml"
    services.write_text("services:\n  - name: helloworld\n    environments: [{name: staging, namespace: hello}]\n"
                        "    analysis: {p99_advisory: true}\n")
    config = load({**base, "HELLO_SERVICES": str(services)})
    service = load_catalogue(config).services[0]
    assert settings_for(service.config_for("staging", config)).p99_advisory is True


# ------------------------------------------------------------------------------------------- no data


@pytest.mark.parametrize("missing", [None, math.nan])
def test_no_canary_data_waits_and_is_blind(missing: float | None) -> None:
    v = verdict(WindowStats(missing, missing, missing, missing), window(900, 0))
    assert v.state is State.WAIT and v.blind
    assert v.reason == "no data for the canary in 60 s"
    assert all(r.outcome is State.WAIT for r in v.metrics)
    assert v.waiting_text() == ""


def test_no_requests_at_all_is_blind() -> None:
    v = verdict(WindowStats(0, 0), WindowStats(0, 0))
    assert v.state is State.WAIT and v.blind
    assert v.reason == "0 requests to the canary in 60 s"


def test_missing_stable_is_blind_but_a_failing_canary_still_fails() -> None:
    v = verdict(window(300, 0), WindowStats(None, None))
    assert v.state is State.WAIT and v.blind
    assert v.reason == "no data for stable in 60 s, nothing to compare with"
    v = verdict(window(1000, 100), WindowStats(None, None))
    assert v.state is State.FAIL
    assert row(v, "success").outcome is State.FAIL


def test_fractional_counts_from_increase_are_rounded_and_errors_capped() -> None:
    v = verdict(window(299.6, 301.2), window(2700.4, 0.2))
    errors = row(v, "error ratio")
    assert (errors.requests, errors.canary) == (300, 1.0)
    assert v.state is State.FAIL


def test_negative_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        verdict(WindowStats(-1, 0), window(900, 0))


def test_settings_are_frozen_keyword_only_with_the_defaults() -> None:
    s = AnalysisSettings()
    assert (s.min_requests, s.max_latency_ratio, s.min_success, s.confidence) == (50, 1.5, 0.99, 0.9)
    assert s.alpha == pytest.approx(0.1)
    with pytest.raises(TypeError):
        AnalysisSettings(10)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.min_requests = 1  # type: ignore[misc]


@pytest.mark.parametrize(("seconds", "text"), [
    (45.0078, "45 s"), (89.6, "90 s"), (480, "8 min"), (3599, "1 h"), (3900, "1 h 5 min"), (0.2, "0 s"),
])
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# ------------------------------------------------------------------------------------- what it shows


def test_the_card_shows_per_metric_the_estimate_its_interval_and_the_limit() -> None:
    from bot.release import analysis

    waiting = judge(window(180, 0), window(1620, 0), seconds=360.4)
    text, blocks = analysis.card(waiting, version="v2", percent=10, index=1, total=3, look=6,
                                 links=[("the queries in Prometheus", "http://prometheus.example/graph")])
    assert text.startswith("Canary v2 at 10%: analysis waiting: not decided yet over 180 canary requests in 6 min")
    assert "needs about " in text and " min at the current rate" in text
    lines = blocks[1]["text"]["text"].splitlines()
    assert lines[0].startswith(":hourglass_flowing_sand: *error ratio*: canary 0% (90% bounds 0%–1.")
    assert "· limit 0.5% · stable 0% · 180 canary requests" in lines[0]
    assert "· SLO at least 99% ·" in lines[1]
    context = blocks[2]["elements"][0]["text"]
    assert context.startswith("evidence: the last 6 min, canary against stable, 90% confidence")
    line = analysis.summary(waiting)
    assert line.startswith("waiting: 180 canary requests in 6 min; error ratio 0% (0%–1.")
    assert "limit 0.5%) · success 100% (" in line and line.endswith(" min at the current rate")


def test_a_faulty_canarys_card_is_escaped_and_never_says_passed() -> None:
    from bot.release import analysis

    failed = judge(window(20, 4), window(180, 0), seconds=45.0078)
    text, blocks = analysis.card(failed, version="v2-<faulty>", percent=10, index=1, total=3, look=1, links=[])
    assert "analysis failed" in text and "passed" not in text
    assert "`v2-&lt;faulty&gt;`" in blocks[0]["text"]["text"]
    assert "45 s" in blocks[2]["elements"][0]["text"]
    assert analysis.summary(failed).startswith("failed: success 80.0% (")


async def test_the_status_warning_uses_the_same_judge() -> None:
    from types import SimpleNamespace

    from bot.observe.prom import WindowCounts
    from bot.release import analysis

    class Prometheus:
        def __init__(self, counts: dict[str, WindowCounts]) -> None:
            self.counts = counts

        async def window(self, seconds: float) -> dict[str, WindowCounts]:
            return self.counts

    def counts(version: str, n: int, errors: int) -> WindowCounts:
        return WindowCounts(version, n, errors, None, None, histogram(n))

    state = SimpleNamespace(canary=SimpleNamespace(version="v2-<faulty>"), stable=SimpleNamespace(version="v1"),
                            canary_route=SimpleNamespace(weight=30))
    config = SimpleNamespace(analysis_min_requests=50, analysis_max_latency_ratio=1.5, analysis_min_success=99.0,
                             analysis_confidence=90.0, analysis_p99_advisory=False, analysis_load_rps=0)

    def services(canary_errors: int) -> SimpleNamespace:
        prometheus = Prometheus({"v2-<faulty>": counts("v2-<faulty>", 2400, canary_errors),
                                 "v1": counts("v1", 5600, 0)})
        return SimpleNamespace(config=config, prometheus=prometheus)

    warning = await analysis.canary_warning(services(480), state)
    assert warning.startswith("canary v2-&lt;faulty&gt; at 30% is significantly worse than stable over the last "
                              "10 min (90% confidence): success 80.0% (")
    assert await analysis.canary_warning(services(2), state) == ""  # 0.08%: within the limits
    assert await analysis.canary_warning(services(0), state) == ""
