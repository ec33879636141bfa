"""Socket Mode: ``apps.connections.open`` and the WebSocket an app connects to instead of a request URL.

The app (for instance Bolt's ``AsyncSocketModeHandler``) calls ``apps.connections.open`` with its
app-level token (``xapp-…``), connects to the ``url`` it gets, receives ``{"type": "hello", ...}``,
then envelopes (``slash_commands``, ``interactive``) that it must acknowledge within three seconds
with ``{"envelope_id": ..., "payload": {...}}``. A ``slash_commands`` acknowledgement payload with
content is shown the way Slack shows an HTTP answer body (ephemeral to the user unless
``response_type`` is ``in_channel``); an envelope not acknowledged in time is answered
``operation_timeout``, as Slack tells the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from .client import TIMEOUT_STATUS, Reply, Sender
from .state import ResponseTarget, Workspace
from .webapi import WebApi

ACK_TIMEOUT = 3.0
#: ``Reply.status`` when no app is connected (``Reply.text`` is ``dispatch_failed``).
NOT_CONNECTED_STATUS = 503
HOST_NAME = "applink-emulator"


@dataclass
class Connection:
    """One open Socket Mode WebSocket."""

    id: str
    ticket: str
    ws: web.WebSocketResponse
    opened: float = field(default_factory=time.time)
    pings: int = 0
    last_pong: float | None = None


@dataclass
class Ack:
    """An acknowledgement the app sent: its envelope, payload and how long it took."""

    envelope_id: str
    payload: dict[str, Any]
    seconds: float
    late: bool = False


@dataclass
class _Pending:
    envelope: dict[str, Any]
    sent: float
    future: asyncio.Future[dict[str, Any]]


class SocketMode:
    """Serves ``apps.connections.open`` (through :class:`WebApi`) and ``/socket/<ticket>`` WebSockets."""

    def __init__(
        self,
        workspace: Workspace,
        webapi: WebApi,
        sender: Sender,
        *,
        app_token: str,
        ack_timeout: float = ACK_TIMEOUT,
    ) -> None:
        self.ws = workspace
        self.webapi = webapi
        self.sender = sender
        self.app_token = app_token
        self.ack_timeout = ack_timeout
        self.connections: dict[str, Connection] = {}
        self.acks: list[Ack] = []
        self.unmatched: list[str] = []  # text frames that were not the ack of a pending envelope
        self.history: list[dict[str, Any]] = []  # {"event": "connected"/"disconnected", "id", "time"}
        self._tickets: set[str] = set()
        self._pending: dict[str, _Pending] = {}
        self._expired: dict[str, float] = {}  # envelope id -> when it was sent
        self._changed = asyncio.Event()
        webapi.app_tokens.add(app_token)
        webapi.app_methods["apps.connections.open"] = self.connections_open

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/socket/{ticket}", self.handle_socket)
        app.on_shutdown.append(self._on_shutdown)

    # ---- Web API --------------------------------------------------------------------------
    def connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """``apps.connections.open`` (the app-level token was checked by :class:`WebApi`)."""
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        return {"url": f"{self.ws.base_url.replace('http', 'ws', 1)}/socket/{ticket}"}

    # ---- the WebSocket --------------------------------------------------------------------
    async def handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._tickets:
            return web.Response(status=404, text="unknown connection URL: call apps.connections.open")
        ws = web.WebSocketResponse(autoping=False, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(id=uuid.uuid4().hex[:12], ticket=ticket, ws=ws)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self.connections) + 1,
                    "debug_info": {"host": HOST_NAME, "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.ws.app_id},
                }
            )
            # Envelopes go out only after ``hello``, as Slack sends them.
            self.connections[conn.id] = conn
            self._record("connected", conn)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(str(msg.data))
                elif msg.type == WSMsgType.PING:
                    conn.pings += 1
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    conn.last_pong = time.time()
        except ConnectionResetError:
            pass
        finally:
            if self.connections.pop(conn.id, None) is not None:
                self._record("disconnected", conn)
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.unmatched.append(data)
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        pending = self._pending.get(str(envelope_id)) if envelope_id else None
        payload = message.get("payload") if isinstance(message, dict) else None
        if pending is None:
            sent = self._expired.pop(str(envelope_id), None) if envelope_id else None
            if sent is None:
                self.unmatched.append(data)
            else:  # acknowledged after the deadline: recorded, not shown (Slack has given up)
                late_payload = payload if isinstance(payload, dict) else {}
                self.acks.append(Ack(str(envelope_id), late_payload, time.monotonic() - sent, late=True))
            self._notify()
            return
        if not pending.future.done():
            pending.future.set_result(payload if isinstance(payload, dict) else {})

    def _record(self, event: str, conn: Connection) -> None:
        self.history.append({"event": event, "id": conn.id, "time": time.time()})
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _on_shutdown(self, app: web.Application) -> None:
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # ---- connection state -----------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return bool(self.connections)

    async def wait_until(self, predicate: Callable[[SocketMode], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds, checked at once and after every connection, disconnection,
        late or unmatched message; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if predicate(self):
                    return
                await changed.wait()

    async def wait_connected(self, timeout: float = 10.0, *, count: int = 1) -> None:
        """Wait until at least ``count`` apps are connected; ``TimeoutError`` after ``timeout`` s."""
        await self.wait_until(lambda sm: len(sm.connections) >= count, timeout)

    async def wait_disconnected(self, timeout: float = 10.0) -> None:
        """Wait until no app is connected; ``TimeoutError`` after ``timeout`` seconds."""
        await self.wait_until(lambda sm: not sm.connections, timeout)

    async def disconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's ``disconnect`` message (reasons: ``warning``, ``refresh_requested``,
        ``link_disabled``) on every connection; returns how many got it. Clients reconnect."""
        sent = 0
        for conn in list(self.connections.values()):
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await conn.ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": HOST_NAME}})
                sent += 1
        return sent

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every connection from the server side (as when Slack's link host goes away)."""
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code)

    # ---- envelopes ------------------------------------------------------------------------
    async def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        extra: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any] | None]:
        """Send one envelope on the newest connection and wait for its ack.

        Returns ``(200, ack_payload)``, ``(TIMEOUT_STATUS, None)`` or ``(NOT_CONNECTED_STATUS, None)``.
        """
        if not self.connections:
            return NOT_CONNECTED_STATUS, None
        conn = list(self.connections.values())[-1]
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            **(extra or {}),
        }
        loop = asyncio.get_running_loop()
        pending = _Pending(envelope=envelope, sent=time.monotonic(), future=loop.create_future())
        self._pending[envelope_id] = pending
        try:
            try:
                await conn.ws.send_json(envelope)
            except (ConnectionResetError, RuntimeError):
                return NOT_CONNECTED_STATUS, None
            try:
                async with asyncio.timeout(self.ack_timeout):
                    ack = await pending.future
            except TimeoutError:
                self._expired[envelope_id] = pending.sent
                return TIMEOUT_STATUS, None
        finally:
            self._pending.pop(envelope_id, None)
        self.acks.append(Ack(envelope_id, ack, time.monotonic() - pending.sent))
        return 200, ack

    @staticmethod
    def _reply(status: int, ack: dict[str, Any] | None, payload: dict[str, Any], response_url: str) -> Reply:
        if status == TIMEOUT_STATUS:
            text = "operation_timeout"
        elif status == NOT_CONNECTED_STATUS:
            text = "dispatch_failed"
        else:
            text = json.dumps(ack) if ack else ""
        return Reply(status, text, {}, payload, response_url)

    def build_command(
        self, *, user: str, channel: str, text: str, command: str
    ) -> tuple[dict[str, Any], ResponseTarget]:
        """The slash command payload, with the same fields as the HTTP form body."""
        u = self.sender._user(user)
        target = self.webapi.new_response_target(channel=channel, user=user)
        fields = {
            "token": self.sender.verification_token,
            "team_id": self.ws.team_id,
            "team_domain": self.ws.team_domain,
            "channel_id": channel,
            "channel_name": self.sender._channel_name(channel),
            "user_id": user,
            "user_name": u["name"],
            "command": command,
            "text": text,
            "api_app_id": self.ws.app_id,
            "is_enterprise_install": "false",
            "response_url": self.sender._response_url(target),
            "trigger_id": self.sender.triggers.issue(user),
        }
        return fields, target

    async def send_command(self, *, user: str, channel: str, text: str, command: str) -> Reply:
        """A ``slash_commands`` envelope; an ack payload with content is shown like an HTTP answer."""
        fields, target = self.build_command(user=user, channel=channel, text=text, command=command)
        self.sender.sent.append({"kind": "command", "payload": fields, "tamper": None, "via": "socket"})
        status, ack = await self.deliver("slash_commands", fields, accepts_response_payload=True)
        if status == 200 and ack and any(ack.get(k) for k in ("text", "blocks", "attachments")):
            self.webapi.apply_response(target, ack, source="command_response")
        return self._reply(status, ack, fields, fields["response_url"])

    async def click(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None,
        block_id: str | None,
    ) -> Reply:
        """An ``interactive`` envelope carrying a ``block_actions`` payload (its ack payload is ignored)."""
        payload, _ = self.sender.build_block_actions(
            user=user, channel=channel, message_ts=message_ts, action_id=action_id, value=value, block_id=block_id
        )
        self.sender.sent.append({"kind": "block_actions", "payload": payload, "tamper": None, "via": "socket"})
        status, ack = await self.deliver("interactive", payload, accepts_response_payload=False)
        return self._reply(status, ack, payload, payload["response_url"])
