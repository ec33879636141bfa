"""The Slack-to-app half of the emulator: signed slash commands and ``block_actions`` clicks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp

from .state import Ephemeral, Message, ResponseTarget, Workspace
from .views import Triggers
from .webapi import WebApi

Tamper = Literal["signature", "missing", "stale", "timestamp"] | None
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
STALE_SECONDS = 6 * 60
#: ``Reply.status`` when the app did not answer in time (``Reply.text`` is ``operation_timeout``).
TIMEOUT_STATUS = 408


def sign(signing_secret: str, timestamp: str, body: bytes | str) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:<timestamp>:<body>``."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    signing_secret: str,
    body: bytes,
    *,
    tamper: Tamper = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """Headers Slack sends with a request body; ``tamper`` breaks them the way an attacker might."""
    now = int(time.time())
    ts = str(now - STALE_SECONDS) if tamper == "stale" else str(now)
    headers = {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(signing_secret, ts, body),
    }
    if tamper == "signature":
        sig = headers["X-Slack-Signature"]
        headers["X-Slack-Signature"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    elif tamper == "timestamp":
        headers["X-Slack-Request-Timestamp"] = str(now + 1)
    elif tamper == "missing":
        del headers["X-Slack-Signature"]
        del headers["X-Slack-Request-Timestamp"]
    return headers


@dataclass
class Reply:
    """The app's HTTP answer to a request the emulator sent."""

    status: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    response_url: str = ""
    #: For view submissions: what became of the modal (``closed``, ``errors``, ``updated``, ``pushed``,
    #: ``cleared``, ``incomplete`` when the client refused to send it, ``failed`` on a bad answer).
    outcome: str = ""

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


def find_action(blocks: list[dict[str, Any]], action_id: str, block_id: str | None) -> tuple[str, dict[str, Any]]:
    """(block_id, element) of the interactive element ``action_id`` in ``blocks``."""
    seen: list[str] = []
    for block in blocks:
        elements: list[dict[str, Any]] = []
        if block.get("type") == "actions":
            elements = list(block.get("elements", []))
        elif isinstance(block.get("accessory"), dict):
            elements = [block["accessory"]]
        for element in elements:
            seen.append(str(element.get("action_id")))
            if element.get("action_id") == action_id and (block_id is None or block.get("block_id") == block_id):
                return str(block.get("block_id", "")), element
    raise LookupError(
        f"no action {action_id!r}"
        + (f" in block {block_id!r}" if block_id else "")
        + f" in this message; its actions are {seen or 'none'}"
    )


class Sender:
    """Sends signed requests to the app's request URL, the way Slack does."""

    def __init__(
        self,
        workspace: Workspace,
        webapi: WebApi,
        *,
        signing_secret: str,
        verification_token: str,
        request_url: str | None,
        triggers: Triggers | None = None,
    ) -> None:
        self.ws = workspace
        self.triggers = triggers if triggers is not None else Triggers()
        self.webapi = webapi
        self.signing_secret = signing_secret
        self.verification_token = verification_token
        self.request_url = request_url
        self.sent: list[dict[str, Any]] = []
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _user(self, user: str) -> dict[str, Any]:
        if user not in self.ws.users:
            raise LookupError(f"unknown user {user!r}; workspace users are {sorted(self.ws.users)}")
        return self.ws.users[user]

    def _channel_name(self, channel: str) -> str:
        ch = self.ws.channels.get(channel)
        if ch is None:
            raise LookupError(f"unknown channel {channel!r}; workspace channels are {sorted(self.ws.channels)}")
        return ch.name

    def _response_url(self, target: ResponseTarget) -> str:
        return f"{self.ws.base_url}/response/{target.id}"

    async def _post(
        self,
        body: bytes,
        *,
        tamper: Tamper,
        url: str | None,
        content_type: str = "application/x-www-form-urlencoded",
        timeout: float | None = None,
    ) -> tuple[int, str, dict[str, str]]:
        """POST a signed body; with ``timeout``, an app slower than that is answered
        ``(TIMEOUT_STATUS, "operation_timeout", {})`` as Slack gives up on it."""
        target = url or self.request_url
        if not target:
            raise RuntimeError("no request URL: pass request_url= to the emulator (or url= here)")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = signed_headers(self.signing_secret, body, tamper=tamper, content_type=content_type)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": aiohttp.ClientTimeout(total=timeout)}
        try:
            async with self._session.post(target, data=body, headers=headers, **extra) as resp:
                return resp.status, await resp.text(), dict(resp.headers)
        except TimeoutError:
            return TIMEOUT_STATUS, "operation_timeout", {}

    def user_object(self, user: str) -> dict[str, Any]:
        """``user`` as interaction payloads carry it."""
        u = self._user(user)
        return {"id": user, "username": u["name"], "name": u["name"], "team_id": self.ws.team_id}

    async def send_command(
        self,
        *,
        user: str = "U1",
        channel: str = "C1",
        text: str = "",
        command: str = "/hello",
        tamper: Tamper = None,
        url: str | None = None,
    ) -> Reply:
        """POST a slash command; an answer body with content is shown as Slack shows it."""
        u = self._user(user)
        target = self.webapi.new_response_target(channel=channel, user=user)
        fields = {
            "token": self.verification_token,
            "team_id": self.ws.team_id,
            "team_domain": self.ws.team_domain,
            "channel_id": channel,
            "channel_name": self._channel_name(channel),
            "user_id": user,
            "user_name": u["name"],
            "command": command,
            "text": text,
            "api_app_id": self.ws.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(target),
            "trigger_id": self.triggers.issue(user),
        }
        body = urlencode(fields).encode()
        self.sent.append({"kind": "command", "payload": fields, "tamper": tamper})
        status, text_body, headers = await self._post(body, tamper=tamper, url=url)
        reply = Reply(status, text_body, headers, fields, fields["response_url"])
        if status == 200 and text_body.strip():
            data = reply.json
            if not isinstance(data, dict):
                data = {"text": text_body}
            if any(data.get(k) for k in ("text", "blocks", "attachments")):
                self.webapi.apply_response(target, data, source="command_response")
        return reply

    def build_block_actions(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
    ) -> tuple[dict[str, Any], ResponseTarget]:
        """The ``block_actions`` payload for clicking ``action_id`` on a stored message."""
        u = self._user(user)
        channel_name = self._channel_name(channel)
        msg: Message | Ephemeral | None = self.ws.find_message(channel, message_ts)
        is_ephemeral = False
        if msg is None:
            msg = self.ws.find_ephemeral(channel, message_ts)
            is_ephemeral = msg is not None
            if msg is not None and msg.user != user:
                raise LookupError(f"ephemeral message {message_ts} in {channel} is visible to {msg.user}, not {user}")
        if msg is None:
            raise LookupError(f"no message {message_ts} in channel {channel}")
        found_block_id, element = find_action(msg.blocks, action_id, block_id)
        target = self.webapi.new_response_target(
            channel=channel,
            user=user,
            message_ts=message_ts,
            is_ephemeral=is_ephemeral,
            thread_ts=msg.thread_ts,
        )
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": found_block_id,
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("type") == "static_select":
            # a choice, not a click: Slack sends the chosen option (and no value), one of the element's options
            options = [*element.get("options", []), *(o for g in element.get("option_groups", [])
                                                      for o in g.get("options", []))]
            option = next((o for o in options if value is not None and o.get("value") == value), None)
            if option is None:
                raise LookupError(f"{action_id!r} has no option {value!r}; its options are "
                                  f"{[o.get('value') for o in options]}")
            action["selected_option"] = option
            if element.get("placeholder"):
                action["placeholder"] = element["placeholder"]
        else:
            if "text" in element:
                action["text"] = element["text"]
            chosen = value if value is not None else element.get("value")
            if chosen is not None:
                action["value"] = chosen
        if element.get("style"):
            action["style"] = element["style"]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": u["name"], "name": u["name"], "team_id": self.ws.team_id},
            "api_app_id": self.ws.app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": is_ephemeral,
            },
            "trigger_id": self.triggers.issue(user),
            "team": {"id": self.ws.team_id, "domain": self.ws.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel_name},
            "state": {"values": {}},
            "response_url": self._response_url(target),
            "actions": [action],
        }
        if not is_ephemeral:
            payload["message"] = msg.to_api()
        return payload, target

    async def click(
        self,
        *,
        user: str = "U2",
        channel: str = "C1",
        message_ts: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        tamper: Tamper = None,
        url: str | None = None,
    ) -> Reply:
        """POST a signed ``block_actions`` interaction (form field ``payload``) for a button click."""
        payload, _ = self.build_block_actions(
            user=user,
            channel=channel,
            message_ts=message_ts,
            action_id=action_id,
            value=value,
            block_id=block_id,
        )
        body = urlencode({"payload": json.dumps(payload)}).encode()
        self.sent.append({"kind": "block_actions", "payload": payload, "tamper": tamper})
        status, text_body, headers = await self._post(body, tamper=tamper, url=url)
        return Reply(status, text_body, headers, payload, payload["response_url"])
