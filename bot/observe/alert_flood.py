"""Alert floods: past ``HELLO_ALERT_CARDS_PER_MINUTE`` new groups in one channel, one card summarises the rest.

A new alert group normally gets a card of its own. When :data:`WINDOW` already saw ``limit`` new groups
arrive for the same channel, the group is *summarised* instead: it joins the channel's open flood card.
Which, is decided by the channel's *gate* (:class:`Gate`, :func:`admit`), a small object of its own that
counts the channel's new groups of the last minute and names its open flood card. The flood card is stored
like a group (``kind == "flood"``), so it is claimed, posted and edited the same way; it keeps one short
entry per group it summarises (:func:`summarise`), so it is edited again as groups arrive, repeat or
resolve without reading them. The flood card closes once none of its groups fires; the next flood opens
a new one, and so does a card that summarises :data:`MEMBERS_LIMIT` groups. Pure, but for the names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.chat.views import kit
from bot.core.text import escape, foreign
from bot.core.times import iso, parse_time
from bot.observe.alert_group import FLOOD, AlertGroup, group_id, highest

WINDOW = timedelta(minutes=1)
SHOWN = 25  # groups listed on a flood card (the rest are counted)
MEMBERS_LIMIT = 2000  # groups one flood card summarises (about 150 bytes each): the next ones open another
ARRIVALS_KEPT = 2000  # new groups a gate remembers (a minute's worth, however many arrive)


@dataclass
class Gate:
    """One channel's new groups of the last :data:`WINDOW` (id -> [when, its flood card or ""]) and its open
    flood card with how many groups it summarises."""

    arrivals: dict[str, list[str]] = field(default_factory=dict)
    card: str = ""
    members: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Gate:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            arrivals = {str(k): [str(v[0]), str(v[1])] for k, v in dict(data.get("arrivals") or {}).items()}
            return cls(arrivals=arrivals, card=str(data.get("card") or ""), members=int(data.get("members") or 0))
        except (ValueError, TypeError, AttributeError, IndexError):
            return cls()


def admit(gate: Gate, gid: str, channel: str, now: datetime, limit: int) -> str:
    """The flood card a new group ``gid`` of ``channel`` is summarised on, "" for a card of its own (the
    same answer for the same group, so two replicas receiving it at once decide alike)."""
    if gid in gate.arrivals:
        return gate.arrivals[gid][1]
    recent = {g: v for g, v in gate.arrivals.items() if (t := parse_time(v[0])) is not None and now - t < WINDOW}
    card = ""
    if len(recent) >= limit:
        if not gate.card or gate.members >= MEMBERS_LIMIT:
            gate.card, gate.members = group_id(f"flood:{channel}:{now.isoformat()}:{gid}"), 0
        card = gate.card
        gate.members += 1
    recent[gid] = [iso(now), card]
    gate.arrivals = dict(list(recent.items())[-ARRIVALS_KEPT:])
    return card


def close(gate: Gate, card: str) -> None:
    """The flood card ``card`` no longer fires: the channel's next flood opens a new one."""
    if gate.card == card:
        gate.card, gate.members = "", 0


def entry(group: AlertGroup) -> dict[str, Any]:
    """What a flood card keeps of one group it summarises."""
    return {"f": group.firing, "s": group.severity, "n": group.alertname[:80], "sv": group.service,
            "e": group.environment, "t": iso(group.starts_at)}


def summarise(card: AlertGroup | None, group: AlertGroup, now: datetime) -> AlertGroup:
    """The flood card (``group.digest``; a new one when None) after a change of ``group``: firing while any
    of its groups fires, a new revision."""
    if card is None:
        card = AlertGroup(id=group.digest, key=f"flood:{group.channel}:{group.digest}", status="firing",
                          alertname="alert flood", severity="", starts_at=now, channel=group.channel,
                          received=now, arrived=now, kind=FLOOD)
    card.members[group.id] = entry(group)
    firing = [m for m in card.members.values() if m.get("f")]
    card.status = "firing" if firing else "resolved"
    card.severity = highest([str(m.get("s") or "") for m in firing])
    card.ends_at = None if card.firing else now
    card.received = now
    card.notifications += 1
    card.revision += 1
    return card


def render_flood(card: AlertGroup) -> tuple[str, list[dict]]:
    """The flood card's fallback text and blocks (pure): how many groups, how many fire, the first few listed."""
    members = sorted(card.members.values(), key=lambda m: (not m.get("f"), str(m.get("t") or "")))
    firing = [m for m in members if m.get("f")]
    icon = ":rotating_light:" if firing else ":large_green_circle:"
    head = (f"{icon} *Alert flood:* {len(members)} more alert group{'s' if len(members) != 1 else ''} "
            f"in a minute, summarised here · {len(firing)} firing")
    lines = []
    for member in members[:SHOWN]:
        mark = ":red_circle:" if member.get("f") else ":white_check_mark:"
        service, environment = str(member.get("sv") or ""), str(member.get("e") or "")
        where = f" · {escape(service)} ({escape(environment)})" if service else ""
        lines.append(f"{mark} *{foreign(str(member.get('n') or '?'), 80)}* "
                     f"`{foreign(str(member.get('s') or 'none'), 20)}`{where}")
    if len(members) > SHOWN:
        lines.append(f"… and {len(members) - SHOWN} more")
    text = f"Alert flood: {len(members)} more alert groups, {len(firing)} firing"
    blocks = kit.blocks(kit.section(head), kit.section("\n".join(lines) or "none"),
                        kit.context("Too many new alert groups for one card each (HELLO_ALERT_CARDS_PER_MINUTE): "
                                    "act on them in Alertmanager."))
    return text, blocks
