"""The traffic router: the canary's share set and read back through the real client against the API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cluster.kube import Cluster
from bot.cluster.traffic import TrafficRouter, router_for
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
    router: TrafficRouter = router_for(connected, "helloworld-canary")
    assert router.name == "Mapping helloworld-canary"
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
        await router_for(connected, "helloworld-nope").set_canary_share(10)
