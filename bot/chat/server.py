"""The bot's HTTP server (Sanic): ``/slack/events``, ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from sanic import Request, Sanic, response
from slack_bolt.adapter.sanic import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from bot.chat import metrics
from bot.chat.contract import Invocation

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
    quick = QuickAnswers(bolt)

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Any:
        if not request.headers.get("x-slack-request-timestamp", "0").strip().isdigit():
            # Bolt's verification would fail with an error here; a forged request gets a plain 401
            return response.json({"error": "invalid request timestamp"}, status=401)
        answer = quick.answer(request)
        if answer is not None:
            return answer
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


WANTED = (b"command", b"text", b"ssl_check")  # all that decides a pure answer
KNOWN = {b"%2Fhello": "/hello", b"%2fhello": "/hello", b"help": "help", b"": ""}  # the frequent values


def fields(body: bytes, wanted: tuple[bytes, ...] = WANTED) -> dict[str, str]:
    """The ``wanted`` fields of a form-encoded body, decoded (the others are not even looked at)."""
    out: dict[str, str] = {}
    for key in wanted:
        if body.startswith(key + b"="):
            begin = len(key) + 1
        else:
            at = body.find(b"&" + key + b"=")
            if at < 0:
                continue
            begin = at + len(key) + 2
        end = body.find(b"&", begin)
        value = body[begin:] if end < 0 else body[begin:end]
        text = KNOWN.get(value)
        if text is None:
            text = value.decode("utf-8", "replace")
            if b"%" in value or b"+" in value:
                text = unquote_plus(text)
        out[key.decode()] = text
    return out


class QuickAnswers:
    """Answers, without going through Bolt's dispatch, the slash commands whose reply is pure: help,
    unknown sub-commands and malformed arguments (the ack *is* the reply).

    Only a request whose Slack signature and timestamp are valid (checked with slack_sdk's
    ``SignatureVerifier``, the check Bolt itself runs) is answered here; anything else, including
    every forged or stale request and every command that does work, goes to Bolt unchanged.
    """

    def __init__(self, bolt: AsyncApp) -> None:
        self.dispatcher = getattr(bolt, "dispatcher", None)
        secret = self.dispatcher.services.config.slack_signing_secret if self.dispatcher is not None else ""
        self.verifier = SignatureVerifier(secret) if secret else None
        self.help_ok = metrics.COMMANDS.labels(command="help", outcome="ok")
        self._bodies: dict[int, tuple[Any, bytes]] = {}
        self._help_by_text: dict[str, Any] = {}  # help replies are cached objects: serialise once

    def _body(self, reply: Any) -> bytes:
        cached = self._bodies.get(id(reply))
        if cached is not None and cached[0] is reply:
            return cached[1]
        body = json.dumps({"text": reply.text, "blocks": reply.blocks, "response_type": "ephemeral"}).encode()
        if len(self._bodies) < 64:
            self._bodies[id(reply)] = (reply, body)
        return body

    def answer(self, request: Request) -> Any | None:
        if self.verifier is None or self.dispatcher is None:
            return None
        body = request.body
        if b"command=" not in body or b"payload=" in body[:8]:
            return None
        headers = request.headers
        try:
            valid = self.verifier.is_valid(body, headers.get("x-slack-request-timestamp"),
                                           headers.get("x-slack-signature"))
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            return None  # Bolt answers 401
        form = fields(body)
        if form.get("command") != "/hello" or form.get("ssl_check"):
            return None
        text = form.get("text", "")
        immediate = self._help_by_text.get(text)
        if immediate is not None:
            self.help_ok.inc()
            return response.raw(self._body(immediate), content_type="application/json")
        command, _, immediate = self.dispatcher.prepare(Invocation(user_id="", channel_id="", text=text))
        if immediate is None:
            return None
        if command is not None and command.name == "help":
            self.help_ok.inc()
            if len(self._help_by_text) < 32:
                self._help_by_text[text] = immediate  # help is pure: the same text, the same reply
        return response.raw(self._body(immediate), content_type="application/json")


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
