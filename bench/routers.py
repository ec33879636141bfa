"""Both traffic routers setting the canary's share through the real client against the emulated API server.

For each router (Emissary's Mappings; a Gateway API HTTPRoute's rule) a walk of shares is set ``--rounds``
times, then the same walk again with the route's owner editing the route once per change, right after the
router's first read (the Gateway API router's JSON patch then fails its ``test``, and it reads again).
Prints, per router, the median and p95 time of one change and the API requests one change costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cluster.kube import Cluster
from bot.core.config import Config, Traffic
from sandbox.kube import KubeEmulator
from sandbox.stack import MANIFESTS

WALK = (10, 25, 50, 75, 0)
ROUTERS = {"emissary": Traffic(), "gateway-api": Traffic(router="gateway-api", route="helloworld", rule="split",
                                                         stable_service="helloworld",
                                                         canary_service="helloworld-canary")}


async def measure(name: str, traffic: Traffic, rounds: int, racing: bool, folder: Path) -> None:
    async with KubeEmulator() as emu:
        emu.seed(MANIFESTS)
        for doc in yaml.safe_load_all((MANIFESTS / "gateway-api" / "httproute.yaml").read_text()):
            emu.apply(doc)
        kubeconfig = emu.write_kubeconfig(folder / f"kubeconfig-{name}", namespace="hello")
        config = Config(slack_bot_token="x", slack_signing_secret="s", kubeconfig=str(kubeconfig), namespace="hello",
                        traffic=traffic)
        cluster = await Cluster.connect(config)
        api = cluster.api
        call = api.call
        calls = 0
        port = 8080
        edited = [False]  # once per change

        async def counted(verb: str, kind: str, obj: str | None, fn: Any, *args: Any, **kwargs: Any) -> dict:
            nonlocal calls, port
            calls += 1
            result = await call(verb, kind, obj, fn, *args, **kwargs)
            if racing and verb == "get" and not edited[0]:  # the owner edits the route right after the first read
                edited[0] = True
                port = 8081 if port == 8080 else 8080
                if traffic.router == "gateway-api":
                    route = emu.get("gateway.networking.k8s.io", "v1", "httproutes", "hello", "helloworld")
                    route["spec"]["rules"][0]["backendRefs"][0]["port"] = port
                else:
                    route = emu.get("getambassador.io", "v3alpha1", "mappings", "hello", "helloworld-canary")
                    route["spec"]["timeout_ms"] = port
                emu.apply(route)
            return result

        api.call = counted  # type: ignore[method-assign]
        times: list[float] = []
        try:
            for _ in range(rounds):
                for share in WALK:
                    edited[0] = False
                    start = time.perf_counter()
                    await cluster.traffic.set_canary_share(share)
                    times.append(time.perf_counter() - start)
        finally:
            await cluster.close()
        changes = rounds * len(WALK)
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        print(f"{name:12} {'racing' if racing else 'alone':7} {changes:5d} changes  median "
              f"{statistics.median(times) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms  "
              f"{calls / changes:4.1f} requests per change")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for racing in (False, True):
            for name, traffic in ROUTERS.items():
                await measure(name, traffic, args.rounds, racing, Path(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
