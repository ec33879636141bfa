"""Ack throughput and latency: the bot vs a bare Bolt app on Sanic, side by side in one run.

Fires correctly signed ``/hello help`` slash commands at concurrency 20 with ``wrk`` (installed with
apt-get when missing), alternating rounds between the two servers, and prints acks/s and p50/p99.
Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.tools import ensure  # noqa: E402
from sandbox.slack.client import sign  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    return ensure("wrk", "wrk")


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # answering
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def lua_script(path: Path) -> None:
    body = urllib.parse.urlencode({
        "token": "x", "team_id": "T0001", "team_domain": "bench", "channel_id": "C1", "channel_name": "ops",
        "user_id": "U1", "user_name": "dana", "command": "/hello", "text": "help", "api_app_id": "A0001",
        "response_url": "http://127.0.0.1:9/response/1", "trigger_id": "1.2.3",
    })
    ts = str(int(time.time()))
    sig = sign(SECRET, ts, body)
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["X-Slack-Request-Timestamp"] = "{ts}"\n'
        f'wrk.headers["X-Slack-Signature"] = "{sig}"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.duration,'
        " latency:percentile(50), latency:percentile(99)))\n"
        '  io.write(string.format("ERRORS %d %d\\n", summary.errors.status, summary.errors.timeout))\n'
        "end\n"
    )


CPUS = sorted(os.sched_getaffinity(0))
CLIENT_CPUS = {CPUS[0]}
SERVER_CPUS = set(CPUS[1:]) or {CPUS[0]}


def on_server_cpus() -> None:
    """Run in the child before exec: keep the servers off the load generator's CPU."""
    os.sched_setaffinity(0, SERVER_CPUS)


def on_client_cpus() -> None:
    os.sched_setaffinity(0, CLIENT_CPUS)


def run_wrk(wrk: str, url: str, script: Path, seconds: int, conns: int) -> tuple[float, float, float]:
    out = subprocess.run([wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True, preexec_fn=on_client_cpus).stdout
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", out)
    errors = re.search(r"ERRORS (\d+) (\d+)", out)
    if not m:
        raise RuntimeError(out)
    if errors and int(errors.group(1)):
        raise RuntimeError(f"non-2xx answers during the run: {out}")
    requests, duration_us, p50, p99 = map(int, m.groups())
    return requests / (duration_us / 1e6), p50 / 1000, p99 / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    wrk = ensure_wrk()
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    try:
        slack_port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "sandbox.slack", "--port", str(slack_port),
                                       "--signing-secret", SECRET, "--bot-token", TOKEN], cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        api = f"http://127.0.0.1:{slack_port}/api/"
        wait_http(f"http://127.0.0.1:{slack_port}/_emulator/state")
        env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api,
               "HELLO_LOG_LEVEL": "WARNING", "KUBECONFIG": str(tmp / "none")}
        bot_port, bare_port, pbr_port = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1",
                                       "--port", str(bot_port)], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      preexec_fn=on_server_cpus))
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_bolt.py"), str(bare_port)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      preexec_fn=on_server_cpus))
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_bolt.py"), str(pbr_port),
                                       "process-before-response"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      preexec_fn=on_server_cpus))
        wait_http(f"http://127.0.0.1:{bot_port}/healthz")
        wait_http(f"http://127.0.0.1:{pbr_port}/slack/events")
        wait_http(f"http://127.0.0.1:{bare_port}/slack/events")
        script = tmp / "hello.lua"
        lua_script(script)
        targets = {"hello-chatops": f"http://127.0.0.1:{bot_port}/slack/events",
                   "bare Bolt (default)": f"http://127.0.0.1:{bare_port}/slack/events",
                   "bare Bolt (pbr=True)": f"http://127.0.0.1:{pbr_port}/slack/events"}
        for url in targets.values():  # warm up (auth.test on the first request)
            run_wrk(wrk, url, script, 1, args.connections)
        results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                results[name].append(run_wrk(wrk, url, script, args.seconds, args.connections))
        print(f"signed /hello help, concurrency {args.connections}, {args.rounds} x {args.seconds}s rounds, "
              f"alternating; wrk on CPU {sorted(CLIENT_CPUS)}, servers on CPU {sorted(SERVER_CPUS)}")
        print(f"{'server':<24}{'acks/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        summary = {}
        for name, rows in results.items():
            rps = statistics.median(r[0] for r in rows)
            p50 = statistics.median(r[1] for r in rows)
            p99 = statistics.median(r[2] for r in rows)
            summary[name] = (rps, p99)
            print(f"{name:<24}{rps:>10.0f}{p50:>10.2f}{p99:>10.2f}")
        bot, bare = summary["hello-chatops"], summary["bare Bolt (default)"]
        print(f"throughput ratio hello-chatops / bare: {bot[0] / bare[0]:.2f}x (goal >= 3x); "
              f"hello-chatops p99 {bot[1]:.2f} ms (goal <= 8 ms)")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
