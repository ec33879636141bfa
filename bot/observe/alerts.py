"""Alerts from Alertmanager: the webhook's notifications stored by alert group, one card per group.

:class:`AlertCards` (``Services.alerts``) puts the parts together:

* :mod:`bot.observe.alert_payload` parses the webhook body (version "4") into a ``Notification``;
* :mod:`bot.observe.alert_places` says which service and environment of a catalogue an alert belongs to;
* :mod:`bot.observe.alert_group` is a stored group and how a notification changes it;
* :mod:`bot.observe.alert_store` keeps the groups, one ConfigMap each, by compare-and-swap;
* :mod:`bot.observe.alert_intake` accepts a notification and stores it before the webhook is answered;
* :mod:`bot.observe.alert_lifecycle` posts and edits the card after the answer, its chart in its thread;
* :mod:`bot.observe.alert_actions` carries out the card's buttons (Acknowledge, Silence 1h) and notes;
* :mod:`bot.observe.alert_card` renders the card (pure).

``/alertmanager`` calls :meth:`AlertCards.accept` and :meth:`AlertCards.receive` before answering, then
:meth:`AlertCards.spawn`; the bake window reads the engine's ``alerts.store.firing()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.core import times
from bot.observe.alert_actions import SILENCE_MINUTES, CardActions
from bot.observe.alert_group import AlertGroup
from bot.observe.alert_intake import AlertIntake, Received
from bot.observe.alert_lifecycle import WAIT_FOR_CARD, CardLifecycle
from bot.observe.alert_payload import Notification
from bot.observe.alert_store import AlertStore

if TYPE_CHECKING:
    from bot.core.ports import AuditTrail
    from bot.core.services import Shared

__all__ = ["AlertCards", "AlertGroup", "AlertStore", "Received"]


class AlertCards:
    """The bot's side of Alertmanager: store notifications, post and edit the cards, the card's buttons.

    It keeps the :class:`Shared` bundle because its intake, cards and buttons use most of it: the configuration,
    the catalogue and targets (which service and environment an alert is about), the policy (who may press a
    card's buttons), the messenger and the bot's own cluster (the stored groups).
    """

    def __init__(self, services: Shared, audit: AuditTrail, *, clock: Callable[[], datetime] | None = None,
                 wait_for_card: float = WAIT_FOR_CARD) -> None:
        self.services = services
        self.clock = clock or times.now
        self.store = AlertStore(services.cluster)
        self.intake = AlertIntake(services, self.store, self.clock)
        self.lifecycle = CardLifecycle(services, audit, self.store, self.clock, wait_for_card=wait_for_card)
        self.actions = CardActions(services, audit, self.lifecycle)

    # -- the webhook
    def accept(self, payload: Any) -> Notification | None:
        """Parse a webhook body (raises ``AlertPayloadError``); None when no alert is the bot's."""
        return self.intake.accept(payload)

    async def receive(self, notification: Notification, arrived: float | None = None) -> Received | None:
        """Store the notification; returns what to show, or None when no channel is configured."""
        return await self.intake.receive(notification, arrived)

    def spawn(self, received: Received) -> asyncio.Task:
        """Post or edit the card of ``received`` after Alertmanager has had its answer (supervised)."""
        return self.lifecycle.spawn(received)

    @property
    def tasks(self) -> set[asyncio.Task]:
        """The cards being posted or edited."""
        return self.lifecycle.supervisor.tasks

    @property
    def posted_seconds(self) -> list[float]:
        """Webhook arrived -> card posted, per card this replica posted."""
        return self.lifecycle.posted_seconds

    async def drain(self, timeout: float = 30.0) -> None:
        await self.lifecycle.supervisor.drain(timeout)

    # -- buttons and notes
    async def from_card(self, gid: str, channel: str, ts: str) -> AlertGroup:
        return await self.actions.from_card(gid, channel, ts)

    async def acknowledge(self, gid: str, user: str, channel: str, ts: str) -> None:
        await self.actions.acknowledge(gid, user, channel, ts)

    async def silence(self, gid: str, user: str, channel: str, ts: str, minutes: int = SILENCE_MINUTES) -> str:
        return await self.actions.silence(gid, user, channel, ts, minutes)

    async def note_release(self, alertname: str, note: str, service: str = "", environment: str = "") -> int:
        return await self.actions.note_release(alertname, note, service, environment)
