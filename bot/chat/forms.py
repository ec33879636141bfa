"""Forms in modals (pure): `/hello deploy` or `/hello canary` with no version opens one
(:mod:`bot.chat.views.form` lays it out); this module reads what comes back.

A submitted form becomes the same command text a person would type (``deploy v2``, ``canary v2 25%``),
so it goes through the same parsing, permission check, plan and approval; a parse error is shown in
the form itself (``response_action: errors``) rather than as a message. The version is chosen from a
select of the recent ones or typed (a version not in the list): exactly one of the two.

With several services (a catalogue file) the form carries its target: the service and environment the
command resolved are kept in the view's ``private_metadata`` and shown in a context line; where nothing
determined the service, a select of "service / environment" pairs comes first. Either way the submission
names them: ``deploy greeter production v2 'fix the login bug'``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from bot.chat.views.form import CALLBACK, RECENT, TARGET, VERSION
from bot.core.text import clean

__all__ = ["CALLBACK", "NOT_BOTH", "PICK_ONE", "PICK_TARGET", "RECENT", "TARGET", "VERSION", "command_text",
           "error_block", "submitted", "target", "target_errors", "version_errors"]

PICK_ONE = "Choose a recent version or type one."
NOT_BOTH = "Choose a recent version or type one, not both."
PICK_TARGET = "Choose a service and environment."


def submitted(view_payload: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(command, channel, {block_id: value})`` from a ``view_submission``'s view."""
    meta = json.loads(view_payload.get("private_metadata") or "{}")
    values: dict[str, str] = {}
    for block_id, actions in ((view_payload.get("state") or {}).get("values") or {}).items():
        for action in actions.values():
            chosen = action.get("selected_option") or {}
            values[block_id] = str(action.get("value") or chosen.get("value") or "").strip()
    return str(meta.get("command", "")), str(meta.get("channel", "")), values


def target(view_payload: Mapping[str, Any], values: Mapping[str, str]) -> tuple[str, str]:
    """The service and environment a submitted form is for: kept in its metadata when the command
    resolved them, else chosen in its select; ``("", "")`` with one service."""
    meta = json.loads(view_payload.get("private_metadata") or "{}")
    if meta.get("service"):
        return str(meta["service"]), str(meta.get("environment", ""))
    service, _, environment = values.get(TARGET, "").partition(" ")
    return service, environment


def target_errors(values: Mapping[str, str]) -> dict[str, str]:
    """With the select of pairs in the form, one must be chosen: ``{block_id: message}``."""
    if TARGET not in values:
        return {}
    service, _, environment = values[TARGET].partition(" ")
    return {} if service and environment else {TARGET: PICK_TARGET}


def command_text(command: str, values: Mapping[str, str], service: str = "", environment: str = "") -> str:
    """The command as typed: ``deploy v2`` / ``canary greeter staging v2 25% 'fix the login bug'``."""
    words = [command, service, environment if service else "", values.get(RECENT) or values.get(VERSION, "")]
    if command == "canary" and values.get("percent"):
        words.append(values["percent"] if values["percent"].endswith("%") else values["percent"] + "%")
    text = clean(" ".join(w for w in words if w))
    reason = " ".join(clean(values.get("reason", "")).split())
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
    if TARGET in values and ("service" in lowered or "environment" in lowered):
        return TARGET
    return RECENT if values.get(RECENT) else VERSION
