"""PromQL for the release status, built in one place: ranges, steps and the expressions per version.

:func:`build_expressions` gives the rate, success ratio and latency quantiles the status, charts, the
Grafana dashboard (``manifests/monitoring/dashboards/helloworld.json``) and the links all show;
:func:`window_expressions` the counts over an analysis window the canary judge reads. Both presets of
:class:`~bot.core.config.MetricNames` are covered: ``helloworld`` (the service's own metrics) and
``envoy`` (Emissary's Envoy statistics; latency in milliseconds divided by 1000, the "version" is the
Envoy cluster name, :func:`envoy_cluster_name`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from bot.core.config import RANGES, MetricNames
from bot.core.durations import parse_duration
from bot.core.errors import UsageError

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
