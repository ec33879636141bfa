"""Grafana dashboard links and Prometheus graph links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from bot.core.config import Config, MetricNames
from bot.observe.grafana import dashboard_url, links_for, prometheus_graph_url
from bot.observe.prom import Snapshot, build_expressions

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def _config(**kw: object) -> Config:
    return Config(slack_bot_token="xoxb-1", slack_signing_secret="s", **kw)  # type: ignore[arg-type]


def test_dashboard_url_format() -> None:
    url = dashboard_url("https://grafana.example.org/", "helloworld", "helloworld", start=START, end=END,
                        version="v2")
    assert url == (
        "https://grafana.example.org/d/helloworld/helloworld?from=1795953600000&to=1795957200000&var-version=v2"
    )
    assert "var-version" not in dashboard_url("https://g", "u", "s", start=START, end=END)


def test_prometheus_graph_url_format() -> None:
    exprs = {"rate": 'sum by (version) (rate(x{a="b"}[1m]))', "p99": "histogram_quantile(0.99, y)"}
    url = prometheus_graph_url("http://prom:9090/", exprs, range_text="6h")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "prom:9090", "/graph")
    assert parse_qsl(parts.query) == [
        ("g0.expr", exprs["rate"]), ("g0.tab", "0"), ("g0.range_input", "6h"),
        ("g1.expr", exprs["p99"]), ("g1.tab", "0"), ("g1.range_input", "6h"),
    ]


def test_links_prefer_grafana_when_configured() -> None:
    snap = Snapshot(range="1h", start=START, end=END, step=10)
    config = _config(grafana_url="https://grafana.example.org", grafana_dashboard_uid="hw",
                     grafana_dashboard_slug="hello-world")
    [(label, url)] = links_for(config, snap, "v2")
    assert label == "Grafana dashboard (v2, 1h)"
    assert url == "https://grafana.example.org/d/hw/hello-world?from=1795953600000&to=1795957200000&var-version=v2"


def test_links_fall_back_to_prometheus_with_the_bots_expressions() -> None:
    config = _config(prometheus_url="http://prom.monitoring:9090", metrics=MetricNames.envoy())
    [(label, url)] = links_for(config, "24h", None)
    assert label == "Prometheus graphs (24h)"
    query = dict(parse_qsl(urlsplit(url).query))
    expected = build_expressions(MetricNames.envoy(), window="3m")
    assert query["g0.expr"] == expected["rate"]
    assert query["g1.expr"] == expected["success"]
    assert query["g2.expr"] == expected["p99"]
    assert query["g0.range_input"] == "24h"
    assert url.startswith("http://prom.monitoring:9090/graph?")
