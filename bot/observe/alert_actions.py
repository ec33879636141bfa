"""The card's buttons and notes: Acknowledge, Silence 1h, and a release's note on the cards it acted on.

A click must come from the card itself (:meth:`CardActions.from_card`) and pass the policy of the card's
service and environment (:meth:`CardActions.checked`). **Silence 1h** creates a silence through
Alertmanager's API v2 (:mod:`bot.observe.alertmanager`); **Acknowledge** records who looks; both are
audited and edit the card. Roll back and Abort canary become commands (``bot.release.buttons``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.core.errors import ClusterError, CommandError, DependencyUnavailable, PermissionDenied
from bot.core.target import Target
from bot.core.text import foreign
from bot.core.times import iso
from bot.observe import alertmanager
from bot.observe.alert_group import AlertGroup
from bot.observe.alert_lifecycle import CardLifecycle

if TYPE_CHECKING:
    from bot.core.policy import Policy
    from bot.core.ports import AuditTrail
    from bot.core.services import Shared

log = logging.getLogger(__name__)

SILENCE_MINUTES = 60


class CardActions:
    """What the card's buttons do, for ``services``; edits go through the replica's ``lifecycle``."""

    def __init__(self, services: Shared, audit: AuditTrail, lifecycle: CardLifecycle) -> None:
        self.services = services
        self.audit = audit
        self.lifecycle = lifecycle
        self.store = lifecycle.store

    def target_of(self, group: AlertGroup) -> Target:
        """The group's service and environment (the bot's own without one), resolved where its card is clicked."""
        return self.services.target(group.service, group.environment)

    async def from_card(self, gid: str, channel: str, ts: str) -> AlertGroup:
        """The group whose card was clicked; refuses a click from any other message (right after posting
        the card's ts may not be stored yet: then the clicked one, in the card's channel, is taken)."""
        group = await self.store.get(gid)
        if group is None:
            raise CommandError("This alert is not known any more: nothing was changed.")
        if channel != group.channel or not ts or (group.ts and ts != group.ts):
            raise PermissionDenied("This click did not come from the alert's card: nothing was changed.")
        return group

    def pairs_of(self, group: AlertGroup) -> list[tuple[str, str]]:
        """Every service and environment the group's alerts belong to: its pair, or, for an ambiguous group,
        every pair its alerts fit (every pair of the catalogue for a group stored before they were kept)."""
        if group.service:
            return [(group.service, group.environment)]
        if group.pairs:
            return [(service, environment) for service, environment in group.pairs]
        catalogue = self.services.catalogue
        return [(s.name, e.name) for s, e in catalogue.pairs()] if catalogue is not None else []

    async def checked(self, gid: str, channel: str, ts: str,
                      check: Callable[[Policy, str], Awaitable[None]]) -> AlertGroup:
        """The clicked group (:meth:`from_card`) after ``check(policy, channel)`` for every service and environment
        its alerts belong to (one service: the bot's policy, checked before the card is looked at, as ever).

        An ambiguous card lives in the alert channel: there the bot's policy judges the channel, and each
        pair's policy the person, as if asked in that pair's own channel."""
        if not self.services.targets.named:
            await check(self.services.policy, channel)
            return await self.from_card(gid, channel, ts)
        group = await self.from_card(gid, channel, ts)
        if group.service:
            await check(self.target_of(group).policy, channel)
            return group
        self.services.policy.check_channel(channel)
        for service, environment in self.pairs_of(group):
            target = self.services.target(service, environment)
            await check(target.policy, (target.config.ops_channels or (channel,))[0])
        return group

    async def acknowledge(self, gid: str, user: str, channel: str, ts: str) -> None:
        """Record that ``user`` looks at the alert; the card shows it."""
        group = await self.checked(gid, channel, ts, lambda policy, _: policy.check_read(user))
        now = self.lifecycle.clock()

        def ack(g: AlertGroup) -> None:
            if all(a.get("user") != user for a in g.acknowledged):
                g.acknowledged = [*g.acknowledged, {"user": user, "at": iso(now)}][-5:]
                g.revision += 1

        await self.store.change(gid, ack)
        await self._audit("Acknowledged", group, user, "looking at it")
        await self.lifecycle.refreshed(gid)

    async def note_release(self, alertname: str, note: str, service: str = "", environment: str = "") -> int:
        """A release acted on an alert (the bake window rolled back): the cards of its firing groups say so.

        ``service`` / ``environment`` (several services): only the groups of that pair. Returns how many
        cards were given the note; ``note`` is bot-written mrkdwn.
        """
        groups = [g for g in await self.store.firing() if g.alertname == alertname
                  and (not service or (g.service, g.environment) == (service, environment))]
        for group in groups:

            def mark(g: AlertGroup) -> None:
                if g.release_note != note:
                    g.release_note, g.revision = note, g.revision + 1

            await self.store.change(group.id, mark)
            await self.lifecycle.refreshed(group.id)
        return len(groups)

    async def silence(self, gid: str, user: str, channel: str, ts: str, minutes: int = SILENCE_MINUTES) -> str:
        """Silence the group's alerts for ``minutes`` through Alertmanager's API v2; returns the silence id."""
        group = await self.checked(gid, channel, ts,
                                   lambda policy, where: policy.check_change(user, where, "silence alerts"))
        url = self.services.config.alertmanager_url
        if not url:
            raise CommandError("Silencing needs the Alertmanager's address: set HELLO_ALERTMANAGER_URL.")
        matchers = group.silence_matchers()
        if not matchers:
            raise CommandError("This alert group's labels are too long to silence from Slack: silence it in "
                               "Alertmanager. Nothing was changed.")
        now = self.lifecycle.clock()
        until = now + timedelta(minutes=minutes)
        try:
            silence_id = await alertmanager.create_silence(
                url, matchers, now, until, created_by=f"{user} (hello-chatops)",
                comment=f"silenced from Slack by {user} for {minutes} min (alert group {gid})")
        except DependencyUnavailable as exc:
            raise CommandError(f"Alertmanager did not create the silence: {foreign(str(exc), 200)}. "
                               "Nothing was changed.") from None

        def note(g: AlertGroup) -> None:
            g.silence = {"id": silence_id, "user": user, "until": iso(until)}
            g.revision += 1

        await self.store.change(gid, note)
        await self._audit("Silenced", group, user, f"for {minutes} min until {until:%H:%M} UTC",
                          {"silence": silence_id, "minutes": minutes})
        await self.lifecycle.refreshed(gid)
        return silence_id

    async def _audit(self, phase: str, group: AlertGroup, user: str, note: str,
                     facts: dict[str, Any] | None = None) -> None:
        audit = self.audit
        try:
            summary = f"alert {foreign(group.alertname, 80)} ({foreign(group.severity or 'no severity', 20)})"
            await audit.record_alert(phase, user=user, summary=summary,
                                     group=group.id, channel=group.channel, note=note, facts=facts or {})
        except (ClusterError, DependencyUnavailable):
            log.exception("cannot audit %s of alert %s", phase, group.id)
