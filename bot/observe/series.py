"""What Prometheus answers, as plain dataclasses: series, per-version figures, a status snapshot, window counts.

``NaN``/``Inf`` values become ``None``; a range without samples means "no traffic in this range"
(``Snapshot.has_traffic`` is False) and success ratios are ``None`` — never a fabricated 0 % or 100 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


def number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_series(result: Iterable[Mapping[str, Any]], label: str) -> list[Series]:
    out = []
    for item in result:
        version = item.get("metric", {}).get(label) or "unknown"
        points = tuple((float(t), number(v)) for t, v in item.get("values", ()))
        out.append(Series(version=version, points=points))
    return sorted(out, key=lambda s: s.version)


def parse_instant(result: Iterable[Mapping[str, Any]], label: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for item in result:
        version = item.get("metric", {}).get(label) or "unknown"
        value = item.get("value") or (None, None)
        out[version] = number(value[1])
    return out


def parse_buckets(result: Iterable[Mapping[str, Any]], label: str, unit: float
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
        count = number((item.get("value") or (None, None))[1])
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
