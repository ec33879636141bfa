"""Forms in modals (pure): `/hello deploy` or `/hello canary` with no version opens one.

A submitted form becomes the same command text a person would type (``deploy v2``, ``canary v2 25%``),
so it goes through the same parsing, permission check, plan and approval; a parse error is shown in
the form itself (``response_action: errors``) rather than as a message. The version is chosen from a
select of the recent ones or typed (a version not in the list): exactly one of the two.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.views import View

CALLBACK = "hello_form"
TITLES = {"deploy": "Deploy", "canary": "Start a canary"}
RECENT, VERSION = "recent", "version"  # the select of recent versions; the free-text version
MAX_OPTIONS, MAX_LABEL, MAX_VALUE = 100, 75, 150  # Slack's static_select and option object limits
PICK_ONE = "Choose a recent version or type one."
NOT_BOTH = "Choose a recent version or type one, not both."


def _input(block_id: str, label: str, hint: str, *, optional: bool = False, placeholder: str = "") -> dict:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "max_length": 100}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder[:150]}
    return {"type": "input", "block_id": block_id, "optional": optional, "element": element,
            "label": {"type": "plain_text", "text": label}, "hint": {"type": "plain_text", "text": hint[:2000]}}


def _option(version: str, running: str) -> dict:
    mark = " (running)" if version == running else ""
    shown = version if len(version) + len(mark) <= MAX_LABEL else version[:MAX_LABEL - len(mark) - 1] + "…"
    return {"text": {"type": "plain_text", "text": shown + mark}, "value": version}


def _select(versions: Sequence[str], running: str) -> dict:
    return {"type": "input", "block_id": RECENT, "optional": True,
            "element": {"type": "static_select", "action_id": RECENT,
                        "placeholder": {"type": "plain_text", "text": "Choose a recent version"},
                        "options": [_option(v, running) for v in versions]},
            "label": {"type": "plain_text", "text": "Version"},
            "hint": {"type": "plain_text", "text": "From the Deployment's ReplicaSet history, newest first"}}


def view(command: str, channel: str, recent: Sequence[str] = (), *, running: str = "",
         require_reason: bool = False) -> dict:
    """The modal for ``command`` (deploy or canary), remembering the channel it was asked from.

    With ``recent`` versions (newest first; ``running`` marked) the version is chosen from a select or
    typed in an optional field below it (exactly one of the two); without them it is typed."""
    # each once, newest first; a value Slack cannot carry is left out (never cut: it would be another version)
    listed = list(dict.fromkeys(v for v in recent if v and len(v) <= MAX_VALUE))[:MAX_OPTIONS]
    blocks = [_select(listed, running)] if listed else []
    blocks.append(_input(VERSION, "Or another version" if listed else "Version",
                         "For a version not in the list, e.g. v2.1.0-rc1" if listed
                         else "For example v2 or v2.1.0-rc1", optional=bool(listed), placeholder="v2"))
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
            chosen = action.get("selected_option") or {}
            values[block_id] = str(action.get("value") or chosen.get("value") or "").strip()
    return str(meta.get("command", "")), str(meta.get("channel", "")), values


def command_text(command: str, values: Mapping[str, str]) -> str:
    """The command as typed: ``deploy v2`` / ``canary v2 25% 'fix the login bug'``."""
    words = [command, values.get(RECENT) or values.get(VERSION, "")]
    if command == "canary" and values.get("percent"):
        words.append(values["percent"] if values["percent"].endswith("%") else values["percent"] + "%")
    text = " ".join(w for w in words if w)
    reason = " ".join(values.get("reason", "").split())
    return f"{text} {shlex.quote(reason)}" if reason else text


def version_errors(values: Mapping[str, str]) -> dict[str, str]:
    """With the select in the form, exactly one of it and the typed version: ``{block_id: message}``."""
    if RECENT not in values:
        return {}
    if values[RECENT] and values.get(VERSION):
        return {VERSION: NOT_BOTH}
    return {} if values[RECENT] or values.get(VERSION) else {RECENT: PICK_ONE}


def error_block(message: str, values: Mapping[str, str]) -> str:
    """Which field a usage error belongs under (a version's: the select when it gave the version)."""
    lowered = message.lower()
    if "reason" in lowered or "percent" in lowered:
        return "reason" if "reason" in lowered else "percent"
    return RECENT if values.get(RECENT) else VERSION
