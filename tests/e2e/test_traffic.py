"""The sandbox's helloworld processes follow the Deployments, and the load follows the Mapping weights."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.kube import KubeEmulator
from sandbox.loadgen import LoadGenerator, canary_share, mapping_weights, rps_from_env
from sandbox.processes import Fleet, image_version, process_env, wanted_from


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


async def until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


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


def test_choice_splits_by_share() -> None:
    gen = LoadGenerator(lambda: {"stable": "http://s", "canary": "http://c"}, lambda: 0.1, rps=1,
                        rng=random.Random(7))
    picks = [gen.choose() for _ in range(5000)]
    canary = sum(1 for p in picks if p and p[0] == "canary") / len(picks)
    assert 0.08 < canary < 0.12
    alone = LoadGenerator(lambda: {"stable": "http://s"}, lambda: 0.5, rps=1)
    assert alone.choose() == ("stable", "http://s")
    assert LoadGenerator(dict, lambda: 0.5, rps=1).choose() is None


# ---------------------------------------------------------------------------- real processes

async def test_fleet_follows_deployments_and_load_follows_weights(kube: KubeEmulator) -> None:
    kube.apply(deployment("helloworld", "helloworld:v1", 3))
    kube.apply(deployment("helloworld-canary", "helloworld:v1", 0))
    kube.apply(mapping("helloworld", None))
    kube.apply(mapping("helloworld-canary", 0))
    changes: list[dict[str, str]] = []
    fleet = Fleet(kube, drain_seconds=1)
    fleet.on_change = lambda: changes.append(fleet.versions())
    await fleet.start()
    load = LoadGenerator(fleet.endpoints, lambda: mapping_weights(kube), rps=40)
    try:
        assert fleet.versions() == {"stable": "v1"}, "a canary with 0 replicas has no process"
        assert [labels for _, labels in fleet.targets()] == [{"track": "stable"}]
        first = fleet.current["stable"].running

        # The canary is set to v2 and scaled up: its process starts; the weight sends it a quarter.
        kube.apply(deployment("helloworld-canary", "helloworld:v2", 1))
        kube.apply(mapping("helloworld-canary", 25))
        await until(lambda: fleet.versions().get("canary") == "v2", 30, "the canary process")
        assert {labels["track"] for _, labels in fleet.targets()} == {"stable", "canary"}
        # the cluster's DNS: a Job's load aimed at a track's Service reaches that track's process
        assert kube.dns.resolve("helloworld-canary.hello.svc.cluster.local", "default") == \
            fleet.current["canary"].address
        assert kube.dns.resolve("helloworld", "hello") == fleet.current["stable"].address
        await load.start()
        await until(lambda: sum(load.answered.values()) >= 200, 30, "200 answered requests")
        await load.stop()
        by_track = {t: sum(n for (track, _), n in load.answered.items() if track == t) for t in ("stable", "canary")}
        share = by_track["canary"] / sum(by_track.values())
        assert 0.15 < share < 0.35, by_track
        assert all(status == 200 for (_, status) in load.answered), load.answered

        # A new stable version replaces the old process, which drains and exits.
        kube.apply(deployment("helloworld", "helloworld:v2", 3))
        await until(lambda: fleet.versions().get("stable") == "v2", 30, "the new stable process")
        await asyncio.to_thread(first.process.wait, 20)
        assert first.process.returncode is not None

        # Scaled to 0, the canary has no process any more.
        kube.apply(deployment("helloworld-canary", "helloworld:v2", 0))
        await until(lambda: "canary" not in fleet.versions(), 30, "the canary process to go")
        assert changes[-1] == {"stable": "v2"}
        assert kube.dns.resolve("helloworld-canary", "hello") is None
    finally:
        await load.stop()
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
        await until(lambda: fleet.errors.get("stable") == "v1~bad", 30, "the failed start to be recorded")
        assert fleet.versions() == {"stable": "v1"}
    finally:
        await fleet.stop()
