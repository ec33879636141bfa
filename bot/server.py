"""The bot's HTTP server (Sanic): ``/slack/events``, ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any

from sanic import Request, Sanic, response
from slack_bolt.adapter.sanic import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

from bot import metrics

log = logging.getLogger(__name__)


def build_server(bolt: AsyncApp, *, name: str = "hello_chatops", ready: dict[str, bool] | None = None,
                 touchup: bool = False) -> Sanic:
    """A Sanic app serving the Bolt app. ``ready["ok"]`` drives ``/readyz`` (False while draining).

    ``touchup`` lets Sanic compile its request path for this app (faster); it must stay off where
    several apps share a process (tests, the sandbox), which Sanic's touch-up does not support.
    """
    app = Sanic(name, configure_logging=False)
    app.config.KEEP_ALIVE_TIMEOUT = 30
    app.config.ACCESS_LOG = False
    app.config.TOUCHUP = touchup
    handler = AsyncSlackRequestHandler(bolt)
    state = ready if ready is not None else {"ok": True}
    app.ctx.ready = state

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Any:
        return await handler.handle(request)

    @app.get("/healthz")
    async def healthz(request: Request) -> Any:
        return response.json({"status": "ok"})

    @app.get("/readyz")
    async def readyz(request: Request) -> Any:
        if state.get("ok"):
            return response.json({"status": "ready"})
        return response.json({"status": "draining"}, status=503)

    @app.get("/metrics")
    async def prom_metrics(request: Request) -> Any:
        return response.raw(metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    """A Sanic server started inside the current event loop (tests and the sandbox)."""

    app: Sanic
    server: Any
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self.app.ctx.ready["ok"] = False
        await self.server.close()
        await self.server.wait_closed()
        await self.server.after_stop()


async def start_in_loop(app: Sanic, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` in the running loop on ``port`` (0: a free port); returns once it listens."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    if server is None:
        raise RuntimeError("Sanic did not create a server")
    await server.startup()
    await server.before_start()
    await server.after_start()
    await asyncio.sleep(0)
    return RunningServer(app=app, server=server, host=host, port=sock.getsockname()[1])
