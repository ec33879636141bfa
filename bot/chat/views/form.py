"""The form (a modal) that `/hello deploy` or `/hello canary` opens when given no version.

The version is chosen from a select of the recent ones or typed (a version not in the list). With several
services the form carries its target: the service and environment the command resolved, kept in the
view's ``private_metadata`` and shown in a context line; where nothing determined the service, a select
of "service / environment" pairs comes first. Reading a submitted form is :mod:`bot.chat.forms`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.chat.views import kit
from bot.core.text import escape

CALLBACK = "hello_form"
TITLES = {"deploy": "Deploy", "canary": "Start a canary"}
RECENT, VERSION = "recent", "version"  # the select of recent versions; the free-text version
TARGET, WHERE = "target", "where"  # the select of service / environment pairs; the line naming the resolved one
MAX_OPTIONS, MAX_LABEL, MAX_VALUE = 100, 75, 150  # Slack's static_select and option object limits


def _shown(text: str, mark: str = "") -> str:
    """An option's label of at most 75 characters, ``…`` marking a cut, ``mark`` kept."""
    return text + mark if len(text) + len(mark) <= MAX_LABEL else text[:MAX_LABEL - len(mark) - 1] + "…" + mark


def _recent(versions: Sequence[str], running: str) -> kit.Block:
    options = [kit.option(_shown(v, " (running)" if v == running else ""), v) for v in versions]
    return kit.input_select(RECENT, "Version", "From the Deployment's ReplicaSet history, newest first",
                            kit.select(RECENT, options, "Choose a recent version"), optional=True)


def _pairs(pairs: Sequence[tuple[str, str]]) -> kit.Block:
    """The required select of service / environment pairs; over 100, grouped by service (Slack's limits)."""
    fit = list(dict.fromkeys((s, e) for s, e in pairs if s and e and len(s) + len(e) < MAX_VALUE))
    options = [kit.option(_shown(f"{s} / {e}"), f"{s} {e}") for s, e in fit]
    groups = []
    if len(fit) > MAX_OPTIONS:
        by_service: dict[str, list] = {}
        for (service, _), option in zip(fit, options, strict=True):
            by_service.setdefault(service, []).append(option)
        groups = [kit.option_group(_shown(service), grouped) for service, grouped in by_service.items()]
        options = []
    select = kit.select(TARGET, options, "Choose a service and environment", groups=groups)
    return kit.input_select(TARGET, "Service and environment",
                            "What this change is for: nothing here names one service", select)


def modal(command: str, channel: str, recent: Sequence[str] = (), *, running: str = "",
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
    items: list[kit.Block] = []
    if service:
        meta |= {"service": service, "environment": environment}
        items.append(kit.context(f"For *{escape(service)}* in *{escape(environment)}*", block_id=WHERE))
    elif pairs:
        items.append(_pairs(pairs))
    if listed:
        items.append(_recent(listed, running))
    items.append(kit.input_text(VERSION, "Or another version" if listed else "Version",
                                "For a version not in the list, e.g. v2.1.0-rc1" if listed
                                else "For example v2 or v2.1.0-rc1", optional=bool(listed), placeholder="v2"))
    if command == "canary":
        items.append(kit.input_text("percent", "Share of the traffic", "Leave empty for an analysed canary that "
                                    "walks its steps; a share like 10% makes a manual canary", optional=True,
                                    placeholder="10%"))
    items.append(kit.input_text("reason", "Reason", "Why this change: shown in the request, the release and the "
                                "audit trail", optional=not require_reason, placeholder="fix the login bug",
                                max_length=300))
    return kit.modal(CALLBACK, TITLES[command], submit="Ask for approval", close="Cancel",
                     metadata=json.dumps(meta), items=items)
