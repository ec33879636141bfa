"""The webhook's intake: which alerts are the bot's, where their group's card goes, and the store write.

``/alertmanager`` calls :meth:`AlertIntake.accept` (pure: parse and keep the alerts of the service, or of
some pair of the catalogue) and :meth:`AlertIntake.receive` before it answers: a new group first asks its
channel's gate whether it gets a card of its own or joins the flood card
(:func:`~bot.observe.alert_flood.admit`); then one compare-and-swap write of the group's own object merges
the notification into it and, for a group without a card, *claims* the card (a summarised group's flood
card is written after it, the same way). Of
several replicas receiving the same notification exactly one wins the claim and posts the card; the
others find the claim and edit the winner's card (:mod:`bot.observe.alert_lifecycle`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.errors import ClusterError
from bot.core.text import cut
from bot.observe.alert_flood import summarise
from bot.observe.alert_group import AlertGroup, group_id, merge
from bot.observe.alert_payload import Notification, belongs, only, ours, parse
from bot.observe.alert_places import Place, group_place, pairs_of, place_of
from bot.observe.alert_store import AlertStore

if TYPE_CHECKING:
    from bot.core.services import Shared

log = logging.getLogger(__name__)

CLAIM_GRACE = timedelta(seconds=30)  # a claim without a posted card is taken over after this
PRUNE_EVERY = 30.0  # seconds between two prunings of resolved groups by one replica


@dataclass
class Received:
    """What :meth:`AlertIntake.receive` stored: the group and whether this replica posts its card."""

    group: AlertGroup
    post: bool
    token: str
    arrived: float  # time.perf_counter() when the webhook arrived


def _names(alerts: Any) -> str:
    return ", ".join(sorted({cut(a.labels.get("alertname", "?"), 60) for a in alerts}))[:200]


class AlertIntake:
    """Accept and store Alertmanager's notifications for ``services``."""

    def __init__(self, services: Shared, store: AlertStore, clock: Callable[[], datetime]) -> None:
        self.services = services
        self.store = store
        self.clock = clock
        self._last_prune: float | None = None

    def accept(self, payload: Any) -> Notification | None:
        """Parse a webhook body (raises :class:`~bot.observe.alert_payload.AlertPayloadError`); None when no
        alert is the service's."""
        notification = parse(payload)
        if self.services.targets.named:
            return self._accept_several(notification)
        config = self.services.config
        kept = ours(notification, config.namespace, config.stable_deployment)
        if kept is None or len(kept.alerts) < len(notification.alerts):
            log.info("ignoring %d alert(s) not about %s in namespace %s: %s",
                     len(notification.alerts) - (len(kept.alerts) if kept else 0), config.stable_deployment,
                     config.namespace, _names(a for a in notification.alerts
                                              if not belongs(a, config.namespace, config.stable_deployment)))
        return kept

    def _accept_several(self, notification: Notification) -> Notification | None:
        """:meth:`accept` with a catalogue of several services: the alerts of some pair (:func:`place_of`)."""
        catalogue = self.services.catalogue
        assert catalogue is not None
        kept = tuple(a for a in notification.alerts if place_of(a.labels, catalogue) is not None)
        if len(kept) < len(notification.alerts):
            log.info("ignoring %d alert(s) of no service and environment of the catalogue: %s",
                     len(notification.alerts) - len(kept), _names(a for a in notification.alerts if a not in kept))
        return only(notification, kept) if kept else None

    def place(self, notification: Notification) -> Place | None:
        """The pair a notification's group belongs to (several services), else None."""
        if not self.services.targets.named or self.services.catalogue is None:
            return None
        return group_place(notification.alerts, self.services.catalogue)

    def channel_for(self, place: Place | None) -> str:
        """Where a group's card goes: its service's first channel, else ``HELLO_ALERT_CHANNEL`` (or the first
        ops channel); an ambiguous group always goes there."""
        if place is not None and place.service and self.services.catalogue is not None:
            channels = self.services.catalogue.service(place.service).channels
            if channels:
                return channels[0]
        return self.services.config.alert_target

    async def receive(self, notification: Notification, arrived: float | None = None) -> Received | None:
        """Store the notification; returns what to show, or None when no channel is configured."""
        arrived = time.perf_counter() if arrived is None else arrived
        place = self.place(notification)
        channel = self.channel_for(place)
        if not channel:
            log.warning("alert %s not posted: no channel (set HELLO_ALERT_CHANNEL or HELLO_OPS_CHANNELS)",
                        cut(notification.group_labels.get("alertname", "?"), 60))
            return None
        catalogue = self.services.catalogue
        pairs = pairs_of(notification.alerts, catalogue) if place is not None and catalogue is not None else None
        now = self.clock()
        token = uuid.uuid4().hex
        gid = group_id(notification.group_key)
        known = await self.store.get(gid)
        if known is None and notification.status == "resolved":
            return self._unseen(notification)
        digest = known.digest if known is not None else await self.store.admit(
            channel, gid, now, self.services.config.alert_cards_per_minute)

        def decide(found: AlertGroup | None) -> tuple[tuple[AlertGroup, bool] | None, AlertGroup | None]:
            if found is None and notification.status == "resolved":
                return None, None  # nothing was shown of it: nothing to turn green
            group = merge(found, notification, now, channel, place, pairs)
            group.digest = found.digest if found is not None else digest
            return (group, not group.digest and _claim(group, token, now)), group

        stored = await self.store.upsert(gid, decide)
        if stored is None:
            return self._unseen(notification)
        group, post = stored
        if group.digest:  # its flood card shows it
            group, post = await self._summarised(group, token, now)
        if not group.firing:
            await self._pruned(now)
        return Received(group=group, post=post, token=token, arrived=arrived)

    async def _summarised(self, group: AlertGroup, token: str, now: datetime) -> tuple[AlertGroup, bool]:
        """The flood card of ``group`` after its change, and whether this replica posts it."""

        def decide(card: AlertGroup | None) -> tuple[tuple[AlertGroup, bool], AlertGroup]:
            card = summarise(card, group, now)
            return (card, _claim(card, token, now)), card

        card, post = await self.store.upsert(group.digest, decide)
        if not card.firing:
            await self.store.close_flood(card.channel, card.id)
        return card, post

    async def _pruned(self, now: datetime) -> None:
        """Delete the resolved groups past keeping, at most once every :data:`PRUNE_EVERY` on this replica."""
        if self._last_prune is not None and time.monotonic() - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = time.monotonic()
        try:
            pruned = await self.store.prune(now)
        except ClusterError as exc:  # the next resolution tries again
            log.warning("cannot prune the resolved alert groups: %s", exc)
        else:
            if pruned:
                log.info("deleted %d resolved alert groups", pruned)

    @staticmethod
    def _unseen(notification: Notification) -> None:
        log.info("ignoring a resolved notification for an alert group never seen: %s",
                 cut(notification.group_labels.get("alertname", "?"), 60))
        return None


def _claim(shown: AlertGroup, token: str, now: datetime) -> bool:
    """Claim the posting of a card not posted yet (nor claimed, or claimed by a replica gone since)."""
    if not shown.ts and (not shown.claim or (shown.claimed and now - shown.claimed > CLAIM_GRACE)):
        shown.claim, shown.claimed = token, now
        return True
    return False
