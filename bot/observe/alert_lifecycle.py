"""The card's life: posted by the replica that won the claim, edited by every other, its chart in its thread.

All of it runs after Alertmanager has had its answer, under a :class:`~bot.chat.supervise.Supervisor`
(:meth:`CardLifecycle.spawn`). The winner posts the card, stores its ts and uploads a chart of the hour
around the alert's start in its thread; a replica that lost the claim waits for that ts and edits the
card, and posts it itself when the claim is older than
:data:`~bot.observe.alert_intake.CLAIM_GRACE` with no card (the winner is gone). Edits go on until the
card shows the stored group's latest revision.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.chat.messenger import SlackError
from bot.chat.supervise import Supervisor
from bot.core.errors import DependencyUnavailable
from bot.core.retry import Backoff, never, retry
from bot.core.text import cut, foreign
from bot.observe import alert_card
from bot.observe.alert_flood import render_flood
from bot.observe.alert_group import FLOOD, AlertGroup
from bot.observe.alert_intake import CLAIM_GRACE, Received
from bot.observe.alert_store import AlertStore

if TYPE_CHECKING:
    from bot.core.ports import AuditTrail
    from bot.core.services import Shared

log = logging.getLogger(__name__)

WAIT_FOR_CARD = 35.0  # seconds a replica that lost the claim waits for the winner's message
FALLBACK_LIMIT = 3000  # characters of the card's fallback text, as of each of its blocks' texts


class CardLifecycle:
    """Posts and edits the cards of one replica; ``posted_seconds`` measures webhook -> card posted."""

    def __init__(self, services: Shared, audit: AuditTrail, store: AlertStore, clock: Callable[[], datetime], *,
                 wait_for_card: float = WAIT_FOR_CARD) -> None:
        self.services = services
        self.audit = audit
        self.store = store
        self.clock = clock
        self.wait_for_card = wait_for_card
        self.supervisor = Supervisor()
        self._locks: dict[str, asyncio.Lock] = {}
        self._shown: dict[str, int] = {}  # the revision of each card this replica last posted or edited
        self.posted_seconds: list[float] = []  # webhook arrived -> card posted, per card this replica posted

    def spawn(self, received: Received) -> asyncio.Task:
        """Post or edit the card of ``received`` after Alertmanager has had its answer (supervised)."""
        return self.supervisor.spawn(self.show(received), f"alert_card {received.group.id}", kind="alert_card")

    async def show(self, received: Received) -> None:
        """Post the card (the claim's winner) or edit it (everyone else); never raises."""
        try:
            if received.post:
                await self._post(received)
            else:
                await self._edit_when_posted(received)
        except Exception:
            log.exception("cannot show the card of alert group %s", received.group.id)

    def lock(self, gid: str) -> asyncio.Lock:
        """This replica's edits of one card, one at a time."""
        return self._locks.setdefault(gid, asyncio.Lock())

    async def refreshed(self, gid: str) -> None:
        """Edit the card (under its lock) until it shows the stored group's latest revision."""
        async with self.lock(gid):
            await self._refresh(gid)

    async def _post(self, received: Received) -> None:
        gid = received.group.id
        async with self.lock(gid):
            group = await self.store.get(gid)
            if group is None:
                return
            mine = group.claim == received.token and not group.ts
            if mine and not await self._post_card(group, received):
                return
        if not mine:
            await self._edit_when_posted(received)
            return
        if group.kind != FLOOD:
            await self._chart(gid)

    async def _post_card(self, group: AlertGroup, received: Received) -> bool:
        """Post the card of a group this replica claimed; False (claim given back) when Slack refuses."""
        gid = group.id
        text, blocks = await self.card(group)
        try:
            ts = await self.services.messenger.post(group.channel, text, blocks)
        except SlackError as exc:
            log.warning("cannot post the card of alert %s in %s: %s", gid, group.channel, exc.error)

            def release(g: AlertGroup) -> None:
                if g.claim == received.token and not g.ts:
                    g.claim, g.claimed = "", None

            await self.store.change(gid, release)
            return False
        self._shown[gid] = group.revision
        seconds = time.perf_counter() - received.arrived
        self.posted_seconds.append(seconds)
        log.info("alert card %s posted in %s %.3f s after the webhook arrived", gid, group.channel, seconds)
        await self.store.change(gid, lambda g: setattr(g, "ts", g.ts or ts))
        await self._refresh(gid, shown=group.revision)
        return True

    async def _take_over(self, group: AlertGroup, received: Received) -> bool:
        """Claim a card whose claim is older than :data:`CLAIM_GRACE` with no card, and post it here."""
        now = self.clock()
        token = uuid.uuid4().hex

        def take(g: AlertGroup) -> bool:
            if g.ts or (g.claimed is not None and now - g.claimed <= CLAIM_GRACE):
                return False
            g.claim, g.claimed = token, now
            return True

        if not await self.store.change(group.id, take):
            return False
        await self._post(Received(group=group, post=True, token=token, arrived=received.arrived))
        return True

    async def _edit_when_posted(self, received: Received) -> None:
        """Edit the card once the replica that claimed it has posted it; post it here if that replica is gone.

        Looks again after 0.05 s, growing by half up to 0.5 s, for ``wait_for_card`` seconds at most."""
        gid = received.group.id

        async def settled() -> bool:
            group = await self.store.get(gid)
            if group is None:
                return True
            if group.ts:
                await self.refreshed(gid)
                return True
            if group.claimed is None or self.clock() - group.claimed > CLAIM_GRACE:  # the winner is gone
                return await self._take_over(group, received)
            return False

        waiting = Backoff(first=0.05, factor=1.5, most=0.5, attempts=None, patience=self.wait_for_card)
        if not await retry(settled, backoff=waiting, when=never, until=bool):
            log.warning("alert card %s was never posted by the replica that claimed it", gid)

    async def _refresh(self, gid: str, shown: int = -1) -> None:
        """Edit the card until it shows the stored group's latest revision (once for many changes that came
        while an edit was under way: what this replica last showed is remembered)."""
        shown = max(shown, self._shown.get(gid, -1))
        for _ in range(5):
            group = await self.store.get(gid)
            if group is None or not group.ts or group.revision <= shown:
                return
            text, blocks = await self.card(group)
            try:
                await self.services.messenger.update(group.channel, group.ts, text, blocks)
            except SlackError as exc:
                log.warning("cannot edit the card of alert %s: %s", gid, exc.error)
                return
            shown = self._shown[gid] = group.revision

    async def _draw(self, group: AlertGroup) -> tuple[bytes | None, str]:
        """The chart's PNG, or None and what to say instead."""
        now = self.clock()
        if group.starts_at > now:  # a start in the future (a wrong clock, or a made-up time): chart up to now
            group = replace(group, starts_at=now)
        try:
            png = await alert_card.chart(self.services, self.audit, group, now)
        except DependencyUnavailable as exc:
            return None, f"No chart: {foreign(str(exc), 200)}"
        except Exception:
            log.exception("cannot draw the chart of alert %s", group.id)
            return None, "The chart could not be drawn."
        return png, "" if png is not None else "No traffic around the alert's start: no chart."

    async def _chart(self, gid: str) -> None:
        """The chart around the alert's start, in the card's thread; says so when Prometheus cannot draw it."""
        group = await self.store.get(gid)
        if group is None or not group.ts or group.chart:
            return
        png, note = await self._draw(group)
        messenger = self.services.messenger
        try:
            if png is not None:
                await messenger.upload(group.channel, png, f"alert-{gid}.png",
                                       f"{group.alertname} around {alert_card.when(group.starts_at)}",
                                       thread_ts=group.ts)
            else:
                await messenger.post(group.channel, note, thread_ts=group.ts)
        except SlackError as exc:
            log.warning("cannot upload the chart of alert %s: %s", gid, exc.error)
            return
        await self.store.change(gid, lambda g: setattr(g, "chart", True))

    async def card(self, group: AlertGroup) -> tuple[str, list[dict]]:
        """The card's fallback text and blocks, with what it shows besides the alert."""
        if group.kind == FLOOD:
            return render_flood(group)
        context = await alert_card.gather(self.services, self.audit, group)
        text, blocks = alert_card.render_card(group, context, self.clock())
        return cut(text, FALLBACK_LIMIT), blocks
