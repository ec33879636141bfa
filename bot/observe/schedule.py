"""Scheduled status posts: cron schedules, their state in the cluster, and the replica that posts them.

Schedules come from configuration (``HELLO_SCHEDULES``; ids ``c…`` derived from their content) and
from chat (``/hello schedule add``; ids ``s…``). Chat-made schedules and every schedule's posting state
live in one ConfigMap (``hello-chatops-schedules``), written with the resourceVersion that was read,
so every replica sees the same schedules and a restart loses nothing.

Exactly one replica posts: the holder of the Lease (:mod:`bot.leader`). Even so, a slot is posted
only by the replica whose compare-and-swap write recording it as the schedule's last slot succeeds,
so a change of leader can neither double a slot nor skip one that is recorded. A slot that came due
while no replica led is posted by the next leader — only the most recent one per schedule, and the
post says how many earlier ones were skipped. A slot is claimed before it is posted: a replica that
dies between the two loses that one post rather than risking two.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.chat.supervise import guard
from bot.cluster.leader import LeaderElector, default_identity
from bot.core import times
from bot.core.cron import latest_slot, next_slot, slots_between, validate_cron
from bot.core.errors import ClusterError, CommandError, DependencyUnavailable, SlackError
from bot.core.retry import Backoff, retry
from bot.core.times import iso, parse_time
from bot.observe import digest
from bot.observe.schedule_store import CONFIGMAP, Entry, SlotState, Store, config_entries, config_id

if TYPE_CHECKING:
    from bot.core.ports import AlertDesk, AuditTrail
    from bot.core.services import Shared

log = logging.getLogger(__name__)

MAX_SCHEDULES = 50


@dataclass(frozen=True)
class Listed:
    """A schedule as ``/hello schedule list`` shows it."""

    entry: Entry
    state: SlotState
    next: datetime | None


@dataclass(frozen=True)
class Claim:
    """A slot this replica won the right to post."""

    entry: Entry
    slot: datetime
    previous: datetime | None  # the slot posted before (None: first post)
    skipped: int  # slots that came due unposted between ``previous`` and ``slot``
    catch_up: bool  # the slot came due while this replica was not leading


# -------------------------------------------------------------------------------------- scheduler

UNREACHABLE_CHANNEL = {"not_in_channel", "channel_not_found", "is_archived"}


@dataclass
class Posted:
    """What one tick posted (or tried to)."""

    schedule: str
    slot: datetime
    ts: str = ""
    error: str = ""
    skipped: int = 0
    catch_up: bool = False


@dataclass
class _Options:
    chart: bool = True
    post_attempts: int = 3
    retry_delay: float = 2.0


class Scheduler:
    """Evaluates the schedules and posts digests, on the replica that holds the Lease.

    ``clock`` returns the current aware datetime and ``sleep`` waits (both injectable, so tests drive
    time). ``chart=False`` leaves the chart out of digests. ``tick(now)`` is one evaluation step.

    It keeps the :class:`Shared` bundle to hand it on to the digest (:mod:`bot.observe.digest`), which gathers
    a status through the functions ``/hello status`` uses (:func:`bot.observe.status.gather`,
    :func:`~bot.observe.status.chart_uploads`, which take the assembled bot); with its own store and posts it
    uses the configuration, the targets, the messenger and the bot's own cluster.
    """

    def __init__(self, services: Shared, audit: AuditTrail, alerts: AlertDesk, leader: LeaderElector, *,
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None, chart: bool = True,
                 configmap: str = CONFIGMAP, post_attempts: int = 3, retry_delay: float = 2.0) -> None:
        self.services = services
        self.audit, self.alerts = audit, alerts  # the digests' changes and firing alerts
        config = services.config
        self.identity = config.identity or default_identity()
        self.tz = ZoneInfo(config.timezone)
        self.store = Store(config, services.cluster, configmap)
        self.elector = leader
        self.options = _Options(chart=chart, post_attempts=max(1, post_attempts), retry_delay=retry_delay)
        self._clock = clock or times.now
        self._sleep = sleep or asyncio.sleep
        self._task: asyncio.Task | None = None
        self._next_due: datetime | None = None
        self.history: list[Posted] = []

    # ------------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Run the leader and tick loop in the background until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(guard(self._run(), "schedules"), name="schedules")

    async def stop(self) -> None:
        """Stop the loop and release the Lease if held, so another replica takes over at once."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.elector.release(self._clock())

    async def _run(self) -> None:
        failing = 0  # ticks failed in a row: the first says so (WARNING), the one that works again too (INFO)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("scheduled status ticks are failing: %s: %s", type(exc).__name__, str(exc)[:300],
                                exc_info=not isinstance(exc, ClusterError | DependencyUnavailable | SlackError))
                failing += 1
            else:
                if failing:
                    log.info("scheduled status ticks work again after %d failed", failing)
                failing = 0
            now = self._clock()
            delay = self.elector.renew_interval
            if self._next_due is not None:
                delay = min(delay, (self._next_due - now).total_seconds() + 0.05)
            await self._sleep(max(0.05, delay))

    # ------------------------------------------------------------------------ evaluation
    def is_leader(self, now: datetime | None = None) -> bool:
        return self.elector.is_leader(now or self._clock())

    async def tick(self, now: datetime | None = None) -> list[Posted]:
        """Renew or acquire the Lease; if leading, post every slot that is due and not yet recorded."""
        now = now or self._clock()
        if not await self.elector.step(now) or self.services.messenger.stopped:
            self._next_due = None  # not leading, or the workspace removed the app (app_uninstalled, tokens_revoked)
            return []
        entries, states = await self.store.read()
        out: list[Posted] = []
        nexts = []
        for entry in entries:
            try:
                nexts.append(next_slot(entry.cron, now, self.tz))
                slot = latest_slot(entry.cron, now, self.tz)
            except (ValueError, KeyError):
                log.error("schedule %s has an unusable cron expression %r", entry.id, entry.cron)
                continue
            state = states.get(entry.id)
            if state is not None and state.last is not None and state.last >= slot:
                continue
            if state is not None and state.since is not None and slot < state.since:
                continue
            claim = await self._claim(entry, slot, now)
            if claim is not None:
                out.append(await self._post(claim, now))
        self._next_due = min(nexts) if nexts else None
        self.history.extend(out)
        return out

    async def _claim(self, entry: Entry, slot: datetime, now: datetime) -> Claim | None:
        """Record ``slot`` as the schedule's last one; ``None`` if it is not due or another replica has it."""
        leading_since = self.elector.leading_since

        def mutate(schedules: dict[str, Any], state: dict[str, Any]) -> Claim | None:
            if entry.source == "chat" and entry.id not in schedules:
                return None  # removed meanwhile
            record = state.setdefault(entry.id, {"since": iso(entry.created or now)})
            since = parse_time(record.get("since")) or now
            last = parse_time(record.get("last"))
            if slot < since or (last is not None and last >= slot):
                return None
            start = last if last is not None else since - timedelta(microseconds=1)
            skipped = slots_between(entry.cron, start, slot, self.tz)
            record.update(last=iso(slot), by=self.identity, claimed=iso(now))
            catch_up = skipped > 0 or (leading_since is not None and slot < leading_since and last is not None)
            return Claim(entry=entry, slot=slot, previous=last, skipped=skipped, catch_up=catch_up)

        return await self.store.update(mutate)

    async def _post(self, claim: Claim, now: datetime) -> Posted:
        entry = claim.entry
        result = Posted(schedule=entry.id, slot=claim.slot, skipped=claim.skipped, catch_up=claim.catch_up)
        built = None
        try:
            built = await digest.build(self.services, self.audit, self.alerts, claim, now=now, chart=self.options.chart)
            result.ts = await self._post_with_retry(entry.channel, built.text, built.blocks)
        except SlackError as exc:
            result.error = exc.error
            level = logging.WARNING if exc.error in UNREACHABLE_CHANNEL else logging.ERROR
            log.log(level, "scheduled status %s in %s failed: %s", entry.id, entry.channel, exc.error)
        except Exception as exc:
            result.error = type(exc).__name__
            log.exception("scheduled status %s could not be built", entry.id)
        if built is not None and result.ts:
            await digest.upload_followups(self.services, self.audit, entry.channel, result.ts, built)
        await self._record(entry.id, result, now)
        return result

    async def _post_with_retry(self, channel: str, text: str, blocks: list[dict]) -> str:
        """Post, trying again after Slack's own trouble (the client's retries spent): ``retry_delay`` seconds,
        doubling, ``post_attempts`` tries in all."""

        async def retrying(exc: BaseException | None) -> None:
            log.warning("posting scheduled status to %s failed (%s); retrying", channel, exc)

        backoff = Backoff(first=self.options.retry_delay, most=math.inf, attempts=self.options.post_attempts)
        return await retry(self.services.messenger.post, channel, text, blocks, backoff=backoff,
                           on_retry=retrying, sleep=self._sleep)

    async def _record(self, sid: str, result: Posted, now: datetime) -> None:
        def mutate(schedules: dict[str, Any], state: dict[str, Any]) -> None:
            record = state.setdefault(sid, {})
            if result.ts:
                record.update(posted=iso(now), ts=result.ts, error="", error_at="")
            else:
                record.update(error=result.error, error_at=iso(now))

        try:
            await self.store.update(mutate)
        except Exception:
            log.exception("cannot record the outcome of scheduled status %s", sid)

    # ------------------------------------------------------------------------ chat
    async def list(self, *, shown: bool = False) -> list[Listed]:
        """Every schedule, its state and next slot; ``shown``: for display only (Home), from the watch cache of the
        schedules once :meth:`follow` has started it and it has listed (it may lag a write)."""
        entries, states = await (self.store.shown() if shown else self.store.read())
        now = self._clock()
        return [Listed(entry=e, state=states.get(e.id, SlotState()), next=next_slot(e.cron, now, self.tz))
                for e in entries]

    async def follow(self) -> None:
        """Keep a watch cache of the schedules for :meth:`list` ``(shown=True)`` (serving's warm-up starts it)."""
        await self.store.follow()

    async def add(self, cron: str, channel: str, rng: str, *, user: str = "") -> Entry:
        """Store a chat-made schedule; returns it with its new id."""
        cron = validate_cron(cron)
        now = self._clock()
        configured = {e.id for e in config_entries(self.services.config)}

        def mutate(schedules: dict[str, Any], state: dict[str, Any]) -> Entry:
            for sid, raw in schedules.items():
                if (raw["cron"], raw["channel"], raw.get("range")) == (cron, channel, rng):
                    raise CommandError(f"That schedule already exists as `{sid}`.")
            if config_id(cron, channel, rng) in configured:
                raise CommandError("That schedule is already configured (HELLO_SCHEDULES).")
            if len(schedules) >= MAX_SCHEDULES:
                raise CommandError(f"There are already {MAX_SCHEDULES} schedules; remove one first.")
            sid = new_id(set(schedules) | configured)
            entry = Entry(id=sid, cron=cron, channel=channel, range=rng, source="chat", created_by=user,
                          created=now)
            schedules[sid] = entry.to_json()
            state[sid] = {"since": iso(now)}
            return entry

        return await self.store.update(mutate)

    async def remove(self, sid: str) -> Entry:
        """Delete a chat-made schedule (and its state); configured ones can only be removed in config."""
        configured = {e.id: e for e in config_entries(self.services.config)}
        if sid in configured:
            raise CommandError(f"`{sid}` comes from the configuration (HELLO_SCHEDULES): remove it there.")

        def mutate(schedules: dict[str, Any], state: dict[str, Any]) -> Entry:
            raw = schedules.pop(sid, None)
            if raw is None:
                raise CommandError(f"There is no schedule `{sid}`. See `/hello schedule list`.")
            state.pop(sid, None)
            return Entry(id=sid, cron=raw["cron"], channel=raw["channel"], range=raw.get("range", "1h"),
                         source="chat", created_by=raw.get("by", ""), created=parse_time(raw.get("created")))

        return await self.store.update(mutate)


def new_id(taken: set[str]) -> str:
    """``s`` + five hex digits, not in ``taken``."""
    while True:
        sid = "s" + secrets.token_hex(3)[:5]
        if sid not in taken:
            return sid

