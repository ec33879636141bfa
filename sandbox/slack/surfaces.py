"""What a user does with views, sent to the app as Slack sends it: ``view_submission`` (and the app's
``response_action`` applied), ``view_closed``, ``block_actions`` from a modal or the Home tab, and the
``app_home_opened`` event — over HTTP with a signature, or as Socket Mode envelopes."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

from .client import TIMEOUT_STATUS, Reply, Sender, find_action
from .content import ApiError, check_view
from .socket_mode import SocketMode
from .view_state import build_values
from .views import SUBMISSION_TIMEOUT, ViewRecord, ViewStore

Via = Literal["http", "socket"]


class Surfaces:
    def __init__(self, store: ViewStore, sender: Sender, socket: SocketMode) -> None:
        self.store = store
        self.ws = store.ws
        self.sender = sender
        self.socket = socket
        #: Every Events API body sent (``event_callback``), in order.
        self.events: list[dict[str, Any]] = []

    # ---- delivery ---------------------------------------------------------------------------
    async def _interactive(self, payload: dict[str, Any], *, via: Via, response: bool) -> Reply:
        self.sender.sent.append({"kind": payload["type"], "payload": payload, "tamper": None, "via": via})
        if via == "socket":
            status, ack = await self.socket.deliver("interactive", payload, accepts_response_payload=response)
            return self.socket._reply(status, ack, payload, "")
        body = urlencode({"payload": json.dumps(payload)}).encode()
        timeout = SUBMISSION_TIMEOUT if response else None
        status, text, headers = await self.sender._post(body, tamper=None, url=None, timeout=timeout)
        return Reply(status, text, headers, payload, "")

    def _live(self, user: str, view_id: str | None) -> ViewRecord:
        rec = self.store.top(user) if view_id is None else self.store.get(view_id)
        if rec is None or rec.user != user:
            raise LookupError(f"{user} has no open view {view_id or ''}".rstrip())
        return rec

    def _base(self, kind: str, user: str) -> dict[str, Any]:
        return {
            "type": kind,
            "team": {"id": self.ws.team_id, "domain": self.ws.team_domain},
            "user": self.sender.user_object(user),
            "api_app_id": self.ws.app_id,
            "token": self.sender.verification_token,
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # ---- modals -----------------------------------------------------------------------------
    async def submit_view(
        self, user: str, view_id: str | None = None, values: Mapping[str, Any] | None = None, *, via: Via = "http"
    ) -> Reply:
        """Submit the user's top modal view with ``values`` entered (see :func:`build_values`) and apply
        the app's answer as Slack does (:meth:`apply_submission`). Required fields left empty are
        refused by the client: nothing is sent, ``outcome`` is ``incomplete``, the errors are shown."""
        rec = self._live(user, view_id)
        if rec.type != "modal" or rec is not self.store.top(user):
            raise LookupError(f"view {rec.id} is not the modal {user} sees; only the top view can be submitted")
        if not rec.spec.get("submit"):
            raise LookupError(f"view {rec.id} has no submit button")
        state, client_errors = build_values(rec.blocks, values, rec.values)
        rec.values = state
        if client_errors:
            self.store.set_errors(rec, client_errors)
            return Reply(0, "", {}, {}, "", outcome="incomplete")
        rec.errors, rec.problem = {}, None
        payload = {
            **self._base("view_submission", user),
            "trigger_id": self.sender.triggers.issue(user, view_id=rec.id),
            "view": rec.to_api(self.ws),
            "response_urls": [],
        }
        reply = await self._interactive(payload, via=via, response=True)
        reply.outcome = self.apply_submission(rec, reply.status, reply.text)
        return reply

    def apply_submission(self, rec: ViewRecord, status: int, text: str) -> str:
        """An empty 200 closes the submitted view; ``response_action`` ``errors`` keeps it open with the
        messages under their input blocks, ``update`` replaces it, ``push`` stacks a new view on it,
        ``clear`` closes the whole modal. Anything else (an HTTP error, a late answer, an invalid
        ``response_action``) keeps the view open with :attr:`ViewRecord.problem` saying why."""
        if status != 200:
            if status == TIMEOUT_STATUS:
                why = "the app did not answer within 3 seconds"
            elif text == "dispatch_failed":
                why = "no app is connected over Socket Mode (dispatch_failed)"
            else:
                why = f"HTTP {status}"
            return self._problem(rec, why)
        if not text.strip():
            self.store.pop(rec.user)
            return "closed"
        try:
            data = json.loads(text)
        except ValueError:
            return self._problem(rec, "the answer is not JSON")
        if not isinstance(data, dict):
            return self._problem(rec, "the answer is not a JSON object")
        action = data.get("response_action")
        if action is None:
            self.store.pop(rec.user)
            return "closed"
        if action == "errors":
            errors = data.get("errors")
            inputs = rec.input_blocks()
            if not isinstance(errors, dict) or not errors:
                return self._problem(rec, "response_action errors needs an errors object")
            wrong = sorted(k for k in errors if k not in inputs)
            if wrong:
                return self._problem(rec, f"errors name blocks that are not input blocks of the view: {wrong}")
            self.store.set_errors(rec, {str(k): str(v) for k, v in errors.items()})
            return "errors"
        if action == "clear":
            self.store.clear(rec.user)
            return "cleared"
        if action in ("update", "push"):
            try:
                spec = check_view(data.get("view"), kinds=("modal",))
                self.store.check_external_id(spec, keep=rec if action == "update" else None)
                if action == "update":
                    self.store.update(rec, spec)
                else:
                    self.store.push(rec.user, spec)
            except ApiError as err:
                return self._problem(rec, f"response_action {action}: {err.error} {err.extra or ''}".rstrip())
            return "updated" if action == "update" else "pushed"
        return self._problem(rec, f"unknown response_action {action!r}")

    def _problem(self, rec: ViewRecord, why: str) -> str:
        self.store.set_errors(rec, rec.errors, problem=why)
        return "failed"

    async def close_view(
        self, user: str, view_id: str | None = None, *, clear: bool = False, via: Via = "http"
    ) -> Reply | None:
        """The user closes their top modal view (``clear=True``, or a view with ``clear_on_close``:
        the whole modal). A ``view_closed`` payload goes to the app when the view has
        ``notify_on_close``; returns its reply, or None when nothing was sent."""
        rec = self._live(user, view_id)
        if rec is not self.store.top(user):
            raise LookupError(f"view {rec.id} is not the modal {user} sees; only the top view can be closed")
        cleared = clear or bool(rec.spec.get("clear_on_close"))
        view = rec.to_api(self.ws)
        if cleared:
            self.store.clear(user)
        else:
            self.store.pop(user)
        if not rec.spec.get("notify_on_close"):
            return None
        payload = {**self._base("view_closed", user), "view": view, "is_cleared": cleared}
        return await self._interactive(payload, via=via, response=False)

    async def click_view(
        self,
        user: str,
        view_id: str,
        *,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        via: Via = "http",
    ) -> Reply:
        """Click a button in one of the user's views (a modal or their Home tab): a ``block_actions``
        payload with ``container.type = "view"`` and a fresh trigger id tied to that view."""
        rec = self._live(user, view_id)
        if rec.type == "modal" and rec is not self.store.top(user):
            raise LookupError(f"view {rec.id} is not the modal {user} sees; only the top view can be clicked")
        found_block, element = find_action(rec.blocks, action_id, block_id)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": found_block,
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        for key in ("text", "style"):
            if element.get(key):
                action[key] = element[key]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        payload = {
            **self._base("block_actions", user),
            "container": {"type": "view", "view_id": rec.id},
            "trigger_id": self.sender.triggers.issue(user, view_id=rec.id),
            "view": rec.to_api(self.ws),
            "state": {"values": rec.to_api(self.ws)["state"]["values"]},
            "actions": [action],
        }
        return await self._interactive(payload, via=via, response=False)

    # ---- Home -------------------------------------------------------------------------------
    async def open_home(self, user: str, *, tab: str = "home", via: Via = "http") -> Reply:
        """The user opens the app's Home (``tab`` ``home`` or ``messages``): an ``app_home_opened``
        event, carrying the Home view when one was published for them."""
        self.sender._user(user)
        now = time.time()
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": f"D{user}",
            "tab": tab,
            "event_ts": f"{now:.6f}",
        }
        home = self.store.homes.get(user)
        if tab == "home" and home is not None:
            event["view"] = home.to_api(self.ws)
        body = {
            "token": self.sender.verification_token,
            "team_id": self.ws.team_id,
            "context_team_id": self.ws.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.ws.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.ws.team_id,
                    "user_id": self.ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        self.events.append(body)
        self.sender.sent.append({"kind": "event_callback", "payload": body, "tamper": None, "via": via})
        if via == "socket":
            status, ack = await self.socket.deliver(
                "events_api", body, accepts_response_payload=False, extra={"retry_attempt": 0, "retry_reason": ""}
            )
            return self.socket._reply(status, ack, body, "")
        raw = json.dumps(body).encode()
        status, text, headers = await self.sender._post(raw, tamper=None, url=None, content_type="application/json")
        return Reply(status, text, headers, body, "")
