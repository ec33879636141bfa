"""The alert card: what fires and since when, what runs, what changed before it, and what to do.

The texts are made where the alert is read (``bot.observe.alert_card``: everything from Alertmanager cut
and escaped there); this is how the card is laid out and which buttons it offers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.views import kit

# action ids of the card's buttons (each has its own listener; bot.release.buttons handles them)
ROLLBACK, ABORT, SILENCE, ACK = "alert_rollback", "alert_abort", "alert_silence", "alert_ack"
SOURCE = "link_alert_source"  # the "Open in Prometheus" link


@dataclass(frozen=True)
class AlertCard:
    """One alert group's card (all mrkdwn written by the bot, foreign text escaped already)."""

    id: str  # the group's: every button's value
    head: str  # icon, firing or resolved, name, severity, service and environment
    facts: str  # since when, how many alerts, the group's labels
    live: str  # what runs now
    about: tuple[str, ...] = ()  # summary, description
    changes: tuple[str, ...] = ()  # the last changes before the alert
    changes_error: str = ""  # why they could not be read
    notes: tuple[str, ...] = ()  # rolled back by the bake window, silenced, acknowledged
    firing: bool = True  # a resolved card has no buttons but its link
    roll_back: bool = False  # the card is about one service and environment
    abort: bool = False  # a canary takes traffic
    silenced: bool = False
    source: str = ""  # "Open in Prometheus": the alert's expression on a configured server


def _buttons(card: AlertCard) -> list[kit.InteractiveElement]:
    buttons = []
    if card.firing:
        if card.roll_back:
            buttons.append(kit.button("Roll back", ROLLBACK, value=card.id, style="danger"))
        if card.abort:
            buttons.append(kit.button("Abort canary", ABORT, value=card.id, style="danger"))
        if not card.silenced:
            buttons.append(kit.button("Silence 1h", SILENCE, value=card.id))
        buttons.append(kit.button("Acknowledge", ACK, value=card.id))
    if card.source:
        buttons.append(kit.button("Open in Prometheus", SOURCE, url=card.source))
    return buttons


def _changes(card: AlertCard) -> kit.Block:
    if card.changes:
        return kit.section("*Last changes:*\n" + "\n".join(f"• {line}" for line in card.changes))
    if card.changes_error:
        return kit.context(f"The audit trail cannot be read: {card.changes_error}")
    return kit.context("No change by this bot is on record before the alert.")


def blocks(card: AlertCard) -> list[dict]:
    buttons = _buttons(card)
    return kit.blocks(
        kit.section(card.head),
        kit.section("\n".join(card.about)) if card.about else None,
        kit.context(card.facts),
        kit.section(card.live),
        _changes(card),
        kit.context(" · ".join(card.notes)) if card.notes else None,
        kit.actions(buttons, block_id=f"alert_{card.id}") if buttons else None,
    )
