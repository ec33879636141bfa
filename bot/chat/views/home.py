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

from bot.chat.views import approval, kit
from bot.core.text import escape

MAX_BLOCKS = kit.VIEW_BLOCKS
MAX_TEXT = kit.TEXT  # a section's text


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


def view(data: HomeData) -> dict:
    """The Home tab for ``data.user``: at most 100 blocks, pending approvals first, with their buttons."""
    if data.refused:
        home: dict[str, Any] = {"type": "home", "blocks": kit.blocks([kit.header("hello-chatops"),
                                                                       kit.section(data.refused)], limit=MAX_BLOCKS)}
        View(**home).validate_json()
        return home
    may = "You may " + ", ".join(data.may) + "." if data.may else "You may read the status."
    head: list[kit.Block] = [kit.header("hello-chatops"), kit.section(f"Hello <@{data.user}>. {may}"),
                             kit.header("Waiting for you")]
    if not data.pending:
        head.append(kit.section("Nothing waits for your approval."))
    for item in data.pending[:10]:
        head.append(kit.section(f"*{escape(item.label)}* {escape(item.summary)}\nrequested by <@{item.requester}> "
                                f"in <#{item.channel}> · until {item.expires} · request `{item.id}`"))
        head.append(approval.decision(item.id, block_id=f"home-decision-{item.id}"))
    if data.alerts:
        head += [kit.header("Firing alerts"), kit.section("\n".join(data.alerts))]
    running = "\n".join(data.running) if data.running else "No release is running."
    head += [kit.header("Running now"), kit.section(running)]
    tail = _tail(data)
    if data.services:
        head.append(kit.header("Services"))
        head.extend(service_blocks(data.services, MAX_BLOCKS - len(head) - len(tail)))
    else:
        head += [kit.header("The service"), kit.section("\n".join(data.service) if data.service else "–")]
    home = {"type": "home", "blocks": kit.blocks((head + tail)[:MAX_BLOCKS], limit=MAX_BLOCKS)}
    View(**home).validate_json()  # Slack's limits, before Slack would refuse the view
    return home


def _tail(data: HomeData) -> list[kit.Block]:
    """What Home shows under the services: the last changes, delivery, schedules, what could not be read."""
    tail: list[kit.Block] = [kit.header("Last changes"),
                             kit.section("\n".join(data.changes) if data.changes else "No changes recorded yet.")]
    if data.delivery:
        tail.append(kit.context(data.delivery))
    if data.schedules:
        tail += [kit.header("Scheduled status posts"), kit.section("\n".join(data.schedules))]
    if data.problems:
        tail.append(kit.context(escape("; ".join(data.problems))))
    return tail


def service_blocks(items: list[ServiceStatus], budget: int) -> list[kit.Block]:
    """At most ``budget`` blocks for the services: a section each when they fit, else one line each."""
    budget = max(budget, 1)
    if len(items) <= budget:
        return [kit.section("\n".join((f"*{escape(item.service)}* · {escape(item.environment)}", *item.lines)))
                for item in items]
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
    return [kit.section(chunk) for chunk in chunks]
