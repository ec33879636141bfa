"""Start real ``python -m helloworld`` processes (for the sandbox and tests).

    with start("v2", env={"HELLO_FAULT_LATENCY_MS": "50"}) as hw:
        httpx.get(f"{hw.url}/v2/hello")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
# Variables of the parent that must not leak into a started service.
_CLEARED_PREFIXES = ("HELLO_", "SANIC_")
_CLEARED = ("PROMETHEUS_MULTIPROC_DIR",)
_POLL_SECONDS = 0.05
_STDERR_SHOWN = 4000
_MANAGER_SETTLE_SECONDS = 0.4
_PORT_ATTEMPTS = 3
READY_LINE = "helloworld worker ready"
"""Logged by each worker once it serves; the runner waits for one per worker."""


class StartError(RuntimeError):
    """The service did not become ready; the message carries its exit code and stderr."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Running:
    """A started helloworld process; stop it with :meth:`stop` or by leaving a ``with`` block."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        host: str,
        port: int,
        version: str,
        stdout: IO[bytes],
        stderr: IO[bytes],
    ) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.version = version
        self.url = f"http://{host}:{port}"
        self._stdout = stdout
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def stdout_text(self) -> str:
        """Everything the process has written to stdout so far (access logs, server logs)."""
        return _read(self._stdout)

    def stderr_text(self) -> str:
        """Everything the process has written to stderr so far."""
        return _read(self._stderr)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the process (if it still runs)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; return the exit code."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(self.process)
                    self.process.wait(5)
            return int(self.process.returncode)
        finally:
            self._stdout.close()
            self._stderr.close()

    def __enter__(self) -> Running:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Running(version={self.version!r}, url={self.url!r}, pid={self.process.pid})"


def _read(stream: IO[bytes]) -> str:
    if stream.closed:
        return ""
    # pread leaves the offset alone: the child writes through the same open file.
    fd = stream.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _child_env(version: str, drain_seconds: float, env: Mapping[str, str] | None) -> dict[str, str]:
    child = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_CLEARED_PREFIXES) and key not in _CLEARED
    }
    child["HELLO_VERSION"] = version
    child["HELLO_DRAIN_SECONDS"] = str(drain_seconds)
    child["PYTHONUNBUFFERED"] = "1"
    path = child.get("PYTHONPATH")
    child["PYTHONPATH"] = _PROJECT_ROOT + (os.pathsep + path if path else "")
    child.update(env or {})
    return child


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(
    version: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    drain_seconds: float = 10,
    access_log: bool = False,
    ready_timeout: float = 30.0,
) -> Running:
    """Start ``python -m helloworld`` reporting release ``version`` and wait until ``/readyz`` is 200.

    ``port`` defaults to a free one (a new one is tried if another process takes it first);
    ``env`` is added to (and overrides) the inherited environment, from which ``HELLO_*``,
    ``SANIC_*`` and ``PROMETHEUS_MULTIPROC_DIR`` are removed first. The process runs in its own
    process group, so a SIGKILL after :meth:`Running.stop`'s timeout also reaches its workers.
    Raises :class:`StartError` with the process's stderr if it exits or is not ready within
    ``ready_timeout`` seconds.
    """
    attempts = 1 if port is not None else _PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return _start_once(
                version,
                host=host,
                port=port if port is not None else free_port(host),
                workers=workers,
                env=env,
                drain_seconds=drain_seconds,
                access_log=access_log,
                ready_timeout=ready_timeout,
            )
        except _PortTaken:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


class _PortTaken(StartError):
    pass


def _start_once(
    version: str,
    *,
    host: str,
    port: int,
    workers: int,
    env: dict[str, str] | None,
    drain_seconds: float,
    access_log: bool,
    ready_timeout: float,
) -> Running:
    chosen = port
    command = [sys.executable, "-m", "helloworld", "--host", host, "--port", str(chosen)]
    command += ["--workers", str(workers)]
    if access_log:
        command.append("--access-log")
    stdout = tempfile.TemporaryFile()
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(
        command,
        env=_child_env(version, drain_seconds, env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    running = Running(process=process, host=host, port=chosen, version=version, stdout=stdout, stderr=stderr)
    deadline = time.monotonic() + ready_timeout
    settled = 0.0
    while True:
        code = process.poll()
        if code is not None:
            text = running.stderr_text()[-_STDERR_SHOWN:]
            running.stop()
            error = _PortTaken if "Address already in use" in text else StartError
            raise error(f"helloworld {version} exited with code {code} before it was ready:\n{text}")
        if _ready(running.url) and running.stdout_text().count(READY_LINE) >= workers:
            if workers == 1:
                return running
            # Sanic's worker manager polls for the workers' start-up acknowledgements every 0.1 s,
            # and a SIGTERM that arrives during that poll leaves it waiting forever (Sanic 25.12).
            # Give it a few polls after the last worker said it was ready.
            settled = settled or time.monotonic() + _MANAGER_SETTLE_SECONDS
            if time.monotonic() >= settled:
                return running
        if time.monotonic() > deadline:
            text = running.stderr_text()[-_STDERR_SHOWN:]
            running.stop(timeout=2)
            raise StartError(
                f"helloworld {version} was not ready on {running.url} within {ready_timeout:.0f}s:\n{text}"
            )
        time.sleep(_POLL_SECONDS)
