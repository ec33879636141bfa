"""Fixtures for the sandbox tests: the sandbox as a real subprocess, process-tree inspection, Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process, from /proc; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[1]), rest[0]


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``: {pid: command line}."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None and info[1] != "Z":
                parents[int(entry)] = info[0]
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                try:
                    cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = "?"
                found[child] = cmd.strip()
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has already exited)."""
    info = _stat(pid)
    return info is not None and info[1] != "Z"


@dataclass
class SandboxProcess:
    """``python -m bot sandbox`` running as a subprocess; its stdout lines are collected."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def part_url(self, name: str) -> str:
        """The URL printed on the ``ok <name>`` line of the start-up summary ('' when not started)."""
        for line in self.lines:
            match = re.match(rf"\s+ok\s+{re.escape(name)}\s+(http\S+)", line)
            if match:
                return match.group(1)
        return ""

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("ready in"):
                self.ready.set()
        self.ready.set()

    def stop(self, signum: int = signal.SIGINT, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise


def start_sandbox(env: dict[str, str] | None = None) -> SandboxProcess:
    """Start the sandbox on a free port and wait for its 'ready' line (fails with its output if it dies)."""
    port = free_port()
    # The caller's bot settings must not leak in; HELLO_SANDBOX_MANIFESTS (another manifests folder) may.
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("HELLO_", "SLACK_", "PROMETHEUS_")) or k == "HELLO_SANDBOX_MANIFESTS"}
    child_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", str(port)],
        cwd=ROOT, env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    proc = SandboxProcess(process=process, port=port)
    threading.Thread(target=proc.read, daemon=True).start()
    errors: list[str] = []

    def drain_stderr() -> None:
        assert process.stderr is not None
        errors.extend(process.stderr)

    threading.Thread(target=drain_stderr, daemon=True).start()
    started = proc.ready.wait(READY_TIMEOUT) and any(line.startswith("ready in") for line in proc.lines)
    if not started or process.poll() is not None:  # stdout closed without "ready in": it failed to start
        proc.stop(signal.SIGTERM)
        pytest.fail(f"the sandbox did not start (or not within {READY_TIMEOUT:.0f}s):\n{proc.output}\n"
                    f"{''.join(errors)[-3000:]}")
    proc.stderr_lines = errors  # type: ignore[attr-defined]
    if not proc.part_url("console") or re.search(r"^\s+--\s+helloworld", proc.output, re.M):
        proc.stop(signal.SIGTERM)
        pytest.fail("the sandbox started no helloworld process: the seeded manifests define no helloworld "
                    f"Deployment (manifests/helloworld/)\n{proc.output}")
    return proc


@pytest.fixture
def sandbox_process() -> Iterator[SandboxProcess]:
    proc = start_sandbox()
    try:
        yield proc
    finally:
        if proc.process.poll() is None:
            proc.stop(signal.SIGTERM)


def get_json(url: str, timeout: float = 5.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict[str, object], timeout: float = 10.0) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def prometheus_rate(prometheus_url: str, track: str | None = None) -> float:
    """The request rate Prometheus sees now (one track's, or all)."""
    selector = f'{{track="{track}"}}' if track else ""
    query = urllib.parse.urlencode({"query": f"sum(rate(helloworld_requests_total{selector}[1m]))"})
    data = get_json(f"{prometheus_url}/api/v1/query?{query}")
    result = data["data"]["result"]  # type: ignore[index]
    return float(result[0]["value"][1]) if result else 0.0


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not up yet: keep trying until the deadline
            last = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last})" if last else ""))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: install it with `apt-get install chromium` "
                    "(the README's test command does); the browser test needs it")
    return CHROMIUM


class Tools:
    """The helpers above, for test modules (``--import-mode=importlib`` keeps conftest unimportable)."""

    free_port = staticmethod(free_port)
    descendants = staticmethod(descendants)
    alive = staticmethod(alive)
    get_json = staticmethod(get_json)
    post_json = staticmethod(post_json)
    prometheus_rate = staticmethod(prometheus_rate)
    wait_until = staticmethod(wait_until)
    artifacts = ARTIFACTS
    chromium_args = CHROMIUM_ARGS


@pytest.fixture(scope="session")
def tools() -> type[Tools]:
    return Tools


@pytest.fixture
def launch_sandbox() -> Iterator[object]:
    """``launch_sandbox(env=None) -> SandboxProcess``; every sandbox started is stopped afterwards."""
    started: list[SandboxProcess] = []

    def launch(env: dict[str, str] | None = None) -> SandboxProcess:
        proc = start_sandbox(env)
        started.append(proc)
        return proc

    yield launch
    for proc in started:
        if proc.process.poll() is None:
            proc.stop(signal.SIGTERM)
