"""Request metrics with a cheap hot path.

A request is recorded into plain per-route numbers (a few additions and one ``bisect``); the
numbers are moved into prometheus_client's metrics in batches by :meth:`Metrics.flush`, which the
app runs every :data:`FLUSH_SECONDS`, before every ``/metrics`` answer and when the server stops.
prometheus_client's own per-request path (a lock per value, several calls) costs several times
more, and in multiprocess mode each value change is also an mmap write.

Multiprocess mode: prometheus_client picks its value storage when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``. ``python -m helloworld`` sets that variable before importing this
module whenever more than one worker runs (or when it is given), and ``/metrics`` then sums the
files of every worker; another worker's latest requests show up within :data:`FLUSH_SECONDS`.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ROUTE_UNMATCHED = "unmatched"
"""``route`` label of requests that matched no route (404/405 and protocol errors)."""

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the request-duration histogram, in seconds (``+Inf`` is added)."""

FLUSH_SECONDS = 1.0
"""How often recorded requests are moved into prometheus_client's metrics."""

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as they are in the ``method`` label; any other becomes ``OTHER``."""


def multiprocess_dir() -> str | None:
    """The shared metrics directory in use, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class RouteRecorder:
    """Pending counts of one route, not yet flushed. ``record`` is the per-request hot path."""

    __slots__ = ("buckets", "get_ok", "others", "route", "seconds")

    def __init__(self, route: str) -> None:
        self.route = route
        self.get_ok = 0
        self.others: dict[tuple[str, int], int] = {}
        self.seconds = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)

    def record(self, method: str, status: int, seconds: float) -> None:
        """Record one answered request and how long it took."""
        self.seconds += seconds
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        if status == 200 and method == "GET":
            self.get_ok += 1
        else:
            self.count(method, status)

    def count(self, method: str, status: int) -> None:
        """Count one request without a duration (requests that matched no route)."""
        if method not in KNOWN_METHODS:
            method = "OTHER"
        key = (method, status)
        self.others[key] = self.others.get(key, 0) + 1


class Metrics:
    """The service's Prometheus metrics, labelled with its release ``version``."""

    def __init__(self, version: str) -> None:
        self.version = version
        own = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "helloworld_requests",
            "HTTP requests answered, by route template, method, status and release.",
            ["route", "method", "status", "version"],
            registry=own,
        )
        self.duration = Histogram(
            "helloworld_request_duration_seconds",
            "Time to answer an HTTP request, by route template and release.",
            ["route", "version"],
            buckets=BUCKETS,
            registry=own,
        )
        self.build_info = Gauge(
            "helloworld_build_info",
            "Always 1; labelled with the running release.",
            ["version"],
            registry=own,
            multiprocess_mode="max",
        )
        self.build_info.labels(version).set(1)
        self.shared_dir = multiprocess_dir()
        if self.shared_dir:
            self._exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed, path=self.shared_dir)
        else:
            self._exposed = own
        self._recorders: dict[str, RouteRecorder] = {}

    def recorder(self, route: str) -> RouteRecorder:
        """The recorder of ``route`` (a route template or :data:`ROUTE_UNMATCHED`)."""
        recorder = self._recorders.get(route)
        if recorder is None:
            recorder = self._recorders[route] = RouteRecorder(route)
            if route != ROUTE_UNMATCHED:
                # Create the children now so every route shows up (at 0) from the first scrape.
                self.requests.labels(route, "GET", "200", self.version)
                self.duration.labels(route, self.version)
        return recorder

    def flush(self) -> None:
        """Move the pending counts of every route into prometheus_client's metrics."""
        for route, pending in self._recorders.items():
            if pending.get_ok:
                self.requests.labels(route, "GET", "200", self.version).inc(pending.get_ok)
                pending.get_ok = 0
            if pending.others:
                others, pending.others = pending.others, {}
                for (method, status), count in others.items():
                    self.requests.labels(route, method, str(status), self.version).inc(count)
            if pending.seconds or any(pending.buckets):
                _add_observations(self.duration.labels(route, self.version), pending.buckets, pending.seconds)
                pending.buckets = [0] * len(pending.buckets)
                pending.seconds = 0.0

    def exposition(self) -> bytes:
        """Flush, then the text exposition of every metric (all workers' in multiprocess mode)."""
        self.flush()
        try:
            return generate_latest(self._exposed)
        except struct.error:
            # A worker that is just starting may have created its file but not sized it yet.
            return generate_latest(self._exposed)

    content_type = CONTENT_TYPE_LATEST


def _add_observations(child: Histogram, buckets: list[int], seconds: float) -> None:
    """Add pre-counted observations to a histogram child.

    prometheus_client has no public call for adding ``n`` observations to a bucket at once, so this
    uses the child's per-bucket values (``_buckets``, non-cumulative, one per upper bound including
    +Inf) and ``_sum``, as ``Histogram.observe`` itself does. The version is pinned in
    requirements.txt and the tests compare the exposition with the requests sent.
    """
    child._sum.inc(seconds)
    for value, count in zip(child._buckets, buckets, strict=True):
        if count:
            value.inc(count)
