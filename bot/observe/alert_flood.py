"""Alert floods: past ``HELLO_ALERT_CARDS_PER_MINUTE`` new groups in one channel, one card summarises the rest.

A new alert group normally gets a card of its own. When :data:`WINDOW` already saw ``limit`` new groups
arrive for the same channel (:func:`flooded`), the group is *summarised* instead: it joins the channel's
open flood card (:func:`flood_card`), stored like a group (``kind == "flood"``) so it is claimed, posted
and edited the same way, and edited again as more groups arrive, repeat or resolve. The flood card
closes once none of its groups fires; the next flood opens a new one. Pure, but for the names.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.chat.views import kit
from bot.core.text import escape, foreign
from bot.observe.alert_group import FLOOD, AlertGroup, group_id, highest

WINDOW = timedelta(minutes=1)
SHOWN = 25  # groups listed on a flood card (the rest are counted)


def flooded(groups: dict[str, AlertGroup], channel: str, now: datetime, limit: int) -> bool:
    """Whether ``limit`` new groups already arrived for ``channel`` in the last :data:`WINDOW`."""
    recent = [g for g in groups.values() if g.kind != FLOOD and g.channel == channel
              and g.arrived is not None and now - g.arrived < WINDOW]
    return len(recent) >= limit


def flood_card(groups: dict[str, AlertGroup], channel: str, now: datetime) -> AlertGroup:
    """The channel's open flood card, or a new one (added to ``groups``)."""
    for group in groups.values():
        if group.kind == FLOOD and group.channel == channel and group.firing:
            return group
    key = f"flood:{channel}:{now.isoformat()}"
    card = AlertGroup(id=group_id(key), key=key, status="firing", alertname="alert flood", severity="",
                      starts_at=now, channel=channel, received=now, arrived=now, kind=FLOOD)
    groups[card.id] = card
    return card


def summarise(groups: dict[str, AlertGroup], card: AlertGroup, now: datetime) -> None:
    """The flood card after a change of one of its groups: firing while any of them fires, a new revision."""
    members = [g for g in groups.values() if g.digest == card.id]
    card.status = "firing" if any(g.firing for g in members) else "resolved"
    card.severity = highest([g.severity for g in members if g.firing])
    card.ends_at = None if card.firing else now
    card.received = now
    card.notifications += 1
    card.revision += 1


def render_flood(card: AlertGroup, members: list[AlertGroup], now: datetime) -> tuple[str, list[dict]]:
    """The flood card's fallback text and blocks (pure): how many groups, how many fire, the first few listed."""
    firing = [g for g in members if g.firing]
    members = sorted(members, key=lambda g: (not g.firing, g.starts_at))
    icon = ":rotating_light:" if firing else ":large_green_circle:"
    head = (f"{icon} *Alert flood:* {len(members)} more alert group{'s' if len(members) != 1 else ''} "
            f"in a minute, summarised here · {len(firing)} firing")
    lines = []
    for group in members[:SHOWN]:
        mark = ":red_circle:" if group.firing else ":white_check_mark:"
        where = f" · {escape(group.service)} ({escape(group.environment)})" if group.service else ""
        lines.append(f"{mark} *{foreign(group.alertname, 80)}* `{foreign(group.severity or 'none', 20)}`{where}")
    if len(members) > SHOWN:
        lines.append(f"… and {len(members) - SHOWN} more")
    text = f"Alert flood: {len(members)} more alert groups, {len(firing)} firing"
    blocks = kit.blocks(kit.section(head), kit.section("\n".join(lines) or "none"),
                        kit.context("Too many new alert groups for one card each (HELLO_ALERT_CARDS_PER_MINUTE): "
                                    "act on them in Alertmanager."))
    return text, blocks
