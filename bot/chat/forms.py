"""Forms in modals (pure): `/hello deploy` or `/hello canary` with no version opens one.

A submitted form becomes the same command text a person would type (``deploy v2``, ``canary v2 25%``),
so it goes through the same parsing, permission check, plan and approval; a parse error is shown in
the form itself (``response_action: errors``) rather than as a message.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.views import View

CALLBACK = "hello_form"
TITLES = {"deploy": "Deploy", "canary": "Start a canary"}


def _input(block_id: str, label: str, hint: str, *, optional: bool = False, placeholder: str = "") -> dict:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "max_length": 100}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder[:150]}
    return {"type": "input", "block_id": block_id, "optional": optional, "element": element,
            "label": {"type": "plain_text", "text": label}, "hint": {"type": "plain_text", "text": hint[:2000]}}


def view(command: str, channel: str, recent: Sequence[str] = (), *, require_reason: bool = False) -> dict:
    """The modal for ``command`` (deploy or canary), remembering the channel it was asked from."""
    hint = "Recent versions: " + ", ".join(recent[-6:]) if recent else "For example v2 or v2.1.0-rc1"
    blocks = [_input("version", "Version", hint, placeholder=recent[-1] if recent else "v2")]
    if command == "canary":
        blocks.append(_input("percent", "Share of the traffic", "Leave empty for an analysed canary that walks its "
                             "steps; a share like 10% makes a manual canary", optional=True, placeholder="10%"))
    blocks.append(_input("reason", "Reason", "Why this change: shown in the request, the release and the audit "
                         "trail", optional=not require_reason, placeholder="fix the login bug"))
    blocks[-1]["element"]["max_length"] = 300
    modal = {"type": "modal", "callback_id": CALLBACK, "title": {"type": "plain_text", "text": TITLES[command]},
             "submit": {"type": "plain_text", "text": "Ask for approval"},
             "close": {"type": "plain_text", "text": "Cancel"},
             "private_metadata": json.dumps({"command": command, "channel": channel}), "blocks": blocks}
    View(**modal).validate_json()
    return modal


def submitted(view_payload: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(command, channel, {block_id: value})`` from a ``view_submission``'s view."""
    meta = json.loads(view_payload.get("private_metadata") or "{}")
    values: dict[str, str] = {}
    for block_id, actions in ((view_payload.get("state") or {}).get("values") or {}).items():
        for action in actions.values():
            values[block_id] = str(action.get("value") or "").strip()
    return str(meta.get("command", "")), str(meta.get("channel", "")), values


def command_text(command: str, values: Mapping[str, str]) -> str:
    """The command as typed: ``deploy v2`` / ``canary v2 25% 'fix the login bug'``."""
    words = [command, values.get("version", "")]
    if command == "canary" and values.get("percent"):
        words.append(values["percent"] if values["percent"].endswith("%") else values["percent"] + "%")
    text = " ".join(w for w in words if w)
    reason = " ".join(values.get("reason", "").split())
    return f"{text} {shlex.quote(reason)}" if reason else text


def error_block(message: str) -> str:
    """Which field a usage error belongs under."""
    return "reason" if "reason" in message.lower() else "percent" if "percent" in message.lower() else "version"
