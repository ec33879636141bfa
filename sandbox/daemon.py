"""A server binary run on loopback for the sandbox and the tests: Prometheus, Alertmanager.

:class:`LoopbackDaemon` owns what they share: a temporary directory, a free port on 127.0.0.1, the
process with its log in that directory, waiting for a readiness URL, stopping it (SIGTERM, then
SIGKILL) and removing the directory. A subclass writes its files (:meth:`LoopbackDaemon.prepare`)
and gives its command line (:meth:`LoopbackDaemon.command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self


def find_binary(*names: str, missing: type[Exception], hint: str) -> str:
    """The path of the first of ``names`` on PATH, or raise ``missing`` with ``hint``."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    wanted = " or ".join(repr(n) for n in names)
    raise missing(f"the {wanted} binary was not found: {hint}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float) -> int:
    """The HTTP status of a GET (error statuses included); raises ``OSError`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class LoopbackDaemon:
    """One server process on 127.0.0.1. Not started by the constructor: ``start``/``stop`` or ``with``."""

    name = "daemon"
    """Used in the temporary directory's prefix, the log file's name and error messages."""
    ready_path = "/-/ready"
    start_error: type[Exception] = RuntimeError

    def __init__(self, *, binary: str | None = None, startup_timeout: float = 20.0) -> None:
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    # -- for subclasses

    def find(self) -> str:
        """The binary to run (``self.binary`` if given)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the configuration into :attr:`directory` before the process starts."""

    def command(self, binary: str, port: int) -> list[str]:
        raise NotImplementedError

    # -- files

    @property
    def directory(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.name}-")
        return Path(self._tmp.name)

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self) -> None:
        binary = self.binary or self.find()
        self.port = free_port()
        self._log = self.directory / f"{self.name}.log"
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(binary, self.port),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory,
            )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the process's log."""
        if self._log and self._log.exists():
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start_blocking(self) -> Self:
        """Start and wait until :attr:`ready_path` answers 200 (or raise :attr:`start_error`)."""
        if self.running:
            return self
        self.prepare()
        for _attempt in range(3):  # another process may grab the free port between bind and listen
            self._spawn()
            if self._wait_ready():
                return self
            if self._proc is not None and self._proc.poll() is None:
                break
        tail = self.log_tail()
        self.stop()
        raise self.start_error(f"{self.name} did not become ready on 127.0.0.1:{self.port}\n{tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                if http_status(f"{self.url}{self.ready_path}", timeout=1.0) == 200:
                    return True
            time.sleep(0.05)
        return False

    async def start(self) -> Self:
        """Start without blocking the event loop; returns when the server is ready."""
        return await asyncio.to_thread(self.start_blocking)

    def stop(self) -> None:
        """Terminate the process and wait for it; remove the temporary directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start_blocking()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
