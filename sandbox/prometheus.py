"""A real Prometheus server on loopback, for the sandbox and the tests.

:class:`PrometheusServer` runs the ``prometheus`` binary (Debian package ``prometheus``) with a
temporary data directory and a generated configuration whose only scrape job reads its targets from a
``file_sd_configs`` file, so targets can be changed while it runs (:meth:`PrometheusServer.set_targets`).

    async with PrometheusServer(scrape_interval="1s") as prom:
        prom.set_targets([("127.0.0.1:8001", {"track": "stable"})])
        print(prom.url)

:func:`check_config` validates a Prometheus configuration file with ``promtool check config`` when it
is installed, and otherwise by starting ``prometheus`` on it and waiting for it to become ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import yaml

INSTALL_HINT = "install it with `apt-get install prometheus` (Debian/Ubuntu) or put it on PATH"


class PrometheusNotInstalled(RuntimeError):
    """The ``prometheus`` binary is not on PATH."""


class PrometheusStartError(RuntimeError):
    """Prometheus exited or did not become ready; the message carries the end of its log."""


class PrometheusConfigError(ValueError):
    """A configuration file was refused; the message carries the checker's output."""


def find_binary(name: str = "prometheus") -> str:
    path = shutil.which(name)
    if not path:
        raise PrometheusNotInstalled(f"the {name!r} binary was not found: {INSTALL_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class PrometheusServer:
    """One ``prometheus`` process. Not started by the constructor: use ``start``/``stop`` or ``with``."""

    def __init__(
        self,
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str | None = None,
        job: str = "helloworld",
        targets: Iterable[tuple[str, Mapping[str, str]]] = (),
        retention: str = "1d",
        binary: str | None = None,
        startup_timeout: float = 20.0,
        config_text: str | None = None,
    ) -> None:
        """``config_text`` replaces the generated configuration verbatim (used by :func:`check_config`)."""
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.job = job
        self.retention = retention
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.config_text = config_text
        self.port = 0
        self._initial = list(targets)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    # -- files

    @property
    def directory(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="prometheus-")
        return Path(self._tmp.name)

    @property
    def targets_file(self) -> Path:
        return self.directory / "targets.json"

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("Prometheus is not started")
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict:
        """The generated configuration (one file-discovered scrape job)."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
                "scrape_timeout": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": "/metrics",
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}],
                }
            ],
        }

    def set_targets(self, targets: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        """Replace the scrape targets: ``[("127.0.0.1:8001", {"track": "stable"}), ...]``.

        The file is rewritten atomically (write + rename); Prometheus watches it and picks the change
        up within a second or two.
        """
        groups = [{"targets": [address], "labels": dict(labels)} for address, labels in targets]
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".targets-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(groups, out)
        os.replace(tmp, self.targets_file)

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self) -> None:
        binary = self.binary or find_binary()
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        self.port = free_port()
        self._log = self.directory / "prometheus.log"
        args = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory
            )

    def _tail(self) -> str:
        if self._log and self._log.exists():
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-15:])
        return ""

    def start_blocking(self) -> PrometheusServer:
        """Start and wait until ``/-/ready`` answers 200 (or raise :class:`PrometheusStartError`)."""
        if self.running:
            return self
        if not self.targets_file.exists():
            self.set_targets(self._initial)
        text = self.config_text or yaml.safe_dump(self.config(), sort_keys=False)
        self.config_file.write_text(text)
        for _attempt in range(3):  # another process may grab the free port between bind and listen
            self._spawn()
            if self._wait_ready():
                return self
            if self._proc is not None and self._proc.poll() is None:
                break
        tail = self._tail()
        self.stop()
        raise PrometheusStartError(f"prometheus did not become ready on 127.0.0.1:{self.port}\n{tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                if _get(f"{self.url}/-/ready", timeout=1.0) == 200:
                    return True
            time.sleep(0.05)
        return False

    async def start(self) -> PrometheusServer:
        """Start without blocking the event loop; returns when Prometheus is ready."""
        return await asyncio.to_thread(self.start_blocking)

    def stop(self) -> None:
        """Terminate Prometheus and wait for it; remove the temporary directory."""
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

    def __enter__(self) -> PrometheusServer:
        return self.start_blocking()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> PrometheusServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def check_config(
    path: str | os.PathLike[str], *, use_promtool: bool | None = None, timeout: float = 20.0
) -> str:
    """Validate a Prometheus configuration file; returns the checker's output, raises if refused.

    With ``use_promtool=None`` ``promtool check config`` is used when installed; ``False`` forces the
    promtool-free check: ``prometheus`` is started on the file (loopback, temporary data directory) and
    must become ready.
    """
    path = Path(path)
    if use_promtool is None:
        use_promtool = shutil.which("promtool") is not None
    if use_promtool:
        done = subprocess.run(
            [find_binary("promtool"), "check", "config", str(path)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise PrometheusConfigError(output)
        return output
    server = PrometheusServer(startup_timeout=timeout, config_text=path.read_text())
    try:
        server.start_blocking()
        return f"prometheus loaded {path.name} and became ready"
    except PrometheusStartError as exc:
        raise PrometheusConfigError(str(exc)) from None
    finally:
        server.stop()
