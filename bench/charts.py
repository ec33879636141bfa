"""Render time and memory of the status chart for 1h and 7d of 15-second samples, two versions.

Prints, per range: the median render time of N runs (snapshot in, PNG bytes out), the peak of
Python allocations during one render (tracemalloc) and the process's peak RSS so far; then the
7d/1h time ratio. Goals: each render under 400 ms, and 7d within 1.5x of 1h (long series are
downsampled before drawing, so the cost should not grow with the range).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.observe.charts import Marker, render_chart
from bot.observe.prom import Series, Snapshot

STEP = 15.0


def snapshot(range_text: str, seconds: int) -> Snapshot:
    end = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    start = end - timedelta(seconds=seconds)
    count = int(seconds / STEP)
    ts = [start.timestamp() + i * STEP for i in range(count)]

    noise = random.Random(7)

    def wave(base: float, amp: float) -> list[float]:
        """A daily cycle plus 5 % jitter: the shape real traffic has at any zoom level."""
        day = 2 * math.pi / 86400
        return [base + amp * math.sin(t * day) + base * 0.05 * noise.uniform(-1, 1) for t in ts]

    def series(version: str, values: list[float]) -> Series:
        return Series(version, tuple(zip(ts, values, strict=True)))

    return Snapshot(
        range=range_text, start=start, end=end, step=STEP,
        rate=[series("v1", wave(40, 10)), series("v2", wave(4, 1))],
        success=[series("v1", [min(1.0, v) for v in wave(0.99, 0.005)]), series("v2", wave(0.93, 0.02))],
        p99=[series("v1", wave(0.030, 0.01)), series("v2", wave(0.080, 0.03))],
    )


def measure(snap: Snapshot, runs: int) -> dict[str, float]:
    seconds = snap.end - snap.start
    markers = [Marker(snap.start + seconds * 0.3, "deploy v1", "deploy"),
               Marker(snap.start + seconds * 0.6, "canary v2 10%", "canary")]
    kwargs = {"markers": markers, "stable_version": "v1", "canary_version": "v2"}
    render_chart(snap, **kwargs)  # warm-up: fonts, caches
    times, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        png = render_chart(snap, **kwargs)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    tracemalloc.start()
    render_chart(snap, **kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "median": statistics.median(times), "cpu": statistics.median(cpu), "min": min(times),
        "max": max(times), "peak": peak / 2**20, "rss": rss, "png": len(png) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="renders per range (default 15)")
    args = parser.parse_args()
    results = {}
    load = os.getloadavg()[0]
    print(f"load average (1 min) before the run: {load:.2f} on {os.cpu_count()} CPUs")
    for range_text, seconds in (("1h", 3600), ("7d", 7 * 86400)):
        snap = snapshot(range_text, seconds)
        points = len(snap.rate[0].points)
        r = results[range_text] = measure(snap, args.runs)
        print(
            f"{range_text:>3}: {points:6d} points/line x 2 versions x 3 panels | render median "
            f"{r['median'] * 1000:6.1f} ms (min {r['min'] * 1000:.1f}, max {r['max'] * 1000:.1f}, "
            f"n={args.runs}; CPU {r['cpu'] * 1000:.1f} ms) | python peak {r['peak']:5.1f} MiB | "
            f"process max RSS {r['rss']:6.1f} MiB | PNG {r['png']:.0f} KiB"
        )
    ratio = results["7d"]["median"] / results["1h"]["median"]
    cpu_ratio = results["7d"]["cpu"] / results["1h"]["cpu"]
    ok_time = all(r["median"] < 0.400 for r in results.values())
    print(
        f"7d/1h render time ratio: {ratio:.2f} (CPU {cpu_ratio:.2f})  "
        f"(goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'}); "
        f"each render < 400 ms: {'met' if ok_time else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
