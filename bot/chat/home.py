"""The App Home tab (pure): what waits for this user, what runs, the service, the last changes.

:func:`view` turns :class:`HomeData` into a ``home`` view for ``views.publish``, checked against
Slack's own limits (100 blocks, the section text lengths) through ``slack_sdk``'s view model.

With several services (a catalogue file) each service in each environment gets a compact section of
its own; when they would not fit in the view's 100 blocks, each gets one line instead, packed into as
few sections as the text limit allows, and what still does not fit is counted, not dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.views import View

from bot.chat import render

MAX_BLOCKS = 100
MAX_TEXT = 3000  # a section's text


@dataclass(frozen=True)
class Pending:
    """An approval request this user may decide."""

    id: str
    label: str
    summary: str
    requester: str
    channel: str
    expires: str  # already formatted


@dataclass(frozen=True)
class ServiceStatus:
    """One service in one environment as Home shows it (mrkdwn, bot-written, names escaped)."""

    service: str
    environment: str
    lines: tuple[str, ...]  # live versions, canary weight, certificate, health: one fact a line
    line: str  # the same in one line, for when every service cannot have a section


@dataclass
class HomeData:
    user: str
    may: list[str] = field(default_factory=list)  # what this user may do, in words
    pending: list[Pending] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # mrkdwn lines, bot-written
    service: list[str] = field(default_factory=list)  # mrkdwn lines: versions, weights, certificate, warnings
    services: list[ServiceStatus] = field(default_factory=list)  # several services: one per service and environment
    changes: list[str] = field(default_factory=list)  # mrkdwn lines, escaped
    schedules: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # mrkdwn lines, escaped: what fires now
    delivery: str = ""  # one line: the last 30 days' delivery figures
    problems: list[str] = field(default_factory=list)  # what could not be read
    refused: str = ""  # why this person may not read anything here (the read policy): then only that is shown


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def view(data: HomeData) -> dict:
    """The Home tab for ``data.user``: at most 100 blocks, pending approvals first, with their buttons."""
    if data.refused:
        home = {"type": "home", "blocks": render.validate([_header("hello-chatops"), _section(data.refused)],
                                                          limit=MAX_BLOCKS)}
        View(**home).validate_json()
        return home
    blocks: list[dict] = [_header("hello-chatops"),
                          _section(f"Hello <@{data.user}>. " + ("You may " + ", ".join(data.may) + "."
                                                                 if data.may else "You may read the status."))]
    blocks.append(_header("Waiting for you"))
    if not data.pending:
        blocks.append(_section("Nothing waits for your approval."))
    for item in data.pending[:10]:
        blocks.append(_section(f"*{render.escape(item.label)}* {render.escape(item.summary)}\nrequested by "
                               f"<@{item.requester}> in <#{item.channel}> · until {item.expires} · "
                               f"request `{item.id}`"))
        blocks.append({"type": "actions", "block_id": f"home-decision-{item.id}", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": item.id,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": item.id,
             "text": {"type": "plain_text", "text": "Reject"}}]})
    if data.alerts:
        blocks.append(_header("Firing alerts"))
        blocks.append(_section("\n".join(data.alerts)))
    blocks.append(_header("Running now"))
    blocks.append(_section("\n".join(data.running) if data.running else "No release is running."))
    tail: list[dict] = [_header("Last changes"),
                        _section("\n".join(data.changes) if data.changes else "No changes recorded yet.")]
    if data.delivery:
        tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": data.delivery[:3000]}]})
    if data.schedules:
        tail.append(_header("Scheduled status posts"))
        tail.append(_section("\n".join(data.schedules)))
    if data.problems:
        tail.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": render.escape("; ".join(data.problems))[:3000]}]})
    if data.services:
        blocks.append(_header("Services"))
        blocks.extend(service_blocks(data.services, MAX_BLOCKS - len(blocks) - len(tail)))
    else:
        blocks.append(_header("The service"))
        blocks.append(_section("\n".join(data.service) if data.service else "–"))
    blocks.extend(tail)
    home: dict[str, Any] = {"type": "home", "blocks": render.validate(blocks[:MAX_BLOCKS], limit=MAX_BLOCKS)}
    View(**home).validate_json()  # Slack's limits, before Slack would refuse the view
    return home


def service_blocks(items: list[ServiceStatus], budget: int) -> list[dict]:
    """At most ``budget`` blocks for the services: a section each when they fit, else one line each."""
    budget = max(budget, 1)
    if len(items) <= budget:
        return [_section("\n".join((f"*{render.escape(item.service)}* · {render.escape(item.environment)}",
                                    *item.lines))) for item in items]
    chunks: list[str] = []
    current = ""
    room = MAX_TEXT - 120  # the last section keeps room to say how many are left out
    for shown, item in enumerate(items):
        line = item.line[:room]
        if not current or len(current) + 1 + len(line) <= (room if len(chunks) == budget - 1 else MAX_TEXT):
            current = f"{current}\n{line}" if current else line
            continue
        if len(chunks) == budget - 1:
            left = len(items) - shown
            current += f"\n…and {left} more: `/hello status` lists every service and environment"
            break
        chunks.append(current)
        current = line
    chunks.append(current)
    return [_section(chunk) for chunk in chunks]
