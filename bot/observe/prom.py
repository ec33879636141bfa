"""Prometheus queries for the release status: per-version request rate, success ratio and latency.

Everything here returns plain dataclasses (:class:`Snapshot`, :class:`Series`, :class:`VersionStats`);
nothing knows about Slack or charts. The PromQL is built in one place (:func:`build_expressions`) so the
bot, the Grafana dashboard (``manifests/monitoring/dashboards/helloworld.json``) and the links to
Prometheus's graph page all show the same numbers.

Two metric presets exist (see :class:`bot.config.MetricNames`):

* ``helloworld``: the service's own ``helloworld_requests_total{route,method,status,version}`` and
  ``helloworld_request_duration_seconds`` histogram. The success ratio is the share of requests whose
  ``status`` is not ``5xx``.
* ``envoy``: Emissary's Envoy statistics. ``envoy_cluster_upstream_rq_total`` carries no response code,
  so the success ratio is computed from ``envoy_cluster_upstream_rq_xx`` (label
  ``envoy_response_code_class``: ``"2"``, ``"5"``, ...) as the share of classes other than ``5``.
  Envoy measures ``upstream_rq_time`` in milliseconds; the quantiles are divided by 1000 so both presets
  report seconds. The "version" is the Envoy cluster name (see :func:`envoy_cluster_name`).

A range without samples means "no traffic in this range": ``Snapshot.has_traffic`` is False and
success ratios are ``None`` — never a fabricated 0 % or 100 %. ``NaN``/``Inf`` values become ``None``.
"""

from __future__ import annotations

import asyncio
import math
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException
from requests.adapters import Retry

from bot.core import times
from bot.core.config import RANGES, MetricNames
from bot.core.durations import parse_duration
from bot.core.errors import MetricsUnavailable, UsageError

DEFAULT_RANGE = "1h"
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
MAX_POINTS = 700
_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600)


# --------------------------------------------------------------------------------------------- ranges


def duration_seconds(text: str) -> int:
    """``"15m"`` -> 900 (:func:`bot.core.durations.parse_duration`); ``ValueError`` if it is not a duration."""
    length = parse_duration(text.strip())
    if length is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(length.total_seconds())


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest exact Prometheus duration (``900`` -> ``"15m"``)."""
    whole = max(1, round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def parse_range(text: str | None) -> str:
    """Normalise a user's range (``"1h"``, ``" 7D "``); empty means the default ``1h``.

    Raises :class:`UsageError` listing the accepted forms for anything else.
    """
    value = (text or "").strip().lower() or DEFAULT_RANGE
    if value not in RANGES:
        raise UsageError(
            f"unknown range {text!r}: use one of {', '.join(RANGES)}",
            usage=f"range: {' | '.join(RANGES)} (default {DEFAULT_RANGE})",
        )
    return value


def step_for(range_text: str) -> int:
    """Query step in seconds so a range has at most ~700 points (1h -> 10 s, 7d -> 15 min)."""
    seconds = duration_seconds(parse_range(range_text))
    wanted = seconds / MAX_POINTS
    for step in _NICE_STEPS:
        if step >= wanted:
            return step
    return _NICE_STEPS[-1]


# ------------------------------------------------------------------------------------- expressions


def envoy_cluster_name(service: str) -> str:
    """The Envoy cluster Emissary creates for a Mapping's ``service``.

    ``"helloworld-canary:80"`` -> ``"helloworld_canary_80"``; a scheme prefix is dropped and every
    character outside ``[A-Za-z0-9_]`` becomes ``_``.
    """
    value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", service.strip().lower())
    return re.sub(r"[^a-z0-9_]", "_", value)


def _selector(*matchers: str) -> str:
    return "{" + ", ".join(m for m in matchers if m) + "}"


def build_expressions(
    names: MetricNames, *, window: str = "1m", version: str | None = None
) -> dict[str, str]:
    """The PromQL for ``rate``, ``success``, ``p50``, ``p95`` and ``p99``, each ``sum by`` version.

    ``window`` is the ``rate()`` window (``"1m"``, or ``"$__rate_interval"`` for Grafana). ``version``
    narrows to matching versions with ``=~`` (``"$version"`` in the dashboard, ``"v2"`` in links).
    """
    v = names.version_label
    only = f'{v}=~"{version}"' if version else ""
    base = _selector(names.route_filter, only)
    by = f"sum by ({v})"
    out = {"rate": f"{by} (rate({names.requests}{base}[{window}]))"}
    if names.preset == "envoy":
        xx = "envoy_cluster_upstream_rq_xx"
        good = _selector(names.route_filter, only, 'envoy_response_code_class!="5"')
        out["success"] = f"{by} (rate({xx}{good}[{window}])) / {by} (rate({xx}{base}[{window}]))"
        scale = " / 1000"
    else:
        good = _selector(names.route_filter, only, f'{names.status_label}!~"5.."')
        out["success"] = (
            f"{by} (rate({names.requests}{good}[{window}])) / {by} (rate({names.requests}{base}[{window}]))"
        )
        scale = ""
    for key, q in QUANTILES.items():
        out[key] = (
            f"histogram_quantile({q}, sum by (le, {v}) (rate({names.duration_bucket}{base}[{window}])))"
            f"{scale}"
        )
    return out


_QUANTILE_OF = re.compile(r"\s*histogram_quantile\(\s*[0-9.]+\s*,\s*(?P<inner>.+)\)\s*(?P<scale>/\s*1000)?\s*",
                          re.DOTALL)


def bucket_query(exprs: Mapping[str, str]) -> tuple[str, float] | None:
    """The request-duration histogram's bucket counts over the window, ``sum by (le, version)``, and the
    unit of its ``le`` bounds in seconds (``0.001`` for Envoy's milliseconds): the ``buckets`` query if
    there is one, else the histogram inside the ``p99`` query (``histogram_quantile(0.99, <buckets>)``,
    optionally ``/ 1000``). ``None`` when neither says."""
    if "buckets" in exprs:
        return exprs["buckets"], 1.0
    match = _QUANTILE_OF.fullmatch(exprs.get("p99", ""))
    if match is None:
        return None
    return match.group("inner"), 0.001 if match.group("scale") else 1.0


def window_expressions(names: MetricNames, seconds: int) -> dict[str, str]:
    """Counts over the last ``seconds``, ``sum by`` version: requests, errors (5xx), p50 and p99.

    What the canary judge reads: ``increase()`` over the whole window (the evidence since a step
    began), not a rate, so small windows keep their counts. The bucket counts behind p50 and p99 are
    :func:`bucket_query`'s.
    """
    v = names.version_label
    window = f"{max(1, int(seconds))}s"
    if names.window_queries:  # the service's own PromQL (catalogue metrics.queries)
        return {key: string.Template(text).substitute(window=window) for key, text in names.window_queries}
    base = _selector(names.route_filter)
    by = f"sum by ({v})"
    out = {"requests": f"{by} (increase({names.requests}{base}[{window}]))"}
    if names.preset == "envoy":
        bad = _selector(names.route_filter, 'envoy_response_code_class="5"')
        out["errors"] = f"{by} (increase(envoy_cluster_upstream_rq_xx{bad}[{window}]))"
        scale = " / 1000"
    else:
        bad = _selector(names.route_filter, f'{names.status_label}=~"5.."')
        out["errors"] = f"{by} (increase({names.requests}{bad}[{window}]))"
        scale = ""
    for key in ("p50", "p99"):
        out[key] = (f"histogram_quantile({QUANTILES[key]}, sum by (le, {v}) "
                    f"(increase({names.duration_bucket}{base}[{window}]))){scale}")
    return out


# ------------------------------------------------------------------------------------ data classes


@dataclass(frozen=True)
class WindowCounts:
    """One version's numbers over an analysis window; ``None`` where Prometheus has none.

    ``buckets`` is the request-duration histogram over the window: ``(upper bound in seconds,
    cumulative count)`` by bound, ``+Inf`` last; empty when Prometheus has none.
    """

    version: str
    requests: float | None
    errors: float | None
    p50: float | None
    p99: float | None
    buckets: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are ``(unix seconds, value)``; a value is ``None`` where PromQL gave NaN."""

    version: str
    points: tuple[tuple[float, float | None], ...]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points if v is not None]

    @property
    def last(self) -> float | None:
        for _, value in reversed(self.points):
            if value is not None:
                return value
        return None


@dataclass(frozen=True)
class VersionStats:
    """Figures for one version at the end of the range (over the same window as the chart).

    ``rate`` is requests/s, ``success_ratio`` is 0..1 (``None`` without requests), latencies in seconds.
    """

    version: str
    rate: float
    success_ratio: float | None
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class Snapshot:
    range: str
    start: datetime
    end: datetime
    step: float
    rate: list[Series] = field(default_factory=list)
    success: list[Series] = field(default_factory=list)
    p99: list[Series] = field(default_factory=list)
    latest: list[VersionStats] = field(default_factory=list)
    expressions: dict[str, str] = field(default_factory=dict)

    @property
    def has_traffic(self) -> bool:
        """True when any version served at least one request in the range."""
        return any(v > 0 for s in self.rate for v in s.values) or any(s.rate > 0 for s in self.latest)

    @property
    def versions(self) -> list[str]:
        seen = {s.version for group in (self.rate, self.success, self.p99) for s in group}
        seen.update(s.version for s in self.latest)
        return sorted(seen)

    def stats(self, version: str) -> VersionStats | None:
        return next((s for s in self.latest if s.version == version), None)


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _series(result: Iterable[Mapping[str, Any]], label: str) -> list[Series]:
    out = []
    for item in result:
        version = item.get("metric", {}).get(label) or "unknown"
        points = tuple((float(t), _number(v)) for t, v in item.get("values", ()))
        out.append(Series(version=version, points=points))
    return sorted(out, key=lambda s: s.version)


def _instant(result: Iterable[Mapping[str, Any]], label: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for item in result:
        version = item.get("metric", {}).get(label) or "unknown"
        value = item.get("value") or (None, None)
        out[version] = _number(value[1])
    return out


def _buckets(result: Iterable[Mapping[str, Any]], label: str, unit: float
             ) -> dict[str, tuple[tuple[float, float], ...]]:
    """Bucket counts per version from a ``sum by (le, version)`` answer; bounds in seconds, ``+Inf`` last.
    A version without a ``+Inf`` bucket, or with a NaN count, has no histogram."""
    found: dict[str, list[tuple[float, float]]] = {}
    broken: set[str] = set()
    for item in result:
        metric = item.get("metric", {})
        version = metric.get(label) or "unknown"
        try:
            bound = float(metric.get("le", ""))
        except ValueError:
            broken.add(version)
            continue
        count = _number((item.get("value") or (None, None))[1])
        if count is None or count < 0:
            broken.add(version)
            continue
        found.setdefault(version, []).append((bound * unit if math.isfinite(bound) else bound, count))
    out = {}
    for version, pairs in found.items():
        pairs.sort()
        if version not in broken and pairs and math.isinf(pairs[-1][0]):
            out[version] = tuple(pairs)
    return out


# --------------------------------------------------------------------------------------- the client


def _reason(exc: BaseException, timeout: float) -> str:
    """A short, user-safe reason for a failed request (no URLs with credentials, no stack)."""
    if isinstance(exc, TimeoutError | requests.Timeout):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, PrometheusApiClientException):
        match = re.search(r"HTTP Status Code ([0-9]+)", str(exc), re.ASCII)
        status = int(match.group(1)) if match else 0
        if status in (400, 422):
            return "bad query"
        if status in (401, 403):
            return "access denied"
        return f"Prometheus answered HTTP {status}" if status else "unexpected answer"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"Prometheus answered HTTP {exc.response.status_code}"
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return "unexpected answer"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "Errno 111" in text:
            return "connection refused"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return "unknown host"
        if "timed out" in text.lower():
            return f"timed out after {timeout:g} s"
        return "cannot connect"
    if isinstance(exc, ValueError | KeyError):
        return "unexpected answer"
    return type(exc).__name__


class Prometheus:
    """Asynchronous facade over ``prometheus_api_client.PrometheusConnect``.

    Blocking HTTP runs in worker threads (``asyncio.to_thread``); each public call finishes within
    ``timeout`` seconds or raises :class:`MetricsUnavailable` with a short reason.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        names: MetricNames | None = None,
        min_window: str = "1m",
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.names = names or MetricNames()
        self.min_window = duration_seconds(min_window)

    # -- expressions

    def window_for(self, range_text: str) -> str:
        """The ``rate()`` window for a range: the larger of the minimum window and the step."""
        return format_duration(max(self.min_window, step_for(range_text)))

    def expressions(
        self, range_text: str = DEFAULT_RANGE, *, version: str | None = None, window: str | None = None
    ) -> dict[str, str]:
        """The PromQL the bot runs for ``range_text`` (``window`` overrides, e.g. ``$__rate_interval``)."""
        return build_expressions(self.names, window=window or self.window_for(range_text), version=version)

    # -- HTTP, in threads

    def _client(self) -> Any:
        from prometheus_api_client import PrometheusConnect

        # No retries: a dead Prometheus must fail fast; the caller decides about trying again.
        return PrometheusConnect(url=self.url, retry=Retry(total=0), timeout=self.timeout)

    def _query_range(self, query: str, start: datetime, end: datetime, step: int) -> list[dict]:
        client = self._client()
        try:
            return client.custom_query_range(query, start_time=start, end_time=end, step=str(step))
        finally:
            client.close()

    def _query(self, query: str, at: datetime) -> list[dict]:
        client = self._client()
        try:
            return client.custom_query(query, params={"time": f"{at.timestamp():.3f}"})
        finally:
            client.close()

    def _buildinfo(self) -> dict:
        with requests.Session() as session:
            response = session.get(f"{self.url}/api/v1/status/buildinfo", timeout=self.timeout)
            response.raise_for_status()
            return response.json()["data"]

    async def _bounded(self, *calls: Any) -> list[Any]:
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.gather(*(asyncio.to_thread(*c) for c in calls))
        except (
            TimeoutError, requests.RequestException, PrometheusApiClientException, ValueError, KeyError
        ) as exc:
            raise MetricsUnavailable(f"metrics unavailable: {_reason(exc, self.timeout)}") from exc

    # -- public API

    async def check(self) -> str:
        """One line for ``/hello status`` and ``bot check``: ``ok, Prometheus 2.42.0 at URL``."""
        (info,) = await self._bounded((self._buildinfo,))
        version = str(info.get("version", "?")).split("+")[0]
        return f"ok, Prometheus {version} at {self.url}"

    async def snapshot(self, range_text: str = DEFAULT_RANGE, *, now: datetime | None = None) -> Snapshot:
        """Rate, success ratio and p99 series per version over the range, plus the latest figures."""
        rng = parse_range(range_text)
        end = (now or times.now()).astimezone(UTC)
        start = end - timedelta(seconds=duration_seconds(rng))
        step = step_for(rng)
        exprs = self.expressions(rng)
        ranged = ("rate", "success", "p99")
        instant = ("rate", "success", "p50", "p95", "p99")
        results = await self._bounded(
            *((self._query_range, exprs[k], start, end, step) for k in ranged),
            *((self._query, exprs[k], end) for k in instant),
        )
        label = self.names.version_label
        rate, success, p99 = (_series(r, label) for r in results[:3])
        now_values = dict(zip(instant, (_instant(r, label) for r in results[3:]), strict=True))
        latest = []
        for version in sorted(set().union(*(d.keys() for d in now_values.values()))):
            req_rate = now_values["rate"].get(version) or 0.0
            latest.append(
                VersionStats(
                    version=version,
                    rate=req_rate,
                    success_ratio=now_values["success"].get(version) if req_rate > 0 else None,
                    p50=now_values["p50"].get(version),
                    p95=now_values["p95"].get(version),
                    p99=now_values["p99"].get(version),
                )
            )
        return Snapshot(
            range=rng, start=start, end=end, step=float(step), rate=rate, success=success, p99=p99,
            latest=latest, expressions=exprs,
        )

    async def window(self, seconds: float, *, now: datetime | None = None) -> dict[str, WindowCounts]:
        """Requests, errors and latency quantiles per version over the ``seconds`` before ``now``."""
        at = (now or times.now()).astimezone(UTC)
        exprs = window_expressions(self.names, int(seconds))
        keys = ("requests", "errors", "p50", "p99")
        histogram = bucket_query(exprs)
        queries = [exprs[k] for k in keys] + ([histogram[0]] if histogram else [])
        results = await self._bounded(*((self._query, q, at) for q in queries))
        label = self.names.version_label
        values = dict(zip(keys, (_instant(r, label) for r in results[:4]), strict=True))
        buckets = _buckets(results[4], label, histogram[1]) if histogram else {}
        versions = sorted(set().union(*(d.keys() for d in values.values())))
        out = {}
        for version in versions:
            requests = values["requests"].get(version)
            errors = values["errors"].get(version)
            if requests is not None and errors is None:
                errors = 0.0  # no 5xx series for this version: none counted in the window
            out[version] = WindowCounts(version, requests, errors, values["p50"].get(version),
                                        values["p99"].get(version), buckets.get(version, ()))
        return out
