"""The sandbox's helloworld processes follow the Deployments; the routes' weights as the sandbox's proxy reads them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.config import Traffic
from sandbox.gateway import canary_share, httproute_weights, mapping_weights, percent
from sandbox.kube import KubeEmulator
from sandbox.loadgen import rps_from_env
from sandbox.processes import Fleet, image_version, process_env, wanted_from
from tests.harness.wait import until


def deployment(name: str, image: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "hello", "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "helloworld", "image": image}]}}},
    }


def mapping(name: str, weight: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hostname": "hello.example.com", "prefix": "/", "service": f"{name}:80"}
    if weight is not None:
        spec["weight"] = weight
    return {"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping",
            "metadata": {"name": name, "namespace": "hello"}, "spec": spec}


@pytest.fixture
async def kube() -> AsyncIterator[KubeEmulator]:
    async with KubeEmulator(tick=0.05, pod_ready_seconds=0.1) as emu:
        emu.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hello"}})
        yield emu


# ---------------------------------------------------------------------------- pure rules

@pytest.mark.parametrize(("stable", "canary", "share"), [
    (None, 10, 0.10),    # the canary's explicit weight; the stable Mapping takes the rest
    (None, 0, 0.0),
    (None, None, 0.5),   # neither weighted: an even split
    (90, 10, 0.10),
    (80, None, 0.20),    # the unweighted canary gets what the stable Mapping leaves
    (None, 100, 1.0),
])
def test_canary_share_follows_emissary_weights(stable: int | None, canary: int | None, share: float) -> None:
    assert canary_share(stable, canary) == pytest.approx(share)


def test_no_canary_mapping_means_no_canary_traffic() -> None:
    assert canary_share(None, None, canary_route=False) == 0.0


def test_relative_weights_become_percentages() -> None:
    assert percent(1, 3) == {"stable": 25, "canary": 75}
    assert percent(100, 0) == {"stable": 100, "canary": 0}
    assert percent(0, 0) == {"stable": 0, "canary": 0}  # nothing to send to: HAProxy answers 503


def httproute(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "helloworld", "namespace": "hello"},
            "spec": {"parentRefs": [{"name": "hello"}], "rules": rules}}


async def test_weights_from_the_emulated_routes(kube: KubeEmulator) -> None:
    kube.apply(mapping("helloworld", None))
    assert mapping_weights(kube, "hello", "helloworld", "helloworld-canary") == {"stable": 100, "canary": 0}
    kube.apply(mapping("helloworld-canary", 30))
    assert mapping_weights(kube, "hello", "helloworld", "helloworld-canary") == {"stable": 70, "canary": 30}
    by_name = Traffic(router="gateway-api", route="helloworld", rule="split", stable_service="helloworld",
                      canary_service="helloworld-canary")
    assert httproute_weights(kube, "hello", by_name) == {"stable": 0, "canary": 0}  # no route: nothing served
    kube.apply(httproute([
        {"backendRefs": [{"name": "other", "port": 80}]},
        {"name": "split", "backendRefs": [{"name": "helloworld-canary", "port": 80, "weight": 1},
                                          {"name": "helloworld", "port": 80}]},  # no weight: 1
    ]))
    assert httproute_weights(kube, "hello", by_name) == {"stable": 50, "canary": 50}
    by_index = Traffic(router="gateway-api", route="helloworld", rule=0, stable_service="helloworld",
                       canary_service="helloworld-canary")
    assert httproute_weights(kube, "hello", by_index) == {"stable": 0, "canary": 0}  # rule 0 sends elsewhere


def test_rate_from_the_environment() -> None:
    assert rps_from_env({}) == 5.0
    assert rps_from_env({"HELLO_SANDBOX_RPS": "12.5"}) == 12.5
    assert rps_from_env({"HELLO_SANDBOX_RPS": "0"}) == 0.0
    for bad in ("fast", "-1", "1000"):
        with pytest.raises(ValueError, match="HELLO_SANDBOX_RPS"):
            rps_from_env({"HELLO_SANDBOX_RPS": bad})


def test_versions_and_faults_from_deployments() -> None:
    assert image_version("registry.example.com:5000/helloworld:v2.1") == "v2.1"
    assert image_version("helloworld") == "latest"
    want = wanted_from(deployment("helloworld-canary", "helloworld:v3-faulty", 0))
    assert want is not None and want.version == "v3-faulty" and not want.active
    assert wanted_from(None) is None
    assert process_env("v3-faulty") == {"HELLO_FAULT_ERROR_RATE": "0.2"}
    assert process_env("v3") == {}


# ---------------------------------------------------------------------------- real processes

async def test_fleet_follows_deployments(kube: KubeEmulator) -> None:
    kube.apply(deployment("helloworld", "helloworld:v1", 3))
    kube.apply(deployment("helloworld-canary", "helloworld:v1", 0))
    kube.apply(mapping("helloworld", None))
    kube.apply(mapping("helloworld-canary", 0))
    changes: list[dict[str, str]] = []
    fleet = Fleet(kube, drain_seconds=1)
    fleet.on_change = lambda: changes.append(fleet.versions())
    await fleet.start()
    try:
        assert fleet.versions() == {"stable": "v1"}, "a canary with 0 replicas has no process"
        assert [labels for _, labels in fleet.targets()] == [{"track": "stable"}]
        first = fleet.current["stable"].running

        # The canary is set to v2 and scaled up: its process starts.
        kube.apply(deployment("helloworld-canary", "helloworld:v2", 1))
        await until(lambda: fleet.versions().get("canary") == "v2", "the canary process", 30)
        assert {labels["track"] for _, labels in fleet.targets()} == {"stable", "canary"}
        # the cluster's DNS: a Job's load aimed at a track's Service reaches that track's process
        assert kube.dns.resolve("helloworld-canary.hello.svc.cluster.local", "default") == \
            fleet.current["canary"].address
        assert kube.dns.resolve("helloworld", "hello") == fleet.current["stable"].address
        assert set(fleet.endpoints()) == {"stable", "canary"}

        # A new stable version replaces the old process, which drains and exits.
        kube.apply(deployment("helloworld", "helloworld:v2", 3))
        await until(lambda: fleet.versions().get("stable") == "v2", "the new stable process", 30)
        await asyncio.to_thread(first.process.wait, 20)
        assert first.process.returncode is not None

        # Scaled to 0, the canary has no process any more.
        kube.apply(deployment("helloworld-canary", "helloworld:v2", 0))
        await until(lambda: "canary" not in fleet.versions(), "the canary process to go", 30)
        assert changes[-1] == {"stable": "v2"}
        assert kube.dns.resolve("helloworld-canary", "hello") is None
    finally:
        pids = [proc.running.process for proc in fleet.current.values()]
        await fleet.stop()
    assert all(p.poll() is not None for p in pids)


async def test_a_version_that_cannot_start_keeps_the_running_one(kube: KubeEmulator) -> None:
    kube.apply(deployment("helloworld", "helloworld:v1", 1))
    fleet = Fleet(kube, drain_seconds=1)
    await fleet.start()
    try:
        # A version helloworld refuses (HELLO_VERSION must be letters, digits and . _ + -).
        kube.apply(deployment("helloworld", "helloworld:v1~bad", 1))
        await until(lambda: fleet.errors.get("stable") == "v1~bad", "the failed start to be recorded", 30)
        assert fleet.versions() == {"stable": "v1"}
    finally:
        await fleet.stop()
