"""The sandbox's HAProxy following the bot's traffic routers, and what it costs a request.

One emulated cluster, a real helloworld process per track (v1 stable, v2 canary), one HAProxy with a backend
per router, and the sandbox's controller (``sandbox.gateway.ProxyRoutes``) for each. For each router
(Emissary's Mappings; a Gateway API HTTPRoute's rule) the bot's own router sets a walk of shares ``--rounds``
times; each change is timed from the router's write until HAProxy's ``show stat`` reports the new weights.
Then ``wrk`` (installed with apt-get when missing) sends ``--seconds`` of requests at concurrency 8 to the
stable process directly and through HAProxy at 25%, and the canary's share of what HAProxy sent is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tools import ensure
from bot.cluster.kube import Cluster
from bot.core.config import Config, Traffic
from sandbox.gateway import ProxyRoutes, route_weights
from sandbox.haproxy import HAProxyServer
from sandbox.kube import KubeEmulator
from sandbox.processes import Fleet
from sandbox.stack import seed_split

NS = "hello"
WALK = (10, 25, 50, 75, 0)
ROUTERS = {"emissary": Traffic(), "gateway-api": Traffic(router="gateway-api", route="helloworld", rule="split",
                                                         stable_service="helloworld",
                                                         canary_service="helloworld-canary")}


async def poll(check: Callable[[], Awaitable[bool]], pause: float) -> None:
    """Until ``check()`` holds, looking every ``pause`` seconds."""
    for _ in itertools.count():
        if await check():
            return
        await asyncio.sleep(pause)


async def weights(proxy: HAProxyServer, backend: str) -> dict[str, int]:
    return {s.server: s.weight for s in await proxy.stats() if s.backend == backend}


async def at(proxy: HAProxyServer, backend: str, share: int) -> bool:
    return await weights(proxy, backend) == {"stable": 100 - share, "canary": share}


async def follow(cluster: Cluster, proxy: HAProxyServer, backend: str, rounds: int) -> list[float]:
    """Seconds from each share's write to HAProxy reporting it."""
    lags: list[float] = []
    for _ in range(rounds):
        for share in WALK:
            await cluster.traffic.set_canary_share(share)
            start = time.perf_counter()
            await poll(lambda share=share: at(proxy, backend, share), 0.001)
            lags.append(time.perf_counter() - start)
    return lags


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run([ensure("wrk", "wrk"), "-t1", "-c8", f"-d{seconds}s", url], capture_output=True,
                         text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


async def start(kube: KubeEmulator) -> Fleet:
    seed_split(kube, NS)
    fleet = await Fleet(kube, drain_seconds=1).start()
    await poll(lambda: asyncio.sleep(0, set(fleet.endpoints()) == {"stable", "canary"}), 0.05)
    return fleet


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    async with KubeEmulator(tick=0.05, pod_ready_seconds=0.1) as kube, HAProxyServer(list(ROUTERS)) as proxy:
        fleet = await start(kube)
        routes, clusters = [], {}
        try:
            with tempfile.TemporaryDirectory() as folder:
                kubeconfig = kube.write_kubeconfig(Path(folder) / "kubeconfig", namespace=NS)
                for name, traffic in ROUTERS.items():
                    routes.append(await ProxyRoutes(kube, proxy, name, fleet.endpoints,
                                                    route_weights(kube, NS, "helloworld", traffic)).start())
                    clusters[name] = await Cluster.connect(Config(
                        slack_bot_token="x", slack_signing_secret="s", kubeconfig=str(kubeconfig), namespace=NS,
                        traffic=traffic))
                for name, cluster in clusters.items():
                    lags = await follow(cluster, proxy, name, args.rounds)
                    p95 = sorted(lags)[int(0.95 * (len(lags) - 1))]
                    print(f"{name:12} {len(lags):4d} changes  route write -> HAProxy weight: median "
                          f"{statistics.median(lags) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms")
                await clusters["emissary"].traffic.set_canary_share(25)
                await poll(lambda: at(proxy, "emissary", 25), 0.01)
                before = {s.server: s.requests for s in await proxy.stats() if s.backend == "emissary"}
                direct = await asyncio.to_thread(wrk, fleet.endpoints()["stable"] + "/v1/hello", args.seconds)
                proxied = await asyncio.to_thread(wrk, proxy.frontend_url("emissary") + "/v1/hello", args.seconds)
                after = {s.server: s.requests for s in await proxy.stats() if s.backend == "emissary"}
                sent = {server: after[server] - before[server] for server in after}
                print(f"wrk c=8 {args.seconds}s: stable process directly {direct:8.0f} req/s; through HAProxy at 25% "
                      f"{proxied:8.0f} req/s, canary's share of what HAProxy sent "
                      f"{sent['canary'] / max(1, sum(sent.values())):.3f} ({sent})")
        finally:
            for cluster in clusters.values():
                await cluster.close()
            for route in routes:
                await route.stop()
            await fleet.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
