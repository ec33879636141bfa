"""The traffic router: the canary's share set and read back through the real client against the API emulator."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cluster.kube import Cluster
from bot.cluster.traffic import EmissaryMappings, TrafficRouter
from bot.core.config import Config
from bot.core.errors import NotFound
from sandbox.kube import KubeEmulator
from sandbox.stack import MANIFESTS

MAPPINGS = ("getambassador.io", "v3alpha1", "mappings")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeEmulator, Cluster]]:
    emulator = KubeEmulator()
    await emulator.start()
    try:
        emulator.seed(MANIFESTS)
        kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace="hello")
        config = Config(slack_bot_token="xoxb-test", slack_signing_secret="s", kubeconfig=str(kubeconfig),
                        namespace="hello")
        connected = await Cluster.connect(config)
        try:
            yield emulator, connected
        finally:
            await connected.close()
    finally:
        await emulator.stop()


async def test_the_router_sets_the_share_once_and_reads_it_back(cluster: tuple[KubeEmulator, Cluster]) -> None:
    emulator, connected = cluster
    router: TrafficRouter = connected.traffic
    assert router.name == "Mapping helloworld-canary"
    assert (await router.stable_route()).mapping == "helloworld"
    before = emulator.get(*MAPPINGS, "hello", "helloworld-canary")["metadata"]["resourceVersion"]
    assert await router.set_canary_share(25) is True
    assert (await router.canary_route()).weight == 25
    mapping = emulator.get(*MAPPINGS, "hello", "helloworld-canary")
    assert mapping["spec"]["weight"] == 25 and mapping["spec"]["prefix"] == "/hello/"  # only the weight changed
    changed = mapping["metadata"]["resourceVersion"]
    assert changed != before
    assert await router.set_canary_share(25) is False  # idempotent: nothing written again
    assert emulator.get(*MAPPINGS, "hello", "helloworld-canary")["metadata"]["resourceVersion"] == changed
    assert await router.set_canary_share(0) is True
    assert (await router.canary_route()).weight == 0


async def test_a_missing_route_is_an_error_that_names_it(cluster: tuple[KubeEmulator, Cluster]) -> None:
    _, connected = cluster
    with pytest.raises(NotFound, match="helloworld-nope"):
        await EmissaryMappings(connected.api, "helloworld", "helloworld-nope").set_canary_share(10)


def test_only_the_routers_reach_the_gateway_objects() -> None:
    """No module but the routers' (bot/cluster/mappings.py, httproutes.py) names the custom-objects API and a
    gateway's group: nothing else reads or patches a Mapping or an HTTPRoute (bot/cluster/access.py only lists
    the verbs the routers need)."""
    root = Path(__file__).resolve().parents[2]
    routers = {root / "bot" / "cluster" / "mappings.py", root / "bot" / "cluster" / "httproutes.py"}
    reaching, reached = [], []
    for path in [*(root / "bot").rglob("*.py"), *(root / "commands").rglob("*.py")]:
        source = path.read_text(encoding="utf-8")
        names = [node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)]
        if any(group in source for group in ("getambassador.io", "gateway.networking.k8s.io")) and any(
                "custom_object" in name for name in names):
            (reached if path in routers else reaching).append(str(path.relative_to(root)))
    assert reaching == []
    assert sorted(reached) == ["bot/cluster/httproutes.py", "bot/cluster/mappings.py"]  # the check sees them


async def test_the_cluster_reads_both_routes_through_its_router(cluster: tuple[KubeEmulator, Cluster]) -> None:
    emulator, connected = cluster
    await connected.traffic.set_canary_share(30)
    stable = emulator.get(*MAPPINGS, "hello", "helloworld")
    stable["spec"]["weight"] = 70
    emulator.apply(stable)
    deployed = await connected.deployed(events=False)
    assert deployed.canary_route == await connected.traffic.canary_route()
    assert deployed.canary_route is not None and deployed.canary_route.weight == 30
    assert deployed.stable_route == await connected.traffic.stable_route()
    assert deployed.stable_route is not None and deployed.stable_route.weight == 70
    assert "stable route" not in deployed.missing and "canary route" not in deployed.missing
