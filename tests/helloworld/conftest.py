"""Fixtures for the helloworld tests: real service processes started through helloworld.runner."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helloworld.runner import Running, start

RELEASE = "v2.1.0"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hw_service() -> Iterator[Running]:
    """One service (release v2.1.0, metrics on, access log on) shared by a module's tests."""
    with start(RELEASE, access_log=True, drain_seconds=2) as running:
        yield running


@pytest.fixture
def hw_client(hw_service: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hw_service.url, timeout=10) as client:
        yield client


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``/metrics`` of ``url`` as {(sample name, labels): value}, parsed by prometheus_client."""
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value, 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
