"""The Web API half of the emulator: ``/api/<method>``, file upload/download, ``response_url``s,
and the read-only emulator endpoints (``/_emulator/state`` and the ``/_emulator/events`` SSE stream)."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import secrets
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ..fault_rules import FaultRules
from .content import ApiError, as_bool, check_content, json_arg
from .limits import Fault, RateLimitLog, RateLimits
from .sse import ChangeStream
from .state import Ephemeral, Message, ResponseTarget, Workspace

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL = 30 * 60


# What Slack's edge answers when the service behind it fails: an HTML page, not the API's JSON.
ERROR_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{status} {phrase} | Slack</title></head>
<body><h1>{status} {phrase}</h1><p>Slack is having trouble right now. Please try again in a moment.</p></body>
</html>
"""


class WebApi:
    """Serves Slack's Web API methods over the state in a :class:`Workspace`."""

    def __init__(self, workspace: Workspace, *, bot_token: str, rate_limits: RateLimits | None = None) -> None:
        self.ws = workspace
        self.bot_token = bot_token
        self.faults = FaultRules()
        #: Slack's documented rate limits (``limits.enabled = False`` turns them off).
        self.limits = rate_limits if rate_limits is not None else RateLimits()
        #: Every 429 answered, for the state page.
        self.limited = RateLimitLog()
        self.calls: list[dict[str, Any]] = []
        self._uploads: dict[str, str] = {}  # upload token -> file id
        self.changes = ChangeStream(workspace)
        # Methods called with an app-level token (``xapp-…``), e.g. ``apps.connections.open``.
        self.app_tokens: set[str] = set()
        self.app_methods: dict[str, Handler] = {}
        #: More sections of ``GET /_emulator/state`` (e.g. ``views``), by name.
        self.extra_state: dict[str, Callable[[], Any]] = {}
        self.methods: dict[str, Handler] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.delete": self.chat_delete,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroups_users_list,
            "conversations.info": self.conversations_info,
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.handle_api)
        app.router.add_post("/upload/v1/{token}", self.handle_upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self.handle_download)
        app.router.add_post("/response/{rid}", self.handle_response_url)
        app.router.add_get("/_emulator/state", self.handle_state)
        app.router.add_get("/_emulator/events", self.changes.handle)
        app.router.add_route("*", "/_emulator/faults", self.handle_faults)
        app.router.add_route("*", "/_emulator/limits", self.handle_limits)
        app.on_shutdown.append(self.changes.close)

    # ---- faults and rate limits -------------------------------------------------------------
    def add_fault(self, fault: Fault) -> Fault:
        return self.faults.add(fault)

    def _take_fault(self, method: str) -> web.Response | None:
        fault = self.faults.take(method)
        if fault is None:
            return None
        if fault.status == 429:
            return self._ratelimited(method, "", fault.retry_after, "fault")
        if fault.error is not None:
            return web.json_response({"ok": False, "error": fault.error}, status=fault.status)
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Server Error"
        return web.Response(status=fault.status, content_type="text/html",
                            text=ERROR_PAGE.format(status=fault.status, phrase=phrase))

    def _rate_limit(self, method: str, args: dict[str, Any]) -> web.Response | None:
        """HTTP 429 when the call is past the method's limit (nothing is done), else None."""
        limit = self.limits.limits.get(method)
        key = ""
        if limit is not None and limit.key:
            key = str(args.get(limit.key) or "")
            if limit.key == "channel" and key:
                channel = self.ws.resolve_channel(key)
                key = channel.id if channel is not None else key
        retry_after = self.limits.check(method, key)
        return None if retry_after is None else self._ratelimited(method, key, retry_after, "limit")

    def _ratelimited(self, method: str, key: str, retry_after: int, source: str) -> web.Response:
        entry = self.limited.record(method, key, retry_after, source)
        self.ws.emit({"type": "rate_limited", **entry})
        return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                 headers={"Retry-After": str(retry_after)})

    # ---- dispatch -------------------------------------------------------------------------
    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise ApiError("invalid_json") from exc
                if not isinstance(body, dict):
                    raise ApiError("invalid_json")
                args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args

    def _check_token(self, request: web.Request, args: dict[str, Any]) -> None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = token or args.pop("token", None)
        if not token:
            raise ApiError("not_authed")
        if token != self.bot_token:
            raise ApiError("not_allowed_token_type" if token in self.app_tokens else "invalid_auth")

    def _check_app_token(self, request: web.Request, args: dict[str, Any]) -> None:
        """App-level methods take the token only as ``Authorization: Bearer``; a bot token is the
        wrong type of token, a ``token`` form field is refused."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        in_body = args.pop("token", None)
        if not token:
            raise ApiError("invalid_auth" if in_body else "not_authed")
        if token == self.bot_token:
            raise ApiError("not_allowed_token_type")
        if token not in self.app_tokens:
            raise ApiError("invalid_auth")

    async def handle_api(self, request: web.Request) -> web.Response:
        """One Web API call: fault rules first, then the token, then the method's rate limit, then the
        method; a fault or a limit answers before anything changes."""
        method = request.match_info["method"]
        faulted = self._take_fault(method)
        if faulted is not None:
            self.calls.append({"method": method, "status": faulted.status})
            return faulted
        try:
            args = await self._read_args(request)
            handler: Handler | None
            if method == "api.test":
                handler = self.api_test
            elif method in self.app_methods:
                self._check_app_token(request, args)
                handler = self.app_methods[method]
            else:
                self._check_token(request, args)
                handler = self.methods.get(method)
                if handler is None:
                    raise ApiError("unknown_method")
            limited = self._rate_limit(method, args)
            if limited is not None:
                self.calls.append({"method": method, "status": 429, "ok": False, "error": "ratelimited"})
                return limited
            result = handler(args)
            if asyncio.iscoroutine(result):
                result = await result
            body: dict[str, Any] = {"ok": True, **result}
            status = 200
        except ApiError as err:
            body, status = err.body(), err.status
        self.calls.append({"method": method, "status": status, "ok": body["ok"], "error": body.get("error")})
        return web.json_response(body, status=status)

    # ---- helpers --------------------------------------------------------------------------
    def _channel(self, args: dict[str, Any], key: str = "channel", *, need_member: bool = True):
        channel = self.ws.resolve_channel(args.get(key))
        if channel is None:
            raise ApiError("channel_not_found")
        if need_member and not channel.bot_is_member:
            raise ApiError("not_in_channel")
        return channel

    def _bot_message(self, channel: str, text: str | None, blocks, attachments, **kw: Any) -> Message:
        return Message(
            channel=channel,
            ts=self.ws.clock.next(),
            user=self.ws.bot_user_id,
            bot_id=self.ws.bot_id,
            app_id=self.ws.app_id,
            team=self.ws.team_id,
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            **kw,
        )

    # ---- methods --------------------------------------------------------------------------
    def api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        if "error" in args:
            raise ApiError(str(args["error"]), args={k: v for k, v in args.items() if k != "token"})
        return {"args": {k: v for k, v in args.items() if k != "token"}} if args else {}

    def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.ws.team_domain}.slack.com/",
            "team": self.ws.team_domain,
            "user": "hello-chatops",
            "team_id": self.ws.team_id,
            "user_id": self.ws.bot_user_id,
            "bot_id": self.ws.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        text, blocks, attachments = check_content(args)
        thread_ts = args.get("thread_ts") or None
        msg = self._bot_message(channel.id, text, blocks, attachments, thread_ts=thread_ts)
        self.ws.add_message(msg)
        return {"channel": channel.id, "ts": msg.ts, "message": msg.to_api()}

    def chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, need_member=False)
        ts = args.get("ts")
        if not ts:
            raise ApiError("message_not_found")
        text, blocks, attachments = check_content(args)
        msg = self.ws.find_message(channel.id, str(ts))
        if msg is None:
            raise ApiError("message_not_found")
        if msg.user != self.ws.bot_user_id:
            raise ApiError("cant_update_message")
        self.ws.edit_message(msg, text=text, blocks=blocks, attachments=attachments)
        out = msg.to_api()
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": out}

    def chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        user = args.get("user")
        if not user or user not in self.ws.users:
            raise ApiError("user_not_found")
        if user not in channel.members:
            raise ApiError("user_not_in_channel")
        text, blocks, attachments = check_content(args)
        eph = Ephemeral(
            channel=channel.id,
            user=user,
            ts=self.ws.clock.next(),
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            thread_ts=args.get("thread_ts") or None,
            bot_id=self.ws.bot_id,
        )
        self.ws.add_ephemeral(eph)
        return {"message_ts": eph.ts}

    def chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, need_member=False)
        msg = self.ws.find_message(channel.id, str(args.get("ts") or ""))
        if msg is None:
            raise ApiError("message_not_found")
        if msg.user != self.ws.bot_user_id:
            raise ApiError("cant_delete_message")
        self.ws.delete_message(msg)
        return {"channel": channel.id, "ts": msg.ts}

    def files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        length = args.get("length")
        if not filename or length is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field"]})
        try:
            size = int(length)
        except (TypeError, ValueError) as exc:
            raise ApiError("invalid_arguments") from exc
        if size <= 0:
            raise ApiError("missing_argument")
        rec = self.ws.new_file(
            name=str(filename),
            length=size,
            user=self.ws.bot_user_id,
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
            mimetype=mimetypes.guess_type(str(filename))[0] or "application/octet-stream",
        )
        token = secrets.token_urlsafe(12)
        self._uploads[token] = rec.id
        return {"upload_url": f"{self.ws.base_url}/upload/v1/{token}", "file_id": rec.id}

    def files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        items = json_arg(args.get("files"), error="invalid_arguments", name="files")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) and "id" in i for i in items):
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] files: invalid"]})
        records = []
        for item in items:
            rec = self.ws.files.get(str(item["id"]))
            if rec is None or rec.data is None:
                raise ApiError("file_not_found")
            records.append((rec, item))
        channel_refs: list[str] = []
        if args.get("channel_id"):
            channel_refs.append(str(args["channel_id"]))
        if args.get("channels"):
            channel_refs.extend(c.strip() for c in str(args["channels"]).split(",") if c.strip())
        thread_ts = args.get("thread_ts") or None
        if thread_ts and len(channel_refs) != 1:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] thread_ts needs one channel"]})
        channels = [self._channel({"channel": ref}) for ref in channel_refs]
        for rec, item in records:
            rec.title = str(item.get("title") or rec.title or rec.name)
            rec.completed = True
            rec.channels = [c.id for c in channels]
            rec.thread_ts = thread_ts
            self.ws.emit({"type": "file_uploaded", "file": rec.to_api()})
        for channel in channels:
            text = args.get("initial_comment") or ""
            msg = self._bot_message(
                channel.id, str(text), None, None, thread_ts=thread_ts, files=[r.to_api() for r, _ in records]
            )
            msg.source = "files"
            self.ws.add_message(msg)
            for rec, _ in records:
                self.ws.emit({"type": "file_shared", "channel": channel.id, "ts": msg.ts, "file": rec.to_api()})
        return {"files": [rec.to_api() for rec, _ in records]}

    def users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user")
        if not user or user not in self.ws.users:
            raise ApiError("user_not_found")
        return {"user": self.ws.user_api(str(user))}

    def usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not group:
            raise ApiError("invalid_arguments")
        if group not in self.ws.usergroups:
            raise ApiError("no_such_subteam")
        return {"users": list(self.ws.usergroups[str(group)])}

    def conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.ws.channels.get(str(args.get("channel") or ""))
        if channel is None:
            raise ApiError("channel_not_found")
        return {"channel": channel.to_api(self.ws.bot_user_id)}

    # ---- files over plain HTTP ------------------------------------------------------------
    async def handle_upload(self, request: web.Request) -> web.Response:
        faulted = self._take_fault("upload")
        if faulted is not None:
            return faulted
        file_id = self._uploads.get(request.match_info["token"])
        if file_id is None:
            return web.Response(status=404, text="not found")
        data: bytes | None = None
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if getattr(part, "filename", None) or part.name in ("file", "filename"):
                    data = bytes(await part.read())  # type: ignore[union-attr]
                    break
            if data is None:
                return web.Response(status=400, text="no file part")
        else:
            data = await request.read()
        rec = self.ws.files[file_id]
        rec.data = data
        return web.Response(text=f"OK - {len(data)}")

    async def handle_download(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.bot_token}":
            return web.Response(status=403, text="authorization required")
        rec = self.ws.files.get(request.match_info["file_id"])
        if rec is None or rec.data is None or not rec.completed:
            return web.Response(status=404, text="file not found")
        return web.Response(body=rec.data, content_type=rec.mimetype)

    # ---- response_url ---------------------------------------------------------------------
    def new_response_target(self, **kwargs: Any) -> ResponseTarget:
        rid = secrets.token_urlsafe(12)
        target = ResponseTarget(id=rid, **kwargs)
        self.ws.response_targets[rid] = target
        return target

    async def handle_response_url(self, request: web.Request) -> web.Response:
        target = self.ws.response_targets.get(request.match_info["rid"])
        if target is None or target.uses >= RESPONSE_URL_MAX_USES or time.time() - target.created > RESPONSE_URL_TTL:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        try:
            if request.content_type == "application/json":
                body = await request.json()
            else:
                form = await request.post()
                raw = form.get("payload")
                body = json.loads(raw) if isinstance(raw, str) else {k: v for k, v in form.items()}
            if not isinstance(body, dict):
                raise ApiError("invalid_payload", status=400)
            self.apply_response(target, body, source="response_url")
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        except ApiError as err:
            return web.json_response(err.body(), status=400 if err.status == 200 else err.status)
        target.uses += 1
        return web.json_response({"ok": True})

    def apply_response(self, target: ResponseTarget, body: dict[str, Any], *, source: str) -> None:
        """Post/replace/delete as Slack does for a ``response_url`` body or an HTTP answer body."""
        self.ws.response_posts.append(
            {
                "target": target.id,
                "channel": target.channel,
                "user": target.user,
                "body": body,
                "source": source,
            }
        )
        original: Message | Ephemeral | None = None
        if target.message_ts:
            if target.is_ephemeral:
                original = self.ws.find_ephemeral(target.channel, target.message_ts)
            else:
                original = self.ws.find_message(target.channel, target.message_ts)
        if as_bool(body.get("delete_original")):
            if original is None:
                raise ApiError("message_not_found")
            self.ws.delete_message(original)
            return
        text, blocks, attachments = check_content(body)
        if as_bool(body.get("replace_original")) and original is not None:
            self.ws.edit_message(original, text=text or "", blocks=blocks or [], attachments=attachments or [])
            return
        if body.get("response_type") == "in_channel":
            msg = self._bot_message(
                target.channel, text, blocks, attachments, thread_ts=body.get("thread_ts") or target.thread_ts
            )
            msg.source = source
            self.ws.add_message(msg)
            return
        eph = Ephemeral(
            channel=target.channel,
            user=target.user,
            ts=self.ws.clock.next(),
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            thread_ts=body.get("thread_ts") or target.thread_ts,
            source=source,
            bot_id=self.ws.bot_id,
        )
        self.ws.add_ephemeral(eph)

    # ---- emulator endpoints ---------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {**self.ws.snapshot(), "rate_limited": self.limited.snapshot(),
                **{name: part() for name, part in self.extra_state.items()}}

    async def handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def handle_faults(self, request: web.Request) -> web.Response:
        """POST a JSON fault rule (or a list of them); GET lists them; DELETE clears them."""
        if request.method == "GET":
            return web.json_response({"faults": self.faults.describe()})
        if request.method == "DELETE":
            self.faults.clear()
            return web.json_response({"faults": []})
        if request.method != "POST":
            return web.json_response({"error": "method not allowed"}, status=405)
        try:
            body = await request.json()
            rules = [Fault(**rule) for rule in (body if isinstance(body, list) else [body])]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for rule in rules:
            self.faults.add(rule)
        return web.json_response({"faults": self.faults.describe()}, status=201)

    async def handle_limits(self, request: web.Request) -> web.Response:
        """GET the rate limits; POST ``{"enabled": false}`` turns them off (true: on), ``{"reset": true}``
        fills every bucket again."""
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"error": "the body is not JSON"}, status=400)
            if not isinstance(body, dict) or not isinstance(body.get("enabled", True), bool):
                return web.json_response({"error": "expected {\"enabled\": true|false, \"reset\": true}"},
                                         status=400)
            if "enabled" in body:
                self.limits.enabled = body["enabled"]
            if body.get("reset"):
                self.limits.reset()
        elif request.method != "GET":
            return web.json_response({"error": "method not allowed"}, status=405)
        return web.json_response(self.limits.describe())
