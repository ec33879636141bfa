"""The sandbox console: a Slack-like web page over the Slack emulator.

Serves the static page (``index.html``, ``console.js``, ``console.css``) and a small JSON bridge:

- ``GET  /api/config``   the workspace's people (with their sandbox roles), the channel, the usage hint
- ``GET  /api/state``    the emulator's state (messages, ephemerals, files) as ``GET /_emulator/state``
- ``GET  /api/events``   Server-Sent Events: one record per change in the emulated workspace
- ``POST /api/command``  ``{"user", "channel", "text": "/hello status"}``: a signed slash command, sent
  by the emulator's client side exactly as Slack sends it
- ``POST /api/click``    ``{"user", "channel", "message_ts", "action_id", "block_id", "value"}``: a button
- ``POST /api/message``  ``{"user", "channel", "text"}``: a plain chat message from a person
- ``POST /api/home``     ``{"user"}``: the person opens the app's Home tab (``app_home_opened``); the app
  answers by publishing the view, which arrives in ``state.views.homes`` and as ``home_published``
- ``POST /api/view_click`` ``{"user", "view_id", "action_id", "block_id", "value"}``: a button in the
  person's Home tab or in the modal they see
- ``POST /api/submit``   ``{"user", "view_id", "values": {block_id: value}}``: the person submits the
  modal they see; the answer says what became of it (``outcome``: closed, errors, updated, ...)
- ``POST /api/close_view`` ``{"user", "view_id", "clear"}``: the person cancels the modal they see (its
  top view; ``clear``: every view of it)
- ``GET  /files/{id}/{name}``  an uploaded file's bytes (the charts), for ``<img>`` tags

Anyone who can reach the console acts as any person of the workspace, so it is kept to the browser
on this machine (:meth:`ConsoleServer.refusal`):

- it listens on a loopback address only (``127.0.0.1`` by default, ``::1`` or ``localhost``);
- every request, ``GET`` included, must name it in ``Host`` as ``127.0.0.1:PORT``, ``localhost:PORT``
  or ``[::1]:PORT``, else 421 (a DNS-rebinding page sends its own host name);
- a ``POST`` must come from the console's own origin, else 403: an ``Origin`` header must be one of
  ``http://`` + those hosts (``null`` is refused); without ``Origin``, a ``Referer`` must be; a
  ``Sec-Fetch-Site`` of ``cross-site`` or ``same-site`` (another port of localhost) is refused;
- a ``POST`` must say ``Content-Type: application/json``, else 415 (HTML forms and ``text/plain``
  fetches, which browsers send cross-site without asking, cannot);
- the page may not be framed by another site (``X-Frame-Options``, CSP ``frame-ancestors``).

A refused request answers a short JSON error (``{"ok": false, "error": ...}``) before its body is read,
so it changes nothing.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from aiohttp import web

from sandbox.slack import Message, Reply, SlackEmulator
from sandbox.slack.sse import ChangeStream
from sandbox.slack.views import ViewRecord

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent
ROOT = STATIC.parents[1]
STATIC_FILES = {
    "/": ("index.html", "text/html"),
    "/console.js": ("console.js", "application/javascript"),
    "/console.css": ("console.css", "text/css"),
}
COMMAND = "/hello"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # the names a browser on this machine uses for it
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FOREIGN_SITES = frozenset({"cross-site", "same-site"})  # Sec-Fetch-Site; same-site = another port, too
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address to listen on) is this machine's loopback: ``localhost`` or 127/8, ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> str:
    """``http://localhost:3000/path`` -> ``http://localhost:3000`` (lowercase); '' when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def usage_hint(manifest: Path = ROOT / "app.yaml", command: str = COMMAND) -> str:
    """The ``usage_hint`` of ``command`` in the Slack app manifest ('' when absent)."""
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ""
    for entry in (data.get("features") or {}).get("slash_commands") or []:
        if isinstance(entry, dict) and entry.get("command") == command:
            return str(entry.get("usage_hint") or "")
    return ""


def split_command(text: str) -> tuple[str, str] | None:
    """``"/hello canary v2 10%"`` -> ``("/hello", "canary v2 10%")``; None for plain text."""
    text = text.strip()
    if not text.startswith("/"):
        return None
    command, _, rest = text.partition(" ")
    return command, rest.strip()


def _is_value(value: Any) -> bool:
    """What a person enters in one input: text (None when empty), or a list of option values."""
    return value is None or isinstance(value, str) or (isinstance(value, list)
                                                       and all(isinstance(v, str) for v in value))


def _bad_request(error: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"ok": False, "error": error}), content_type="application/json")


def _refused(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


def _free_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class ConsoleServer:
    """The console's HTTP server, bound to one in-process :class:`SlackEmulator`."""

    def __init__(
        self,
        slack: SlackEmulator,
        *,
        roles: Mapping[str, str] | None = None,
        channel: str = "C1",
        links: Sequence[Mapping[str, str]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``host`` must be a loopback address (ValueError otherwise): see the module's docstring."""
        if not is_loopback(host):
            raise ValueError(f"the console listens on a loopback address only (127.0.0.1, ::1 or localhost), "
                             f"not {host!r}: whoever reaches it acts as anyone in the workspace")
        self.slack = slack
        self.roles = dict(roles or {})
        self.channel = channel
        self.links = [dict(link) for link in links]
        self.host = host
        self.port = port
        self.changes = ChangeStream(slack.workspace)
        self.app = web.Application(middlewares=[self._guard])
        self.app.router.add_get("/", self.static)
        self.app.router.add_get("/console.js", self.static)
        self.app.router.add_get("/console.css", self.static)
        self.app.router.add_get("/api/config", self.config)
        self.app.router.add_get("/api/state", self.state)
        self.app.router.add_get("/api/events", self.changes.handle)
        self.app.router.add_post("/api/command", self.command)
        self.app.router.add_post("/api/click", self.click)
        self.app.router.add_post("/api/message", self.message)
        self.app.router.add_post("/api/home", self.home)
        self.app.router.add_post("/api/view_click", self.view_click)
        self.app.router.add_post("/api/submit", self.submit)
        self.app.router.add_post("/api/close_view", self.close_view)
        self.app.router.add_get("/files/{file_id}/{name}", self.file)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.on_shutdown.append(self.changes.close)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def hosts(self) -> frozenset[str]:
        """The ``Host`` values the console answers to: its loopback names with its port."""
        own = urlsplit(self.url).netloc
        return frozenset({f"{name}:{self.port}" for name in LOOPBACK_NAMES} | {own.lower()}
                         | (set(LOOPBACK_NAMES) if self.port == 80 else set()))

    def refusal(self, request: web.Request) -> tuple[int, str] | None:
        """Why ``request`` is refused, as (HTTP status, error), or None to serve it."""
        hosts = self.hosts()
        if request.headers.get("Host", "").strip().lower() not in hosts:
            return 421, f"misdirected request: this console answers only at {self.url} (or localhost)"
        if request.method in SAFE_METHODS:
            return None
        if request.headers.get("Sec-Fetch-Site", "").strip().lower() in FOREIGN_SITES:
            return 403, "cross-site request refused: use the console's own page"
        origins = {f"http://{host}" for host in hosts}
        origin = request.headers.get("Origin")
        if origin is not None:
            if origin.strip().lower() not in origins:
                return 403, "request from another origin refused: use the console's own page"
        else:
            referer = request.headers.get("Referer")
            if referer is not None and _origin(referer) not in origins:
                return 403, "request from another page refused: use the console's own page"
        if request.content_type != "application/json":
            return 415, "expected Content-Type: application/json"
        return None

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        refusal = self.refusal(request)
        if refusal is not None:
            status, error = refusal
            log.info("console refused %s %s: HTTP %d", request.method, request.path[:80], status)
            return _refused(status, error)
        return await handler(request)

    async def start(self) -> ConsoleServer:
        """Listen on ``host:port`` (port 0 picks a free one). Raises OSError when the port is taken."""
        sock = _free_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- pages
    async def static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC_FILES[request.path]
        body = (STATIC / name).read_bytes()
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=PAGE_HEADERS)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def config(self, request: web.Request) -> web.Response:
        ws = self.slack.workspace
        users = [
            {"id": uid, "name": u["name"], "real_name": u.get("real_name", u["name"]),
             "role": self.roles.get(uid, "")}
            for uid, u in ws.users.items()
        ]
        channels = [{"id": c.id, "name": c.name} for c in ws.channels.values()]
        groups = {gid: list(members) for gid, members in ws.usergroups.items()}
        return web.json_response({
            "team": ws.team_domain,
            "command": COMMAND,
            "usage_hint": usage_hint(),
            "users": users,
            "channels": channels,
            "channel": self.channel,
            "usergroups": groups,
            "bot": {"user_id": ws.bot_user_id, "name": "hello"},
            "links": self.links,
        })

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(self.slack.state(), dumps=lambda d: json.dumps(d, default=str))

    # ---------------------------------------------------------------- actions
    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _bad_request("expected a JSON body") from None
        if not isinstance(body, dict):
            raise _bad_request("expected a JSON object")
        return body

    def _user_channel(self, body: Mapping[str, Any]) -> tuple[str, str]:
        user = self._user(body)
        channel = str(body.get("channel") or self.channel)
        if channel not in self.slack.workspace.channels:
            raise _bad_request(f"unknown channel {channel!r}")
        return user, channel

    def _user(self, body: Mapping[str, Any]) -> str:
        user = str(body.get("user") or "")
        if user not in self.slack.workspace.users:
            raise _bad_request(f"unknown user {user!r}")
        return user

    def _view(self, body: Mapping[str, Any], user: str, *, modal: bool = False) -> ViewRecord:
        """The open view ``body["view_id"]`` of ``user``: 400 when none is named, 404 when it is not one
        of theirs (or closed); ``modal=True``: it must be the modal they see now (409 for one under it)."""
        view_id = body.get("view_id")
        if not isinstance(view_id, str) or not view_id:
            raise _bad_request("expected a view_id")
        record = self.slack.views.get(view_id)
        if record is None or record.user != user or (modal and record.type != "modal"):
            raise web.HTTPNotFound(text=json.dumps({"ok": False, "error": f"{user} has no open view {view_id[:40]!r}"}),
                                   content_type="application/json")
        if record.type == "modal" and record is not self.slack.modal(user):
            raise web.HTTPConflict(text=json.dumps({"ok": False, "error": f"view {view_id} is under another one: "
                                                    "only the modal on top can be used"}),
                                   content_type="application/json")
        return record

    @staticmethod
    def _delivered(reply: Reply | None, what: str, **extra: Any) -> web.Response:
        if reply is not None and reply.status not in (0, 200):
            return web.json_response({"ok": False, "error": f"the app answered HTTP {reply.status} to {what}"},
                                     status=502)
        return web.json_response({"ok": True, "status": reply.status if reply else None, **extra})

    async def command(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user, channel = self._user_channel(body)
        parts = split_command(str(body.get("text") or ""))
        if parts is None:
            return web.json_response({"ok": False, "error": "not a slash command"}, status=400)
        command, text = parts
        if command != COMMAND:
            return web.json_response(
                {"ok": False, "error": f"{command} is not a valid command. This workspace has {COMMAND}."},
                status=400,
            )
        try:
            reply = await self.slack.send_command(user=user, channel=channel, text=text, command=command)
        except Exception as exc:  # the app is down or refused the connection: say so, as Slack does
            log.warning("slash command not delivered: %s", exc)
            return web.json_response({"ok": False, "error": f"{command} failed: the app did not respond"},
                                     status=502)
        if reply.status != 200:
            return web.json_response(
                {"ok": False, "error": f"{command} failed with the error \"http_{reply.status}\""}, status=502
            )
        return web.json_response({"ok": True, "status": reply.status})

    async def click(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user, channel = self._user_channel(body)
        ts = str(body.get("message_ts") or "")
        action_id = str(body.get("action_id") or "")
        try:
            reply = await self.slack.click(
                user=user, channel=channel, message_ts=ts, action_id=action_id,
                value=body.get("value"), block_id=body.get("block_id") or None,
            )
        except LookupError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=404)
        except Exception as exc:
            log.warning("button click not delivered: %s", exc)
            return web.json_response({"ok": False, "error": "the app did not respond"}, status=502)
        if reply.status != 200:
            return web.json_response({"ok": False, "error": f"the app answered HTTP {reply.status}"}, status=502)
        return web.json_response({"ok": True, "status": reply.status})

    async def home(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body)
        try:
            reply = await self.slack.open_home(user)
        except Exception as exc:
            log.warning("app_home_opened not delivered: %s", exc)
            return web.json_response({"ok": False, "error": "the app did not respond"}, status=502)
        return self._delivered(reply, "app_home_opened")

    async def view_click(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body)
        record = self._view(body, user)
        action_id = body.get("action_id")
        if not isinstance(action_id, str) or not action_id:
            raise _bad_request("expected an action_id")
        value, block_id = body.get("value"), body.get("block_id")
        if not isinstance(value, str | None) or not isinstance(block_id, str | None):
            raise _bad_request("value and block_id are strings")
        try:
            reply = await self.slack.click_view(user, record.id, action_id=action_id, value=value,
                                                block_id=block_id or None)
        except LookupError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=404)
        except Exception as exc:
            log.warning("button click in a view not delivered: %s", exc)
            return web.json_response({"ok": False, "error": "the app did not respond"}, status=502)
        return self._delivered(reply, "the click")

    async def submit(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body)
        record = self._view(body, user, modal=True)
        values = body.get("values", {})
        if not isinstance(values, dict) or not all(_is_value(v) for v in values.values()):
            raise _bad_request("values: expected {block_id: text, or a list of texts}")
        try:
            reply = await self.slack.submit_view(user, record.id, values)
        except (LookupError, ValueError) as exc:  # a block or an option the view does not have
            raise _bad_request(str(exc)) from None
        except Exception as exc:
            log.warning("view submission not delivered: %s", exc)
            return web.json_response({"ok": False, "error": "the app did not respond"}, status=502)
        # "errors", "incomplete" and "failed" (the app's answer was late or wrong, as Slack shows it)
        # keep the form open with the reasons in it.
        return web.json_response({"ok": True, "status": reply.status, "outcome": reply.outcome,
                                  "errors": dict(record.errors), "problem": record.problem})

    async def close_view(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body)
        record = self._view(body, user, modal=True)
        clear = body.get("clear", False)
        if not isinstance(clear, bool):
            raise _bad_request("clear is true or false")
        try:
            reply = await self.slack.close_view(user, record.id, clear=clear)
        except LookupError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=404)
        except Exception as exc:
            log.warning("view_closed not delivered: %s", exc)
            return web.json_response({"ok": False, "error": "the app did not respond"}, status=502)
        return self._delivered(reply, "closing the form")

    async def message(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user, channel = self._user_channel(body)
        text = str(body.get("text") or "").strip()
        if not text:
            return web.json_response({"ok": False, "error": "no_text"}, status=400)
        ws = self.slack.workspace
        msg = ws.add_message(Message(channel=channel, ts=ws.clock.next(), user=user, text=text[:4000],
                                     team=ws.team_id, source="console"))
        return web.json_response({"ok": True, "ts": msg.ts})

    async def file(self, request: web.Request) -> web.Response:
        record = self.slack.workspace.files.get(request.match_info["file_id"])
        if record is None or record.data is None:
            raise web.HTTPNotFound(text="file not found")
        return web.Response(body=record.data, content_type=record.mimetype,
                            headers={"Cache-Control": "private, max-age=3600"})
