"""A real HAProxy on loopback: the sandbox's gateway in front of each service's release tracks.

:class:`HAProxyServer` runs Debian's ``haproxy`` with a generated configuration. Each named backend (the
sandbox names them ``<environment>-<service>``) gets a frontend on its own loopback port and two servers,
``stable`` and ``canary``, balanced round-robin by weight; every answer carries the header
``X-Sandbox-Track`` naming the server that gave it. The servers start in maintenance with no address: the
runtime API (a Unix stats socket at level ``admin``) points them at processes and weighs them while
HAProxy runs, with the commands of HAProxy's management guide::

    set server <backend>/<server> addr 127.0.0.1 port 8001
    set server <backend>/<server> state ready        (or maint: no traffic at all)
    set server <backend>/<server> weight 25          (0 to 256; roundrobin applies it at once)
    show stat                                        (CSV: weight, status, req_tot, hrsp_2xx per server)

The daemon's own port serves HAProxy's stats page (``/stats``) and a monitor URI (``/-/ready``)::

    async with HAProxyServer(["staging-helloworld"]) as proxy:
        await proxy.set_server("staging-helloworld", "stable", address="127.0.0.1:8001", weight=100)
        print(proxy.frontend_url("staging-helloworld"), await proxy.stats())
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sandbox.daemon import LoopbackDaemon, find_binary, free_port

INSTALL_HINT = ("install it with `apt-get install haproxy` (Debian/Ubuntu; ./dev.sh does) and have it on PATH "
                "(Debian puts it in /usr/sbin)")
TRACK_HEADER = "X-Sandbox-Track"
SERVERS = ("stable", "canary")
MAX_WEIGHT = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class HAProxyNotInstalled(RuntimeError):
    """The ``haproxy`` binary is not on PATH."""


class HAProxyStartError(RuntimeError):
    """HAProxy exited or did not become ready; the message carries the end of its log."""


class HAProxyError(RuntimeError):
    """The runtime API refused a command; the message carries its answer."""


@dataclass(frozen=True)
class ServerStat:
    """One server's line of ``show stat``."""

    backend: str
    server: str
    status: str  # "no check" (in use, no health check), "MAINT", ...
    weight: int
    requests: int  # req_tot: the HTTP requests HAProxy sent it
    ok: int  # hrsp_2xx


def parse_stat(csv_text: str) -> list[ServerStat]:
    """The servers' lines of ``show stat`` output (its header is a CSV line after ``# ``)."""
    rows = csv.DictReader(io.StringIO(csv_text.lstrip("# ")))
    return [ServerStat(backend=row["pxname"], server=row["svname"], status=row["status"],
                       weight=int(row["weight"] or 0), requests=int(row["req_tot"] or 0), ok=int(row["hrsp_2xx"] or 0))
            for row in rows if row.get("svname") not in (None, "FRONTEND", "BACKEND")]


class HAProxyServer(LoopbackDaemon):
    """One ``haproxy`` process. Not started by the constructor: use ``start``/``stop`` or ``async with``."""

    name = "haproxy"
    ready_path = "/-/ready"
    start_error = HAProxyStartError

    def __init__(self, backends: Iterable[str], *, binary: str | None = None, startup_timeout: float = 20.0,
                 timeout: float = 5.0, reserved: Iterable[int] = ()) -> None:
        """``backends``: their names (letters, digits, ``_ . -``); ``timeout``: of each runtime API command;
        ``reserved``: ports chosen by others but not bound yet, which the frontends must not take."""
        super().__init__(binary=binary, startup_timeout=startup_timeout)
        self.backends = list(dict.fromkeys(backends))
        bad = [name for name in self.backends if not _NAME.fullmatch(name)]
        if bad or not self.backends:
            raise ValueError(f"HAProxy backend names are letters, digits and _ . - (got {bad or 'none'})")
        self.timeout = timeout
        self.frontend_ports: dict[str, int] = {}
        self.reserved = set(reserved)

    # -- files and addresses

    def find(self) -> str:
        return find_binary("haproxy", missing=HAProxyNotInstalled, hint=INSTALL_HINT)

    @property
    def socket_path(self) -> str:
        return str(self.directory / "admin.sock")

    @property
    def config_file(self) -> str:
        return str(self.directory / "haproxy.cfg")

    @property
    def stats_url(self) -> str:
        return f"{self.url}/stats"

    def frontend_url(self, backend: str) -> str:
        """Where the backend's clients send their requests (``http://127.0.0.1:PORT``)."""
        if backend not in self.frontend_ports:
            raise KeyError(f"no HAProxy frontend for {backend!r} (started: {self.running})")
        return f"http://127.0.0.1:{self.frontend_ports[backend]}"

    def config(self, port: int) -> str:
        """The configuration: the admin socket, the stats listener on ``port``, a frontend and backend each."""
        lines = [
            "global",
            f"  stats socket {self.socket_path} mode 600 level admin",
            "  nbthread 1",
            "defaults",
            "  mode http",
            "  timeout connect 2s",
            "  timeout client 30s",
            "  timeout server 30s",
            "  retries 2",
            "  option redispatch",  # a process stopping between the choice and the connect: the other track
            "listen admin",
            f"  bind 127.0.0.1:{port}",
            f"  monitor-uri {self.ready_path}",
            "  stats enable",
            "  stats uri /stats",
            "  stats refresh 2s",
        ]
        for backend in self.backends:
            lines += [f"frontend {backend}", f"  bind 127.0.0.1:{self.frontend_ports[backend]}",
                      f"  default_backend {backend}",
                      f"backend {backend}", "  balance roundrobin", f"  http-response set-header {TRACK_HEADER} %s"]
            # no address yet: in maintenance until the runtime API gives it one (port 1 is a placeholder)
            lines += [f"  server {server} 127.0.0.1:1 weight 0 disabled" for server in SERVERS]
        return "\n".join(lines) + "\n"

    def command(self, binary: str, port: int) -> list[str]:
        if port in self.reserved:  # the stats listener too
            port = self.port = next(p for p in iter(free_port, 0) if p not in self.reserved)
        taken = {port, *self.reserved}
        for backend in self.backends:
            self.frontend_ports[backend] = next(p for p in iter(free_port, 0) if p not in taken)
            taken.add(self.frontend_ports[backend])
        with open(self.config_file, "w", encoding="utf-8") as fh:
            fh.write(self.config(port))
        return [binary, "-db", "-f", self.config_file]  # -db: in the foreground, so stop() ends it

    # -- the runtime API

    async def runtime(self, command: str) -> str:
        """Send one command to the stats socket; its answer, stripped (most commands answer nothing)."""
        if "\n" in command or ";" in command:
            raise ValueError(f"one runtime API command at a time, got {command!r}")
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.socket_path), self.timeout)
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), self.timeout)  # non-interactive: it closes after one
        finally:
            writer.close()
            await writer.wait_closed()
        return answer.decode(errors="replace").strip()

    async def _expect(self, command: str, ok: re.Pattern[str] | None = None) -> None:
        answer = await self.runtime(command)
        if answer and not (ok and ok.search(answer)):
            raise HAProxyError(f"HAProxy refused `{command}`: {answer}")

    async def set_server(self, backend: str, server: str, *, address: str | None = None,
                         weight: int | None = None, ready: bool | None = None) -> None:
        """Change what is given of one server: ``address`` (``host:port``), ``weight`` (0..256), ``ready``
        (False: maintenance, no traffic). Raises :class:`HAProxyError` when HAProxy refuses a change."""
        where = f"{backend}/{server}"
        if address is not None:
            host, _, port = address.rpartition(":")
            await self._expect(f"set server {where} addr {host} port {int(port)}",
                               re.compile(r"changed|no need to change"))
        if weight is not None:
            if not 0 <= weight <= MAX_WEIGHT:
                raise ValueError(f"an HAProxy weight is 0 to {MAX_WEIGHT}, got {weight}")
            await self._expect(f"set server {where} weight {weight}")
        if ready is not None:
            await self._expect(f"set server {where} state {'ready' if ready else 'maint'}")

    async def stats(self) -> list[ServerStat]:
        """Every server's counters and weight, from ``show stat``."""
        return parse_stat(await self.runtime("show stat"))
