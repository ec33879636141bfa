"""Ranges, steps, PromQL expressions (both presets) and the parsing of Prometheus answers."""

from __future__ import annotations

import math

import pytest

from bot.core.config import RANGES, MetricNames
from bot.core.errors import UsageError
from bot.observe.prom import Prometheus
from bot.observe.promql import build_expressions, duration_seconds, envoy_cluster_name, parse_range, step_for
from bot.observe.series import Series, Snapshot, VersionStats, parse_instant, parse_series


@pytest.mark.parametrize("text", [*RANGES, " 7D ", "1H"])
def test_accepted_ranges(text: str) -> None:
    assert parse_range(text) == text.strip().lower()


def test_default_range_is_one_hour() -> None:
    assert parse_range("") == parse_range(None) == "1h"


@pytest.mark.parametrize("text", ["2h", "30d", "1 h", "forever", "-1h", "15"])
def test_other_ranges_are_refused_listing_the_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_range(text)
    for form in RANGES:
        assert form in str(caught.value)
    assert "15m | 1h | 6h | 24h | 7d" in caught.value.usage


@pytest.mark.parametrize(("rng", "step"), [("15m", 2), ("1h", 10), ("6h", 60), ("24h", 180), ("7d", 900)])
def test_step_keeps_every_range_under_700_points(rng: str, step: int) -> None:
    assert step_for(rng) == step
    assert 150 <= duration_seconds(rng) / step <= 700


def test_rate_window_never_shorter_than_the_step() -> None:
    prom = Prometheus("http://127.0.0.1:9", names=MetricNames())
    assert prom.window_for("1h") == "1m"
    assert prom.window_for("7d") == "15m"
    assert "[15m]" in prom.expressions("7d")["rate"]


def test_helloworld_expressions() -> None:
    exprs = build_expressions(MetricNames(), window="1m")
    sel = '{route=~"/v1/hello|/v2/hello"}'
    assert exprs["rate"] == f"sum by (version) (rate(helloworld_requests_total{sel}[1m]))"
    assert exprs["success"] == (
        'sum by (version) (rate(helloworld_requests_total{route=~"/v1/hello|/v2/hello", status!~"5.."}[1m]))'
        f" / sum by (version) (rate(helloworld_requests_total{sel}[1m]))"
    )
    assert exprs["p99"] == (
        "histogram_quantile(0.99, sum by (le, version) "
        f"(rate(helloworld_request_duration_seconds_bucket{sel}[1m])))"
    )
    assert exprs["p50"].startswith("histogram_quantile(0.5, ")
    assert exprs["p95"].startswith("histogram_quantile(0.95, ")


def test_version_filter_for_dashboards_and_links() -> None:
    exprs = build_expressions(MetricNames(), window="$__rate_interval", version="$version")
    for expr in exprs.values():
        assert 'version=~"$version"' in expr and "[$__rate_interval]" in expr


def test_envoy_preset_expressions() -> None:
    exprs = build_expressions(MetricNames.envoy(), window="5m", version="helloworld_canary_80")
    sel = 'envoy_cluster_name=~"helloworld.*", envoy_cluster_name=~"helloworld_canary_80"'
    assert exprs["rate"] == f"sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_total{{{sel}}}[5m]))"
    # The per-class counter carries the response class; the total carries no code at all.
    assert exprs["success"] == (
        f'sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{{{sel}, envoy_response_code_class!="5"}}'
        f"[5m])) / sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{{{sel}}}[5m]))"
    )
    # Envoy's upstream_rq_time is in milliseconds: scaled to seconds like helloworld's histogram.
    assert exprs["p99"] == (
        "histogram_quantile(0.99, sum by (le, envoy_cluster_name) "
        f"(rate(envoy_cluster_upstream_rq_time_bucket{{{sel}}}[5m]))) / 1000"
    )


@pytest.mark.parametrize(
    ("service", "cluster"),
    [
        ("helloworld-canary:80", "helloworld_canary_80"),
        ("helloworld:80", "helloworld_80"),
        ("helloworld.hello:8080", "helloworld_hello_8080"),
        ("http://helloworld-canary.hello:80", "helloworld_canary_hello_80"),
        ("helloworld", "helloworld"),
    ],
)
def test_envoy_cluster_name(service: str, cluster: str) -> None:
    assert envoy_cluster_name(service) == cluster


def test_nan_and_inf_from_promql_become_none() -> None:
    matrix = [
        {"metric": {"version": "v2"}, "values": [[1700000000, "0.5"], [1700000002, "NaN"], [1700000004, "+Inf"]]},
        {"metric": {"version": "v1"}, "values": [[1700000000, "1"]]},
    ]
    series = parse_series(matrix, "version")
    assert [s.version for s in series] == ["v1", "v2"]
    assert series[1].points == ((1700000000.0, 0.5), (1700000002.0, None), (1700000004.0, None))
    assert series[1].values == [0.5] and series[1].last == 0.5
    vector = [{"metric": {"version": "v1"}, "value": [1700000000, "NaN"]}, {"metric": {}, "value": [1, "2"]}]
    assert parse_instant(vector, "version") == {"v1": None, "unknown": 2.0}


def test_has_traffic_only_with_requests() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    idle = Snapshot(range="1h", start=now, end=now, step=10,
                    rate=[Series("v1", ((1.0, 0.0), (2.0, None)))],
                    latest=[VersionStats("v1", 0.0, None, None, None, None)])
    assert not idle.has_traffic
    busy = Snapshot(range="1h", start=now, end=now, step=10, rate=[Series("v1", ((1.0, 0.0), (2.0, 0.1)))])
    assert busy.has_traffic and not math.isnan(busy.rate[0].values[-1])


def test_the_judge_reads_the_histogram_behind_p99_for_both_presets_and_a_catalogue() -> None:
    from bot.observe.promql import bucket_query, window_expressions

    query, unit = bucket_query(window_expressions(MetricNames(), 300))
    assert query == ('sum by (le, version) (increase(helloworld_request_duration_seconds_bucket'
                     '{route=~"/v1/hello|/v2/hello"}[300s]))')
    assert unit == 1.0
    query, unit = bucket_query(window_expressions(MetricNames.envoy(), 60))
    assert query.startswith("sum by (le, envoy_cluster_name) (increase(envoy_cluster_upstream_rq_time_bucket")
    assert unit == 0.001  # Envoy's milliseconds
    own = {"p99": "histogram_quantile(0.99, sum by (le, version) (increase(my_bucket[60s])))"}
    assert bucket_query(own) == ("sum by (le, version) (increase(my_bucket[60s]))", 1.0)
    assert bucket_query({"p99": "max(my_p99_gauge)"}) is None


def test_bucket_answers_become_cumulative_counts_in_seconds_with_inf_last() -> None:
    from bot.observe.series import parse_buckets

    answer = [
        {"metric": {"version": "v2", "le": "+Inf"}, "value": [0, "120"]},
        {"metric": {"version": "v2", "le": "100"}, "value": [0, "118.5"]},
        {"metric": {"version": "v2", "le": "25"}, "value": [0, "60"]},
        {"metric": {"version": "v1", "le": "25"}, "value": [0, "NaN"]},
        {"metric": {"version": "v1", "le": "+Inf"}, "value": [0, "3"]},
        {"metric": {"version": "v3", "le": "25"}, "value": [0, "4"]},  # no +Inf: not a histogram
    ]
    out = parse_buckets(answer, "version", 0.001)
    assert out == {"v2": ((0.025, 60.0), (0.1, 118.5), (math.inf, 120.0))}


async def test_window_carries_each_versions_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    prom = Prometheus("http://prometheus.invalid")
    answers = {
        "requests": [{"metric": {"version": "v1"}, "value": [0, "100"]}],
        "errors": [],
        "p50": [{"metric": {"version": "v1"}, "value": [0, "0.02"]}],
        "p99": [{"metric": {"version": "v1"}, "value": [0, "0.06"]}],
        "le": [{"metric": {"version": "v1", "le": "0.05"}, "value": [0, "97"]},
               {"metric": {"version": "v1", "le": "+Inf"}, "value": [0, "100"]}],
    }

    def query(expr: str, at: object) -> list[dict]:
        if expr.startswith("sum by (le"):
            return answers["le"]
        if "histogram_quantile(0.5" in expr:
            return answers["p50"]
        if "histogram_quantile(0.99" in expr:
            return answers["p99"]
        return answers["errors"] if "5.." in expr else answers["requests"]

    monkeypatch.setattr(prom, "_query", query)
    counts = (await prom.window(300))["v1"]
    assert (counts.requests, counts.errors, counts.p50, counts.p99) == (100.0, 0.0, 0.02, 0.06)
    assert counts.buckets == ((0.05, 97.0), (math.inf, 100.0))
