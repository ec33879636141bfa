"""Benchmark helloworld's /v1/hello with wrk: metrics on, metrics off, and nginx as a ceiling.

Targets run side by side and rounds alternate between them, so drift on the machine hits all of
them alike; the median of the rounds is reported. Everything listens on 127.0.0.1 only. When the
machine has two or more CPUs, the servers share the last CPU and wrk gets the others, so the load
generator does not steal time from the server under test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tools import ensure
from helloworld.runner import free_port, start

BODY = '{"message":"Hello, world!","version":"v1"}'
NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /v1/hello {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


@dataclass
class Target:
    name: str
    url: str
    pid: int
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    def median_cpu_us(self) -> float:
        return statistics.median(self.cpu_us)

    def median_rps(self) -> float:
        return statistics.median(self.rps)

    def median_p99(self) -> float:
        return statistics.median(self.p99_ms)


def _cpus() -> tuple[set[int], set[int]] | None:
    """(CPUs for wrk, CPUs for the servers), or None when there is only one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return set(cpus[:-1]), {cpus[-1]}


def _wait_ok(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.05)


@contextmanager
def nginx() -> Iterator[tuple[str, int]]:
    binary = ensure("nginx", "nginx-light", also=("/usr/sbin/nginx",))
    tmp = tempfile.mkdtemp(prefix="bench-nginx-")
    port = free_port()
    conf = Path(tmp, "nginx.conf")
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=BODY))
    proc = subprocess.Popen(
        [binary, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ok(f"http://127.0.0.1:{port}/v1/hello")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run_wrk(url: str, args: argparse.Namespace, pin: Callable[[], None] | None) -> tuple[float, float, int]:
    command = [ensure("wrk", "wrk"), f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
               url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, preexec_fn=pin).stdout
    rps = _RPS.search(out)
    p99 = _P99.search(out)
    if not rps or not p99:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if errors:
        raise RuntimeError(f"{url} answered {errors.group(1)} errors during the run")
    total = re.search(r"(\d+) requests in", out)
    count = int(total.group(1)) if total else 0
    return float(rps.group(1)), float(p99.group(1)) * _UNIT_MS[p99.group(2)], count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--no-pin", action="store_true", help="do not split CPUs between wrk and servers")
    args = parser.parse_args(argv)

    cpus = None if args.no_pin else _cpus()
    wrk_pin = (lambda: os.sched_setaffinity(0, cpus[0])) if cpus else None
    shared_metrics = tempfile.mkdtemp(prefix="bench-metrics-")
    with ExitStack() as stack:
        on = stack.enter_context(start("v1", env={"HELLO_METRICS": "on"}))
        on_files = stack.enter_context(
            start("v1", env={"HELLO_METRICS": "on", "PROMETHEUS_MULTIPROC_DIR": shared_metrics})
        )
        off = stack.enter_context(start("v1", env={"HELLO_METRICS": "off"}))
        nginx_url, nginx_pid = stack.enter_context(nginx())
        if cpus:
            for pid in (on.pid, on_files.pid, off.pid, nginx_pid):
                os.sched_setaffinity(pid, cpus[1])
        targets = [
            Target("helloworld, metrics on", f"{on.url}/v1/hello", on.pid),
            Target("helloworld, metrics on, multiprocess files", f"{on_files.url}/v1/hello", on_files.pid),
            Target("helloworld, metrics off", f"{off.url}/v1/hello", off.pid),
            Target("nginx, fixed JSON", f"{nginx_url}/v1/hello", nginx_pid),
        ]
        for target in targets:  # warm-up, not reported
            run_wrk(target.url, argparse.Namespace(**{**vars(args), "seconds": 1}), wrk_pin)
        for round_no in range(1, args.rounds + 1):
            order = targets if round_no % 2 else list(reversed(targets))
            for target in order:
                cpu_before = cpu_seconds(target.pid)
                rps, p99, count = run_wrk(target.url, args, wrk_pin)
                target.rps.append(rps)
                target.p99_ms.append(p99)
                target.cpu_us.append((cpu_seconds(target.pid) - cpu_before) / max(count, 1) * 1e6)
            print(
                f"round {round_no}: " + ", ".join(f"{t.name.split(',', 1)[-1].strip()} {t.rps[-1]:.0f}/s"
                                                  for t in targets),
                file=sys.stderr,
            )
    shutil.rmtree(shared_metrics, ignore_errors=True)

    pinning = f"wrk on CPUs {sorted(cpus[0])}, servers on CPU {sorted(cpus[1])}" if cpus else "no CPU pinning"
    print(
        f"GET /v1/hello, 1 worker, wrk -t{args.threads} -c{args.connections}, "
        f"{args.rounds} alternating rounds x {args.seconds}s, median; {pinning}"
    )
    width = max(len(t.name) for t in targets)
    print(
        f"{'target':<{width}}  {'requests/s':>11}  {'p99 ms':>8}  {'server CPU us/req':>17}   rounds (requests/s)"
    )
    for t in targets:
        rounds = " ".join(f"{r:.0f}" for r in t.rps)
        print(
            f"{t.name:<{width}}  {t.median_rps():>11.0f}  {t.median_p99():>8.2f}  {t.median_cpu_us():>17.1f}"
            f"   {rounds}"
        )
    on_t, files_t, off_t, nginx_t = targets
    print("ratios                                    requests/s   same-round requests/s   by server CPU per request")
    for label, a, b in (
        ("metrics on / off (goal >= 0.90)", on_t, off_t),
        ("metrics on, multiprocess / off", files_t, off_t),
        ("metrics off / nginx", off_t, nginx_t),
    ):
        by_rps = a.median_rps() / b.median_rps()
        paired = statistics.median(x / y for x, y in zip(a.rps, b.rps, strict=True))
        by_cpu = b.median_cpu_us() / a.median_cpu_us()
        print(f"{label:<40}  {by_rps:>10.3f}   {paired:>21.3f}   {by_cpu:>25.3f}")
    print(
        "(same-round: median of the ratios of each round's adjacent runs; by server CPU: CPU time per "
        "request from /proc, inverted, which is steadier than requests/s when other work shares the machine.)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
