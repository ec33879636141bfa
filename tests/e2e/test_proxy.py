"""The sandbox's real HAProxy splits a service's traffic as the bot's router sets it.

One HAProxy, one emulated cluster and one stable and one canary helloworld process for the module. The
bot's own router (Emissary's Mappings, or the Gateway API HTTPRoute's rule) sets the canary's share; the
sandbox's controller (:class:`sandbox.gateway.ProxyRoutes`) sees the route change and sets HAProxy's server
weights through the runtime API; requests sent to HAProxy's frontend are counted by the track that answered
them, and HAProxy's own ``show stat`` counts the same. Each router has its own backend and frontend.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from bot.cluster.kube import Cluster
from bot.core.config import Config, Traffic
from sandbox.gateway import ProxyRoutes, route_weights
from sandbox.haproxy import TRACK_HEADER, HAProxyServer
from sandbox.kube import KubeEmulator
from sandbox.loadgen import LoadGenerator
from sandbox.processes import Fleet
from sandbox.stack import seed_split
from tests.harness.wait import until

NS = "hello"
N = 200  # requests per look: roundrobin serves the weights exactly, the tolerance is for the wording only
GATEWAY = Traffic(router="gateway-api", route="helloworld", rule="split", stable_service="helloworld",
                  canary_service="helloworld-canary")
ROUTERS = {"emissary": Traffic(), "gateway-api": GATEWAY}

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@dataclass
class World:
    kube: KubeEmulator
    proxy: HAProxyServer
    fleet: Fleet
    routes: dict[str, ProxyRoutes]
    clusters: dict[str, Cluster]  # the bot's connection, one per router
    http: aiohttp.ClientSession


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    if shutil.which("haproxy") is None:
        pytest.fail("the haproxy binary is not installed: `./dev.sh setup` installs it (apt-get install haproxy)")
    kube = KubeEmulator(tick=0.05, pod_ready_seconds=0.1)
    await kube.start()
    proxy = HAProxyServer(list(ROUTERS))
    fleet = Fleet(kube, drain_seconds=1)
    routes: dict[str, ProxyRoutes] = {}
    clusters: dict[str, Cluster] = {}
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        seed_split(kube, NS)
        await proxy.start()
        await fleet.start()
        await until(lambda: set(fleet.endpoints()) == {"stable", "canary"}, "both tracks' processes")
        kubeconfig = kube.write_kubeconfig(tmp_path_factory.mktemp("proxy") / "kubeconfig", namespace=NS)
        for name, traffic in ROUTERS.items():
            routes[name] = await ProxyRoutes(kube, proxy, name, fleet.endpoints,
                                             route_weights(kube, NS, "helloworld", traffic),
                                             check_interval=0.5).start()
            config = Config(slack_bot_token="xoxb-test", slack_signing_secret="s", kubeconfig=str(kubeconfig),
                            namespace=NS, traffic=traffic)
            clusters[name] = await Cluster.connect(config)
        fleet.on_change = lambda: [r.nudge() for r in routes.values()]
        yield World(kube, proxy, fleet, routes, clusters, http)
    finally:
        await http.close()
        for cluster in clusters.values():
            await cluster.close()
        for route in routes.values():
            await route.stop()
        await fleet.stop()
        await asyncio.to_thread(proxy.stop)
        await kube.stop()


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def both_tracks(world: World) -> None:
    """Each test starts with helloworld v1 stable and v2 canary running behind both backends."""
    deployment = world.kube.get("apps", "v1", "deployments", NS, "helloworld-canary")
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "helloworld:v2"
    world.kube.apply(deployment)
    await until(lambda: world.fleet.versions() == {"stable": "v1", "canary": "v2"}, "v1 stable and v2 canary")
    for route in world.routes.values():
        await until(lambda route=route: route.applied.get("canary", ("",))[0] == world.fleet.current["canary"].address,
                    f"HAProxy's {route.backend} canary server at the v2 process")


async def send(world: World, router: str, n: int = N) -> tuple[Counter[str], set[str]]:
    """``n`` requests to the router's HAProxy frontend: the count by answering track, and the versions seen."""
    url = world.proxy.frontend_url(router) + "/v1/hello"
    tracks: Counter[str] = Counter()
    versions: set[str] = set()
    for _ in range(n):
        async with world.http.get(url) as response:
            assert response.status == 200, await response.text()
            tracks[response.headers[TRACK_HEADER]] += 1
            versions.add((await response.json())["version"])
    return tracks, versions


async def requests_by_server(world: World, backend: str) -> dict[str, int]:
    return {s.server: s.requests for s in await world.proxy.stats() if s.backend == backend}


async def weights_applied(world: World, router: str, canary: int) -> bool:
    stats = {s.server: s.weight for s in await world.proxy.stats() if s.backend == router}
    return stats == {"stable": 100 - canary, "canary": canary}


@pytest.mark.parametrize("router", list(ROUTERS))
async def test_the_share_the_bot_sets_is_the_share_haproxy_sends(world: World, router: str) -> None:
    cluster = world.clusters[router]
    for percent in (25, 60):
        await cluster.traffic.set_canary_share(percent)
        await until(lambda percent=percent: weights_applied(world, router, percent),
                    f"HAProxy's weights at {100 - percent}/{percent}")
        before = await requests_by_server(world, router)
        tracks, versions = await send(world, router)
        share = tracks["canary"] / N
        assert abs(share - percent / 100) <= 0.1, (percent, tracks)
        assert versions == {"v1", "v2"}  # the canary's share really reached the canary's process
        after = await requests_by_server(world, router)
        # HAProxy's own counters agree with what the answers said
        assert {s: after[s] - before[s] for s in after} == {"stable": tracks["stable"], "canary": tracks["canary"]}


@pytest.mark.parametrize("router", list(ROUTERS))
async def test_at_0_percent_haproxy_sends_the_canary_nothing(world: World, router: str) -> None:
    await world.clusters[router].traffic.set_canary_share(0)
    await until(lambda: weights_applied(world, router, 0), "HAProxy's canary weight at 0")
    tracks, versions = await send(world, router, 50)
    assert tracks == {"stable": 50} and versions == {"v1"}


async def test_a_route_edited_by_hand_moves_haproxy_too(world: World) -> None:
    """Not only the bot: whoever edits the HTTPRoute (kubectl, the owner) is followed, as a gateway would."""
    route = world.kube.get("gateway.networking.k8s.io", "v1", "httproutes", NS, "helloworld")
    refs = route["spec"]["rules"][0]["backendRefs"]
    refs[0]["weight"], refs[1]["weight"] = 1, 3  # relative weights: 75% to the canary
    world.kube.apply(route)
    await until(lambda: weights_applied(world, "gateway-api", 75), "HAProxy's weights at 25/75")


async def test_a_new_canary_version_gets_the_canary_share_and_a_scaled_down_canary_none(world: World) -> None:
    await world.clusters["emissary"].traffic.set_canary_share(50)
    deployment = world.kube.get("apps", "v1", "deployments", NS, "helloworld-canary")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "helloworld:v3"
    world.kube.apply(deployment)
    await until(lambda: world.fleet.versions().get("canary") == "v3", "the canary's new process")
    await until(lambda: world.routes["emissary"].applied["canary"][0] == world.fleet.current["canary"].address,
                "HAProxy's canary server at the new process")
    tracks, versions = await send(world, "emissary", 40)
    assert tracks == {"stable": 20, "canary": 20} and versions == {"v1", "v3"}

    deployment = world.kube.get("apps", "v1", "deployments", NS, "helloworld-canary")
    deployment["spec"]["replicas"] = 0
    world.kube.apply(deployment)
    await until(lambda: "canary" not in world.fleet.versions(), "the canary process to stop")
    await until(lambda: world.routes["emissary"].applied["canary"][0] == "", "HAProxy's canary server in maintenance")
    status = {s.server: s.status for s in await world.proxy.stats() if s.backend == "emissary"}
    assert status["canary"] == "MAINT", status
    tracks, _ = await send(world, "emissary", 20)
    assert tracks == {"stable": 20}  # the weight says half, but there is no canary to send to


async def test_the_sandbox_load_goes_through_haproxy(world: World) -> None:
    await world.clusters["gateway-api"].traffic.set_canary_share(50)
    await until(lambda: weights_applied(world, "gateway-api", 50), "HAProxy's weights at 50/50")
    load = await LoadGenerator(world.proxy.frontend_url("gateway-api"), rps=100).start()
    try:
        await until(lambda: sum(load.answered.values()) >= 40, "40 answered requests")
    finally:
        await load.stop()
    served = load.served()
    assert set(served) == {"stable", "canary"} and min(served.values()) >= 10, served
    assert {status for _, status in load.answered} == {200} and load.failed == 0
