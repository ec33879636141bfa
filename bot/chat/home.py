"""The App Home tab (pure): what waits for this user, what runs, the service, the last changes.

:func:`view` turns :class:`HomeData` into a ``home`` view for ``views.publish``, checked against
Slack's own limits (100 blocks, the section text lengths) through ``slack_sdk``'s view model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.views import View

from bot.chat import render

MAX_BLOCKS = 100


@dataclass(frozen=True)
class Pending:
    """An approval request this user may decide."""

    id: str
    label: str
    summary: str
    requester: str
    channel: str
    expires: str  # already formatted


@dataclass
class HomeData:
    user: str
    may: list[str] = field(default_factory=list)  # what this user may do, in words
    pending: list[Pending] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # mrkdwn lines, bot-written
    service: list[str] = field(default_factory=list)  # mrkdwn lines: versions, weights, certificate, warnings
    changes: list[str] = field(default_factory=list)  # mrkdwn lines, escaped
    schedules: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # mrkdwn lines, escaped: what fires now
    delivery: str = ""  # one line: the last 30 days' delivery figures
    problems: list[str] = field(default_factory=list)  # what could not be read


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def view(data: HomeData) -> dict:
    """The Home tab for ``data.user``: at most 100 blocks, pending approvals first, with their buttons."""
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
    blocks.append(_header("The service"))
    blocks.append(_section("\n".join(data.service) if data.service else "–"))
    blocks.append(_header("Last changes"))
    blocks.append(_section("\n".join(data.changes) if data.changes else "No changes recorded yet."))
    if data.delivery:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": data.delivery[:3000]}]})
    if data.schedules:
        blocks.append(_header("Scheduled status posts"))
        blocks.append(_section("\n".join(data.schedules)))
    if data.problems:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": render.escape("; ".join(data.problems))[:3000]}]})
    home: dict[str, Any] = {"type": "home", "blocks": render.validate(blocks[:MAX_BLOCKS])}
    View(**home).validate_json()  # Slack's limits, before Slack would refuse the view
    return home
