"""Time from a signed ``/hello status`` to its chart upload completing in the Slack emulator.

Runs against the emulated cluster (``sandbox.stack.Stack``) and the real Prometheus scraping real
helloworld processes (v1 stable, v2 canary) under a small load. Prints each run and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helloworld.runner import start
from sandbox.prometheus import PrometheusServer
from sandbox.stack import Stack


def load(urls: list[str], stop: threading.Event, rps: float = 40) -> None:
    """A bounded loopback load: ``rps`` GETs per second until ``stop`` is set."""
    i = 0
    while not stop.is_set() and i < 100_000:
        try:
            urllib.request.urlopen(f"{urls[i % len(urls)]}/v1/hello", timeout=2).read()
        except OSError:
            pass
        i += 1
        time.sleep(1 / rps)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup-seconds", type=float, default=8)
    args = parser.parse_args()
    v1 = start("v1")
    v2 = start("v2", env={"HELLO_FAULT_ERROR_RATE": "0.2"})
    stop = threading.Event()
    loader = threading.Thread(target=load, args=([v1.url, v1.url, v1.url, v2.url], stop), daemon=True)
    try:
        targets = [(f"127.0.0.1:{v1.port}", {"track": "stable"}), (f"127.0.0.1:{v2.port}", {"track": "canary"})]
        async with PrometheusServer(scrape_interval="1s", targets=targets) as prom, \
                Stack(prometheus_url=prom.url) as stack:
            loader.start()
            await asyncio.sleep(args.warmup_seconds)  # let Prometheus collect a few scrapes
            slack = stack.slack
            timings = []
            for _ in range(args.runs + 1):
                before = len(slack.files)
                t0 = time.perf_counter()
                await stack.command("U3", "/hello status")
                deadline = t0 + 30
                while len(slack.files) <= before:
                    if time.perf_counter() > deadline:
                        raise RuntimeError("no chart was uploaded within 30 s")
                    await asyncio.sleep(0.005)
                timings.append(time.perf_counter() - t0)
                await stack.settle()
            print("/hello status -> chart upload completed (emulated cluster, real Prometheus)")
            cold, timings = timings[0], timings[1:]
            print(f"first run (cold: imports of the kubernetes models and matplotlib): {cold:.3f} s")
            print("warm runs (s): " + ", ".join(f"{t:.3f}" for t in timings))
            print(f"median {statistics.median(timings):.3f} s, min {min(timings):.3f} s, max {max(timings):.3f} s "
                  "(goal: median < 1.5 s)")
    finally:
        stop.set()
        v1.stop()
        v2.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
