"""The load of `/hello loadtest` as the bot makes it: its Job manifest (bot.release.load) created in the emulated
cluster, whose pod runs the real `hey` against a real helloworld process; prints what hey measured (read by the
bot's own parser from the pod's log) and how long the Job took from creation to Complete.

    .venv/bin/python -m bench.loadtest [--rps 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bot.core import config as config_module
from bot.release import load
from helloworld import runner
from sandbox.kube import KubeEmulator, kinds


async def measure(rps: int, seconds: int) -> None:
    config = config_module.load({}, require_slack=False)
    with runner.start("v1") as service:
        async with KubeEmulator(tick=0.05) as emu:
            emu.store.create(kinds.lookup("", "namespaces"), None, {"metadata": {"name": config.namespace}})
            emu.dns.register(config.namespace, config.stable_deployment, f"{service.host}:{service.port}")
            manifest = load.job_manifest(config, "bench", "stable", rps=rps, seconds=seconds, path=config.loadtest_path)
            began = time.monotonic()
            emu.apply(manifest)
            name = manifest["metadata"]["name"]
            while True:
                job = emu.get("batch", "v1", "jobs", config.namespace, name) or {}
                held = {c["type"] for c in (job.get("status") or {}).get("conditions") or [] if c["status"] == "True"}
                if held & {"Complete", "Failed"}:
                    break
                await asyncio.sleep(0.05)
            took = time.monotonic() - began
            [pod] = emu.list("", "v1", "pods", config.namespace, label_selector=f"batch.kubernetes.io/job-name={name}")
            run = emu.jobs.log_of(pod, "hey")
            found = load.figures(bytes(run.log).decode() if run else "", seconds)
    print(f"hey at {rps} req/s for {seconds} s against helloworld v1 (Job {sorted(held)[0]} in {took:.1f} s)")
    print(f"  requests {found.requests} (about {rps * seconds} sent), errors {found.errors}")
    print(f"  p50 {load.ms(found.p50)}, p90 {load.ms(found.p90)}, p99 {load.ms(found.p99)}, "
          f"throughput {found.throughput:.1f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    options = parser.parse_args()
    asyncio.run(measure(options.rps, options.seconds))


if __name__ == "__main__":
    main()
