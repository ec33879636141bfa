"""Load as Kubernetes Jobs running `hey`, and what `hey` measured (pure: manifests and figures, no I/O).

A load test puts ``rps`` requests per second on a track's own Service (not through the gateway: the traffic
split is untouched) for ``seconds``, with `hey` in a Job (:func:`job_manifest`): ``hey -z <seconds>s -c <workers>
-q <rate per worker> -o csv <url>``. Its CSV (one row per response: ``response-time`` in seconds, ...,
``status-code``, ``offset`` from the start) is the pod's log; :func:`figures` reads it into requests, errors,
p50/p90/p99 and throughput. `hey` leaves out of its CSV the requests that got no response at all (refused,
timed out): those show as the gap between the requests made and ``rps × seconds``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from bot.core.config import Config

MANAGED = "app.kubernetes.io/managed-by"
LOAD_LABEL = "hello-chatops.dev/load"  # the release whose load it is
TRACK_LABEL = "hello-chatops.dev/track"
SERVICE_LABEL = "hello-chatops.dev/service"  # the stable Deployment's name: whose load it is
ANALYSIS_LABEL = "hello-chatops.dev/analysis-step"  # the load of an analysed step (its index), not a load test
GRACE_SECONDS = 60  # activeDeadlineSeconds beyond the load's own duration (pulling the image, starting)
MAX_WORKERS = 10


def service_of(config: Config, track: str) -> str:
    """The track's Service: named as its Deployment (``helloworld``, ``helloworld-canary``)."""
    return config.stable_deployment if track == "stable" else config.canary_deployment


def url(config: Config, track: str, path: str) -> str:
    return f"http://{service_of(config, track)}.{config.namespace}.svc.cluster.local{path}"


def job_name(release_id: str, track: str) -> str:
    return f"hello-load-{release_id}-{track}"[:63]


def hey_command(rps: int, seconds: int, target: str) -> list[str]:
    """`hey` at ``rps`` in all: ``-q`` is each worker's rate, so the rate is spread over up to 10 workers."""
    workers = max(1, min(MAX_WORKERS, rps))
    rate = f"{rps / workers:g}"
    return ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", rate, "-o", "csv", target]


def job_manifest(config: Config, release_id: str, track: str, *, rps: int, seconds: int, path: str,
                 owner: dict[str, Any] | None = None, name: str = "", labels: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    """The Job of one track's load: ``activeDeadlineSeconds`` past its duration, no retries, owned by
    ``owner`` (the release's record) when given, so that deleting the record deletes it; ``name`` (by
    default :func:`job_name`'s) and more ``labels`` for a load of another kind (the analysis's)."""
    labels = {MANAGED: "hello-chatops", LOAD_LABEL: release_id, TRACK_LABEL: track,
              SERVICE_LABEL: config.stable_deployment, **(labels or {})}
    meta: dict[str, Any] = {"name": name or job_name(release_id, track), "namespace": config.namespace,
                            "labels": labels}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": False}]
    container = {"name": "hey", "image": config.loadtest_image,
                 "command": hey_command(rps, seconds, url(config, track, path)),
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"activeDeadlineSeconds": seconds + GRACE_SECONDS, "backoffLimit": 0,
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"restartPolicy": "Never", "containers": [container]}}}}


@dataclass(frozen=True)
class Figures:
    """What one track's load measured."""

    requests: int  # responses received
    errors: int  # of them, 5xx
    p50: float  # seconds
    p90: float
    p99: float
    throughput: float  # responses per second over the load's duration
    latencies: tuple[tuple[float, float], ...] = ()  # (offset, response time) in seconds, for the chart

    @property
    def error_percent(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0


def quantile(values: list[float], q: float) -> float:
    """The nearest-rank quantile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def figures(text: str, seconds: float) -> Figures:
    """`hey -o csv`'s output read into figures; rows that are not its numbers are left out."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append((float(row["offset"]), float(row["response-time"]), int(row["status-code"])))
        except (KeyError, TypeError, ValueError):
            continue
    latencies = [r[1] for r in rows]
    return Figures(requests=len(rows), errors=sum(1 for r in rows if r[2] >= 500),
                   p50=quantile(latencies, 0.5), p90=quantile(latencies, 0.9), p99=quantile(latencies, 0.99),
                   throughput=len(rows) / seconds if seconds > 0 else 0.0,
                   latencies=tuple(sorted((r[0], r[1]) for r in rows)))


def ms(seconds: float) -> str:
    """``9.9 ms``, ``120 ms``: a tenth of a millisecond below 10 ms."""
    value = seconds * 1000
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def line(track: str, found: Figures, *, expected: int) -> str:
    """``*stable*: 600 requests (of 600 sent), 0 errors (0.0%), p50 3.1 ms · p90 … · 20.0 req/s`` (ASCII numbers)."""
    short = found.requests < 0.9 * expected  # hey's CSV leaves out requests that got no answer
    missing = f" (of about {expected} sent: the rest got no answer)" if short else ""
    return (f"*{track}*: {found.requests} requests{missing}, {found.errors} errors ({found.error_percent:.1f}%), "
            f"p50 {ms(found.p50)} · p90 {ms(found.p90)} · p99 {ms(found.p99)}, {found.throughput:.1f} req/s")
