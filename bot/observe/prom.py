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
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests.adapters import Retry

from bot.core import times
from bot.core.config import MetricNames
from bot.core.errors import MetricsUnavailable
from bot.observe.promql import (
    DEFAULT_RANGE,
    bucket_query,
    build_expressions,
    duration_seconds,
    format_duration,
    parse_range,
    step_for,
    window_expressions,
)
from bot.observe.series import Series, Snapshot, VersionStats, WindowCounts, parse_buckets, parse_instant, parse_series

# The names other modules read from here (the client's own vocabulary), wherever they are defined.
__all__ = [
    "DEFAULT_RANGE",
    "Prometheus",
    "Series",
    "Snapshot",
    "VersionStats",
    "WindowCounts",
    "bucket_query",
    "build_expressions",
    "duration_seconds",
    "parse_range",
    "window_expressions",
]

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
        rate, success, p99 = (parse_series(r, label) for r in results[:3])
        now_values = dict(zip(instant, (parse_instant(r, label) for r in results[3:]), strict=True))
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
        values = dict(zip(keys, (parse_instant(r, label) for r in results[:4]), strict=True))
        buckets = parse_buckets(results[4], label, histogram[1]) if histogram else {}
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
