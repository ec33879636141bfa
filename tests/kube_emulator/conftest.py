"""Fixtures: an emulator per test on port 0, reached through the official kubernetes client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config

from sandbox.kube import KubeEmulator

FIXTURES = Path(__file__).parent / "fixtures"
T = TypeVar("T")

FAST = {"tick": 0.02, "pod_ready_seconds": 0.1, "deadline_scale": 0.002, "cert_issue_delay": 0.05}


def wait_for(check: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.02, what: str = "") -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or check}: last value {last!r}")


class Cluster:
    """A running emulator plus typed clients for one token."""

    def __init__(self, emu: KubeEmulator, tmp: Path, token: str | None = None) -> None:
        self.emu = emu
        self.kubeconfig = emu.write_kubeconfig(tmp / f"kubeconfig-{token or 'admin'}", token=token)
        self.api = config.new_client_from_config(str(self.kubeconfig))
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.coordination = client.CoordinationV1Api(self.api)

    def close(self) -> None:
        self.api.close()


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., KubeEmulator]]:
    """Start emulators in their own threads (fast controller settings unless overridden); stop them after."""
    stack: list[Any] = []

    def start(*, seed: bool = True, **options: Any) -> KubeEmulator:
        emu = KubeEmulator(**{**FAST, **options})
        if seed:
            emu.seed(FIXTURES / "app.yaml")
        runner = emu.run_in_thread()
        runner.__enter__()
        stack.append(runner)
        return emu

    yield start
    for runner in reversed(stack):
        runner.__exit__(None, None, None)


@pytest.fixture
def emu(emulator_factory: Callable[..., KubeEmulator]) -> KubeEmulator:
    return emulator_factory()


@pytest.fixture
def kube(emu: KubeEmulator, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(emu, tmp_path)
    yield cluster
    cluster.close()


@pytest.fixture
def wait() -> Callable[..., Any]:
    """The `wait_for(check, timeout=..., what=...)` helper."""
    return wait_for


@pytest.fixture
def cluster_for(emu: KubeEmulator, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Typed clients for another emulator or token: `cluster_for(emu, token=...)`."""
    made: list[Cluster] = []

    def make(target: KubeEmulator | None = None, token: str | None = None) -> Cluster:
        cluster = Cluster(target or emu, tmp_path, token)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()
