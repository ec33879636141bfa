"""Forms in modals (pure): `/hello deploy` or `/hello canary` with no version opens one.

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
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.views import View

from bot.core.text import clean, escape

CALLBACK = "hello_form"
TITLES = {"deploy": "Deploy", "canary": "Start a canary"}
RECENT, VERSION = "recent", "version"  # the select of recent versions; the free-text version
TARGET, WHERE = "target", "where"  # the select of service / environment pairs; the line naming the resolved one
MAX_OPTIONS, MAX_LABEL, MAX_VALUE = 100, 75, 150  # Slack's static_select and option object limits
PICK_ONE = "Choose a recent version or type one."
NOT_BOTH = "Choose a recent version or type one, not both."
PICK_TARGET = "Choose a service and environment."


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


def _pair_option(service: str, environment: str) -> dict:
    shown = f"{service} / {environment}"
    if len(shown) > MAX_LABEL:
        shown = shown[:MAX_LABEL - 1] + "…"
    return {"text": {"type": "plain_text", "text": shown}, "value": f"{service} {environment}"}


def _pairs(pairs: Sequence[tuple[str, str]]) -> dict:
    """The required select of service / environment pairs; over 100, grouped by service (Slack's limits)."""
    fit = list(dict.fromkeys((s, e) for s, e in pairs if s and e and len(s) + len(e) < MAX_VALUE))
    element: dict[str, Any] = {"type": "static_select", "action_id": TARGET,
                               "placeholder": {"type": "plain_text", "text": "Choose a service and environment"}}
    if len(fit) <= MAX_OPTIONS:
        element["options"] = [_pair_option(s, e) for s, e in fit]
    else:
        groups: dict[str, list[dict]] = {}
        for service, environment in fit:
            groups.setdefault(service, []).append(_pair_option(service, environment))
        element["option_groups"] = [
            {"label": {"type": "plain_text", "text": service if len(service) <= MAX_LABEL
                       else service[:MAX_LABEL - 1] + "…"}, "options": options[:MAX_OPTIONS]}
            for service, options in list(groups.items())[:MAX_OPTIONS]]
    return {"type": "input", "block_id": TARGET, "optional": False, "element": element,
            "label": {"type": "plain_text", "text": "Service and environment"},
            "hint": {"type": "plain_text", "text": "What this change is for: nothing here names one service"}}


def _where(service: str, environment: str) -> dict:
    text = f"For *{escape(service)}* in *{escape(environment)}*"
    return {"type": "context", "block_id": WHERE, "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def view(command: str, channel: str, recent: Sequence[str] = (), *, running: str = "",
         require_reason: bool = False, service: str = "", environment: str = "",
         pairs: Sequence[tuple[str, str]] = ()) -> dict:
    """The modal for ``command`` (deploy or canary), remembering the channel it was asked from.

    With ``recent`` versions (newest first; ``running`` marked) the version is chosen from a select or
    typed in an optional field below it (exactly one of the two); without them it is typed. A
    ``service`` and ``environment`` (several services, resolved when the command was typed) are kept and
    shown; else ``pairs`` of them make a select the person must choose from."""
    # each once, newest first; a value Slack cannot carry is left out (never cut: it would be another version)
    listed = list(dict.fromkeys(v for v in recent if v and len(v) <= MAX_VALUE))[:MAX_OPTIONS]
    meta: dict[str, str] = {"command": command, "channel": channel}
    blocks: list[dict] = []
    if service:
        meta |= {"service": service, "environment": environment}
        blocks.append(_where(service, environment))
    elif pairs:
        blocks.append(_pairs(pairs))
    if listed:
        blocks.append(_select(listed, running))
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
             "private_metadata": json.dumps(meta), "blocks": blocks}
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
