"""Against the real Prometheus scraping real helloworld processes (v1, and v2 answering 30 % 500s).

Everything that needs the running stack shares one module-scoped fixture, started once.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib.image import imread

from bot.core.config import MetricNames
from bot.core.errors import MetricsUnavailable
from bot.observe.charts import Marker, build_figure, pixel_size, render_chart, render_chart_async
from bot.observe.prom import Prometheus
from helloworld.runner import Running, start
from sandbox.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests" / "monitoring" / "dashboards" / "helloworld.json"
REQUESTS_PER_VERSION = 150
LOAD_SECONDS = 3.0


@dataclass
class Stack:
    prom: PrometheusServer
    v1: Running
    v2: Running
    sent: dict[str, int]
    load_started: datetime
    load_ended: datetime


def _get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _query(prom_url: str, expr: str) -> dict:
    url = f"{prom_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def _load(target: Running, route: str, count: int, seconds: float, statuses: list[int]) -> None:
    """``count`` GETs spread evenly over ``seconds`` (bounded, loopback only)."""
    begin = time.monotonic()
    for index in range(count):
        statuses.append(_get(f"{target.url}{route}"))
        pause = begin + (index + 1) * seconds / count - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def _wait_until(condition: Callable[[], object], *, deadline_seconds: float, what: str) -> object:
    deadline = time.monotonic() + deadline_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_seconds} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with PrometheusServer(scrape_interval="1s") as prom:
        started: dict[str, Running] = {}
        errors: list[BaseException] = []

        def launch(version: str, env: dict[str, str]) -> None:
            try:
                started[version] = start(version, env=env)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=launch, args=("v1", {})),
            threading.Thread(target=launch, args=("v2", {"HELLO_FAULT_ERROR_RATE": "0.3"})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            if errors:
                raise errors[0]
            v1, v2 = started["v1"], started["v2"]
            prom.set_targets([
                (v1.url.removeprefix("http://"), {"track": "stable"}),
                (v2.url.removeprefix("http://"), {"track": "canary"}),
            ])
            _wait_until(
                lambda: len(_query(prom.url, "up == 1")["data"]["result"]) == 2,
                deadline_seconds=20, what="both helloworld targets to be up",
            )
            statuses: dict[str, list[int]] = {"v1": [], "v2": []}
            load_started = datetime.now(UTC)
            loaders = [
                threading.Thread(target=_load, args=(v1, "/v1/hello", REQUESTS_PER_VERSION, LOAD_SECONDS,
                                                     statuses["v1"])),
                threading.Thread(target=_load, args=(v2, "/v2/hello", REQUESTS_PER_VERSION, LOAD_SECONDS,
                                                     statuses["v2"])),
            ]
            for thread in loaders:
                thread.start()
            for thread in loaders:
                thread.join()
            load_ended = datetime.now(UTC)

            def all_scraped() -> bool:
                result = _query(
                    prom.url, 'sum by (version) (helloworld_requests_total{route=~"/v1/hello|/v2/hello"})'
                )["data"]["result"]
                seen = {r["metric"]["version"]: float(r["value"][1]) for r in result}
                return all(seen.get(v) == len(statuses[v]) for v in ("v1", "v2"))

            _wait_until(all_scraped, deadline_seconds=20, what="Prometheus to scrape every request")
            yield Stack(prom, v1, v2, {k: len(v) for k, v in statuses.items()}, load_started, load_ended)
        finally:
            for running in started.values():
                running.stop()


async def test_check_names_the_prometheus_version(stack: Stack) -> None:
    line = await Prometheus(stack.prom.url, timeout=5).check()
    assert re.fullmatch(r"ok, Prometheus \d+\.\d+\.\d+ at " + re.escape(stack.prom.url), line)


async def test_snapshot_tells_the_faulty_canary_from_the_stable(stack: Stack) -> None:
    snap = await Prometheus(stack.prom.url, timeout=5).snapshot("15m")
    assert snap.has_traffic
    assert snap.range == "15m" and snap.step == 2
    assert snap.versions == ["v1", "v2"]
    v1, v2 = snap.stats("v1"), snap.stats("v2")
    assert v1 is not None and v2 is not None
    assert v1.rate > 0 and v2.rate > 0
    assert v1.success_ratio == pytest.approx(1.0)
    assert v2.success_ratio is not None and v2.success_ratio < v1.success_ratio
    assert 0.4 < v2.success_ratio < 0.95  # 30 % injected errors, on 150 requests
    for stats in (v1, v2):
        assert stats.p50 is not None and stats.p95 is not None and stats.p99 is not None
        assert 0 < stats.p50 <= stats.p95 <= stats.p99 < 10
    assert {s.version for s in snap.p99} == {"v1", "v2"}
    assert all(s.values for s in snap.rate + snap.success + snap.p99)
    # Range series carry unix seconds within the range.
    first_t = snap.rate[0].points[0][0]
    assert snap.start.timestamp() <= first_t <= snap.end.timestamp()
    assert set(snap.expressions) == {"rate", "success", "p50", "p95", "p99"}


async def test_a_range_without_samples_is_no_traffic(stack: Stack) -> None:
    before = stack.load_started - timedelta(hours=2)
    snap = await Prometheus(stack.prom.url, timeout=5).snapshot("1h", now=before)
    assert not snap.has_traffic
    assert snap.rate == [] and snap.success == [] and snap.p99 == []
    assert all(s.success_ratio is None for s in snap.latest)
    png = render_chart(snap)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


async def test_chart_of_the_live_snapshot(stack: Stack, tmp_path: Path) -> None:
    snap = await Prometheus(stack.prom.url, timeout=5).snapshot("15m")
    markers = [Marker(at=stack.load_started, label="canary v2 10%", kind="canary")]
    png = await render_chart_async(snap, markers=markers, stable_version="v1", canary_version="v2")
    path = tmp_path / "status.png"
    path.write_bytes(png)
    image = imread(path)
    assert (image.shape[1], image.shape[0]) == pixel_size("all") == (1200, 900)
    fig = build_figure(snap, markers=markers, stable_version="v1", canary_version="v2")
    assert len(fig.axes) == 3
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["v1 (stable)", "v2 (canary)"]
    assert "15m" in fig.get_suptitle() and "UTC" in fig.get_suptitle()


async def test_dashboard_expressions_are_accepted_by_prometheus(stack: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) == 5
    for expr in exprs:
        concrete = expr.replace("$version", ".*").replace("$__rate_interval", "1m")
        answer = _query(stack.prom.url, concrete)
        assert answer["status"] == "success", (concrete, answer)
        assert answer["data"]["result"], f"no data for {concrete}"
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "version")
    query = variable["query"]["query"]
    metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", query).groups()
    versions = {r["metric"][label] for r in _query(stack.prom.url, metric)["data"]["result"]}
    assert versions == {"v1", "v2"}


def test_targets_change_at_run_time(stack: Stack) -> None:
    def active() -> set[str]:
        with urllib.request.urlopen(f"{stack.prom.url}/api/v1/targets", timeout=5) as answer:
            data = json.loads(answer.read())["data"]["activeTargets"]
        return {t["labels"]["track"] for t in data}

    assert active() == {"stable", "canary"}
    original = [
        (stack.v1.url.removeprefix("http://"), {"track": "stable"}),
        (stack.v2.url.removeprefix("http://"), {"track": "canary"}),
    ]
    try:
        stack.prom.set_targets([*original, (stack.prom.url.removeprefix("http://"), {"track": "self"})])
        _wait_until(lambda: "self" in active(), deadline_seconds=20, what="the new target to appear")
    finally:
        stack.prom.set_targets(original)


async def test_bad_query_is_reported_as_such(stack: Stack) -> None:
    broken = MetricNames(route_filter='route=~"("')  # an invalid regular expression
    with pytest.raises(MetricsUnavailable, match=r"^metrics unavailable: bad query$"):
        await Prometheus(stack.prom.url, timeout=5, names=broken).snapshot()


async def test_something_else_than_prometheus_is_refused(stack: Stack) -> None:
    """A URL that answers HTTP but is not Prometheus (here: helloworld itself)."""
    client = Prometheus(stack.v1.url, timeout=5)
    with pytest.raises(MetricsUnavailable, match=r"^metrics unavailable: Prometheus answered HTTP 404$"):
        await client.snapshot()
    with pytest.raises(MetricsUnavailable, match=r"^metrics unavailable: Prometheus answered HTTP 404$"):
        await client.check()


async def test_prometheus_stopped_mid_test() -> None:
    server = PrometheusServer(scrape_interval="1s")
    await server.start()
    client = Prometheus(server.url, timeout=2)
    try:
        assert (await client.snapshot("15m")).range == "15m"
    finally:
        server.stop()
    assert not server.running
    # a deadline well past the client's timeout only guards against a hang; the message says why
    with pytest.raises(MetricsUnavailable, match=r"^metrics unavailable: connection refused$"):
        await asyncio.wait_for(client.snapshot("15m"), timeout=client.timeout * 5)
    with pytest.raises(MetricsUnavailable, match="connection refused"):
        await asyncio.wait_for(client.check(), timeout=client.timeout * 5)


async def test_black_holed_prometheus_times_out(black_hole: str) -> None:
    client = Prometheus(black_hole, timeout=0.5)
    # the client gives up by itself (its own timeout, named in the message) long before this guard
    with pytest.raises(MetricsUnavailable, match=r"^metrics unavailable: timed out after 0\.5 s$"):
        await asyncio.wait_for(client.snapshot(), timeout=10)
    with pytest.raises(MetricsUnavailable, match=r"timed out after 0\.5 s"):
        await asyncio.wait_for(client.check(), timeout=10)
