"""/metrics against real processes: counters and histograms move, labels stay bounded, workers add up."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from helloworld.metrics import BUCKETS
from helloworld.runner import Running, start

from .conftest import RELEASE, scrape, value, wait_until

REQUESTS = "helloworld_requests_total"
DURATION = "helloworld_request_duration_seconds"


def test_counters_and_histogram_move_after_requests(hw_service: Running, hw_client: httpx.Client) -> None:
    before = scrape(hw_service.url)
    for _ in range(3):
        assert hw_client.get("/v1/hello").status_code == 200
    hw_client.get("/v2/hello", params={"name": "x" * 65})
    hw_client.get("/nowhere")
    hw_client.get("/v9/hello")
    hw_client.post("/v1/hello")
    after = scrape(hw_service.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": "/v1/hello", "method": "GET", "status": "200", "version": RELEASE}
    assert moved(REQUESTS, **ok) == 3
    assert moved(REQUESTS, route="/v2/hello", method="GET", status="400", version=RELEASE) == 1
    assert moved(REQUESTS, route="unmatched", method="GET", status="404", version=RELEASE) == 2
    assert moved(REQUESTS, route="unmatched", method="POST", status="405", version=RELEASE) == 1
    assert moved(f"{DURATION}_count", route="/v1/hello", version=RELEASE) == 3
    assert moved(f"{DURATION}_sum", route="/v1/hello", version=RELEASE) > 0
    assert value(after, "helloworld_build_info", version=RELEASE) == 1
    # Label cardinality stays bounded: no series is labelled with a raw path.
    routes = {dict(labels)["route"] for (name, labels) in after if name == REQUESTS}
    assert routes <= {"/v1/hello", "/v2/hello", "/healthz", "/readyz", "/metrics", "unmatched"}


def test_histogram_buckets_span_half_a_millisecond_to_ten_seconds(hw_service: Running) -> None:
    samples = scrape(hw_service.url)
    bounds = sorted(
        float(dict(labels)["le"])
        for (name, labels) in samples
        if name == f"{DURATION}_bucket" and dict(labels)["route"] == "/v1/hello"
    )
    assert bounds[0] == 0.0005
    assert bounds[-2] == 10.0
    assert bounds[-1] == float("inf")
    assert tuple(bounds[:-1]) == BUCKETS


def test_unknown_methods_do_not_make_new_label_values(hw_service: Running, hw_client: httpx.Client) -> None:
    hw_client.request("BREW", "/v1/hello")
    samples = scrape(hw_service.url)
    methods = {dict(labels)["method"] for (name, labels) in samples if name == REQUESTS}
    assert "BREW" not in methods
    assert "OTHER" in methods


def test_two_workers_add_up() -> None:
    with start("v2", workers=2, access_log=True, drain_seconds=2) as service:
        sent = 0
        pids: set[int] = set()
        with httpx.Client(base_url=service.url, timeout=10, headers={"connection": "close"}) as client:
            # Fresh connections, until both workers have answered (seen in the access log).
            while len(pids) < 2 and sent < 200:
                for _ in range(10):
                    assert client.get("/v1/hello").status_code == 200
                    sent += 1
                lines = [json.loads(x) for x in service.stdout_text().splitlines() if x.startswith("{")]
                pids = {line["pid"] for line in lines if line["url"].endswith("/v1/hello")}
        assert len(pids) == 2, "the requests never reached the second worker"
        ok = {"route": "/v1/hello", "method": "GET", "status": "200", "version": "v2"}
        wait_until(
            lambda: value(scrape(service.url), REQUESTS, **ok) == sent,
            what=f"{sent} requests counted across both workers",
        )
        # Whichever worker answers the scrape, the sum is the same.
        for _ in range(6):
            samples = scrape(service.url)
            assert value(samples, REQUESTS, **ok) == sent
            assert value(samples, f"{DURATION}_count", route="/v1/hello", version="v2") == sent
            assert value(samples, "helloworld_build_info", version="v2") == 1


def test_fault_error_rate_one_answers_500_and_counts_them() -> None:
    with start("v2", env={"HELLO_FAULT_ERROR_RATE": "1.0"}, drain_seconds=1) as service:
        for path in ("/v1/hello", "/v2/hello", "/v1/hello"):
            answer = httpx.get(f"{service.url}{path}", timeout=10)
            assert answer.status_code == 500
            assert "injected fault" in answer.json()["error"]
        assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
        samples = scrape(service.url)
        assert value(samples, REQUESTS, route="/v1/hello", method="GET", status="500", version="v2") == 2
        assert value(samples, REQUESTS, route="/v2/hello", method="GET", status="500", version="v2") == 1
        assert value(samples, REQUESTS, route="/v1/hello", method="GET", status="200", version="v2") == 0


def test_metrics_can_be_switched_off() -> None:
    with start("v1", env={"HELLO_METRICS": "off"}, drain_seconds=1) as service:
        assert httpx.get(f"{service.url}/v1/hello", timeout=10).json()["version"] == "v1"
        answer = httpx.get(f"{service.url}/metrics", timeout=10)
        assert answer.status_code == 404
        assert answer.json()["error"]


def _children_env(pid: int, variable: str) -> set[str]:
    """``variable`` as set in the environments of ``pid``'s child processes (Linux /proc)."""
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            name, _, raw = entry.decode(errors="replace").partition("=")
            if name == variable:
                found.add(raw)
    return found


def test_workers_share_a_temporary_metrics_dir_removed_at_exit() -> None:
    service = start("v1", workers=2, drain_seconds=1)
    try:
        [shared] = _children_env(service.pid, "PROMETHEUS_MULTIPROC_DIR")
        assert Path(shared).is_dir()
        assert list(Path(shared).glob("*.db"))
    finally:
        assert service.stop() == 0
    assert not Path(shared).exists()


def test_given_metrics_dir_is_used_kept_and_cleared_of_stale_files(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    stale = shared / "counter_999999.db"
    stale.write_bytes(b"stale")
    with start("v1", env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}, drain_seconds=1) as service:
        assert not stale.exists()
        httpx.get(f"{service.url}/v1/hello", timeout=10)
        ok = {"route": "/v1/hello", "method": "GET", "status": "200", "version": "v1"}
        assert value(scrape(service.url), REQUESTS, **ok) == 1
        assert list(shared.glob("counter_*.db"))
    assert shared.is_dir()
