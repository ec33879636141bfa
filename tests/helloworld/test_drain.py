"""SIGTERM: /readyz turns 503 at once, in-flight requests finish, the process exits 0."""

from __future__ import annotations

import signal
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from helloworld.runner import Running, start

from .conftest import wait_until

# With two workers the probe that sees the slow request must reach the same worker: allow more time.
LATENCY_MS = {1: "1500", 2: "3000"}


def _readyz(service: Running) -> httpx.Response:
    return httpx.get(f"{service.url}/readyz", timeout=10)


def _slow_request_in_flight(service: Running, pool: ThreadPoolExecutor) -> Future[httpx.Response]:
    slow = pool.submit(httpx.get, f"{service.url}/v2/hello?name=Slow", timeout=30)
    # The probe counts itself, so 2 means the slow request is being served.
    wait_until(lambda: _readyz(service).json()["in_flight"] >= 2, what="the slow request to be in flight")
    return slow


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_in_flight_requests_then_exits_0(workers: int) -> None:
    service = start("v2", workers=workers, env={"HELLO_FAULT_LATENCY_MS": LATENCY_MS[workers]}, drain_seconds=10)
    try:
        with ThreadPoolExecutor(1) as pool:
            slow = _slow_request_in_flight(service, pool)
            service.signal(signal.SIGTERM)
            wait_until(lambda: _readyz(service).status_code == 503, what="/readyz to turn 503")
            assert _readyz(service).json()["status"] == "draining"
            answer = slow.result(timeout=30)
        assert answer.status_code == 200
        assert answer.json()["message"] == "Hello, Slow!"
        assert service.process.wait(timeout=30) == 0
    finally:
        service.stop(timeout=5)


def test_drain_grace_is_bounded() -> None:
    """A request slower than the grace does not keep the process alive: it is cut, exit is still 0."""
    service = start("v2", env={"HELLO_FAULT_LATENCY_MS": "20000"}, drain_seconds=0.2)
    try:
        with ThreadPoolExecutor(1) as pool:
            slow = _slow_request_in_flight(service, pool)
            service.signal(signal.SIGTERM)
            assert service.process.wait(timeout=15) == 0
            with pytest.raises(httpx.TransportError):
                slow.result(timeout=15)
    finally:
        service.stop(timeout=5)


def test_idle_service_stops_at_once_with_exit_0() -> None:
    service = start("v1", drain_seconds=10)
    assert service.stop(timeout=8) == 0
