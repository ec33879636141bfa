"""The bot's HTTP server (Sanic): ``/slack/events``, ``/alertmanager``, ``/healthz``, ``/readyz``, ``/metrics``.

``/slack/events`` checks every request on its raw bytes before anything decodes or parses it:

1. a body over :data:`MAX_BODY_BYTES` (by its ``Content-Length``, or by the bytes actually received
   for a chunked body) is refused with 413, unread;
2. the ``X-Slack-Request-Timestamp`` (ASCII digits, within five minutes) and the ``X-Slack-Signature``
   (HMAC-SHA256 with the signing secret, slack_sdk's :class:`SignatureVerifier`) must be valid, else 401;
3. a signed body that is not UTF-8 or does not parse (broken ``payload`` JSON, JSON nested too deeply)
   gets 400.

``/alertmanager`` takes Alertmanager's webhook notifications (body version "4"):

1. without ``HELLO_ALERT_TOKEN`` the route answers 404 "alerting not configured" (a 4xx: Alertmanager
   does not retry it) and reads nothing;
2. the ``Authorization: Bearer <token>`` header must equal the token (compared in constant time),
   else 401, before the body is read;
3. a body over :data:`MAX_ALERT_BODY_BYTES` gets 413; a body that is not JSON, not an object or not a
   version "4" notification gets 400;
4. the service's alerts are stored (the compare-and-swap decides which replica posts the card) and
   the answer is 200 at once; the card is posted or edited after the answer. Alerts about other
   services are ignored (200, one log line). A store that cannot be written answers 503, so
   Alertmanager sends the notification again.

Each refusal is logged as one line: method, path, status, reason, body length and the peer address;
never the body, the headers or anything parsed from them. Only signed, decoded requests reach Bolt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from sanic import Request, Sanic, response
from sanic.exceptions import PayloadTooLarge
from slack_bolt.adapter.sanic.async_handler import to_sanic_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.chat import metrics
from bot.chat.contract import Invocation

log = logging.getLogger(__name__)

# Slack signs every request and sends small bodies: a slash command is well under 1 KiB, a button
# click carries the message it was clicked in (the bot's own messages, a few KiB; Slack caps a message
# at 50 blocks). 64 KiB leaves a wide margin and keeps a flood of large forged bodies cheap.
MAX_BODY_BYTES = 64 * 1024
MAX_SKEW_SECONDS = 5 * 60  # Slack's recommendation, as in slack_sdk's verifier
# Alertmanager sends every alert of a group with all its labels and annotations: a group of a few
# hundred alerts is tens of KiB. 1 MiB is far above any real group and still cheap to refuse.
MAX_ALERT_BODY_BYTES = 1024 * 1024


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
    state = ready if ready is not None else {"ok": True}
    app.ctx.ready = state
    app.ctx.bolt = bolt
    secret = _signing_secret(bolt)
    if not secret:
        raise ValueError("the Bolt app has no signing secret: /slack/events cannot check requests")
    slack_route(app, bolt, RawSignatureVerifier(secret))
    alert_route(app, getattr(getattr(bolt, "dispatcher", None), "services", None))
    health_routes(app, state)
    return app


def slack_route(app: Sanic, bolt: AsyncApp, verifier: RawSignatureVerifier) -> None:
    """``POST /slack/events``: size, then signature, then UTF-8; pure answers at once, the rest to Bolt."""
    quick = QuickAnswers(bolt)

    @app.post("/slack/events", stream=True)
    async def slack_events(request: Request) -> Any:
        body, size = await receive_limited(request, MAX_BODY_BYTES)
        if body is None:
            return refuse(request, 413, "body too large", size)
        headers = request.headers
        problem = verifier.problem(body, headers.get("x-slack-request-timestamp"),
                                   headers.get("x-slack-signature"))
        if problem:
            return refuse(request, 401, problem, len(body))
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return refuse(request, 400, "body is not UTF-8", len(body))
        answer = quick.answer(body)
        if answer is not None:
            return answer
        try:
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=headers)
        except (ValueError, RecursionError, AttributeError, TypeError):
            # broken JSON (in ``payload`` or the body), nesting too deep, JSON that is not an object
            return refuse(request, 400, "body cannot be parsed", len(body))
        return to_sanic_response(await bolt.async_dispatch(bolt_request))


def alert_route(app: Sanic, services: Any) -> None:
    """``POST /alertmanager``: Alertmanager's webhook (see the module's docstring for its checks)."""

    @app.post("/alertmanager", stream=True)
    async def alertmanager(request: Request) -> Any:
        arrived = time.perf_counter()
        declared = request.headers.get("content-length")
        alerts = services.alerts if services is not None else None
        token = services.config.alert_token if services is not None else ""
        if not token or alerts is None:
            return refuse(request, 404, "alerting not configured", declared or "?", unread=True)
        if not bearer_matches(request.headers.get("authorization"), token):
            metrics.ALERTS.labels(outcome="unauthorized").inc()
            return refuse(request, 401, "missing or wrong bearer token", declared or "?", unread=True)
        body, size = await receive_limited(request, MAX_ALERT_BODY_BYTES)
        if body is None:
            metrics.ALERTS.labels(outcome="too_large").inc()
            return refuse(request, 413, "body too large", size)
        try:
            payload = json.loads(body)
            notification = alerts.accept(payload)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and AlertPayloadError are ValueErrors
            reason = str(exc) if type(exc).__name__ == "AlertPayloadError" else "body is not JSON"
            metrics.ALERTS.labels(outcome="malformed").inc()
            return refuse(request, 400, reason, len(body))
        if notification is None:
            metrics.ALERTS.labels(outcome="ignored").inc()
            return response.json({"status": "ignored: no alert about this service"})
        try:
            received = await alerts.receive(notification, arrived)
        except Exception:
            log.exception("cannot store an Alertmanager notification")
            metrics.ALERTS.labels(outcome="error").inc()
            return refuse(request, 503, "cannot store the notification", len(body))
        metrics.ALERTS.labels(outcome="accepted").inc()
        if received is not None:
            alerts.spawn(received)
        return response.json({"status": "ok"})


def health_routes(app: Sanic, state: dict[str, bool]) -> None:
    """``/healthz`` (the process answers), ``/readyz`` (503 while draining) and ``/metrics``."""

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


async def receive_limited(request: Request, limit: int) -> tuple[bytes | None, str]:
    """Read a streamed body of at most ``limit`` bytes: ``(body, size)``, or ``(None, size)`` when it is
    larger (refused unread when its Content-Length says so; a chunked body is cut at the limit)."""
    stream = request.stream
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        if stream is not None:
            stream.expecting_continue = False  # refused unread: no "100 Continue" after the answer
        return None, declared
    if stream is not None:
        stream.request_max_size = limit
    try:
        await request.receive_body()
    except PayloadTooLarge:
        return None, f"over {limit}"
    return request.body, str(len(request.body))


def refuse(request: Request, status: int, reason: str, length: int | str, *, unread: bool = False) -> Any:
    """Answer a refused request and log it as one line (never its body or headers). ``unread``: the body
    was not read and will not be (no "100 Continue")."""
    if unread and request.stream is not None:
        request.stream.expecting_continue = False
    log.warning("refused %s %s with %d: %s (%s body bytes, from %s)", request.method, request.path, status,
                reason, length, request.client_ip or "?")
    return response.json({"error": reason}, status=status)


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (the token compared in constant time)."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(credentials.strip().encode("utf-8", "replace"), token.encode("utf-8"))


def _signing_secret(bolt: AsyncApp) -> str:
    dispatcher = getattr(bolt, "dispatcher", None)
    if dispatcher is not None:
        return str(dispatcher.services.config.slack_signing_secret or "")
    return str(getattr(bolt, "_signing_secret", "") or "")


class RawSignatureVerifier(SignatureVerifier):
    """slack_sdk's verifier, hashing the body as received: bytes are never decoded to check them."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        if timestamp is None:
            return None
        raw = body.encode() if isinstance(body, str) else (body or b"")
        base = b"v0:" + timestamp.encode("ascii") + b":" + raw
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def problem(self, body: bytes, timestamp: str | None, signature: str | None) -> str:
        """Why the request is not correctly signed, or "" when it is."""
        if not timestamp:
            return "no request timestamp"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "malformed request timestamp"
        if abs(self.clock.now() - int(timestamp)) > MAX_SKEW_SECONDS:
            return "stale request timestamp"
        if not signature:
            return "no signature"
        if not signature.isascii() or not self.is_valid(body, timestamp, signature):
            return "bad signature"
        return ""


WANTED = (b"command", b"text", b"ssl_check", b"channel_id")  # all that decides a pure answer
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

    It is only given requests whose signature ``/slack/events`` has already checked; every command
    that does work goes to Bolt.
    """

    def __init__(self, bolt: AsyncApp) -> None:
        self.dispatcher = getattr(bolt, "dispatcher", None)
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

    def answer(self, body: bytes) -> Any | None:
        """The reply to a signed request's ``body`` when it is pure, else None."""
        if self.dispatcher is None:
            return None
        if b"command=" not in body or b"payload=" in body[:8]:
            return None
        form = fields(body)
        if form.get("command") != "/hello" or form.get("ssl_check"):
            return None
        text = form.get("text", "")
        immediate = self._help_by_text.get(text)
        if immediate is not None:
            self.help_ok.inc()
            return response.raw(self._body(immediate), content_type="application/json")
        command, _, immediate = self.dispatcher.prepare(Invocation(user_id="", channel_id=form.get("channel_id", ""),
                                                                   text=text), keep=True)
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
