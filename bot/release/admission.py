"""Admission: the one-change-at-a-time lock of each service and environment, its queue, and holds.

A request is admitted when it takes the lock of its service and environment (it becomes pending) or a
place in the lock's queue (queued, with the catalogue's ``lock: queue``), or it is refused naming the
holder (``lock: refuse``, and always without a catalogue). A rollback supersedes the holder; a holder
nobody advances any more is superseded by the next request. The lock moves away from a request only
after that request's record has left pending and running (see :mod:`bot.release.record`), and when it
frees, the first in the queue gets it (:meth:`Admission.advance`). A manual lock on the service refuses a
change and a freeze makes it break-glass (:meth:`Admission.holds`). Expiry and the sweeper live here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.chat import views
from bot.core.errors import ClusterError, CommandError, DependencyUnavailable
from bot.core.target import Target
from bot.core.text import foreign
from bot.core.times import iso
from bot.release import messages
from bot.release.lifecycle import FINISHED, PENDING, QUEUED, RUNNING, Event, allowed
from bot.release.record import Lock, Record, at, leave

if TYPE_CHECKING:
    from bot.release.approvals import Approvals

log = logging.getLogger(__name__)

UNPOSTED_GRACE = 30.0  # seconds a request may hold the lock before its message ts is stored
LOCK_ROUNDS = 20  # looks at a lock whose holder changed while admission decided
NEVER_ADMITTED = "it was never admitted"  # why the sweeper cancels a request its replica stored and left
FULL, TOO_MANY, UNKNOWN = -1, -2, -3  # what the lock's compare-and-swap answers instead of a place


class Admission:
    """The lock, the queue and the holds of every service and environment, for the requests of ``requests``."""

    def __init__(self, requests: Approvals) -> None:
        self.requests = requests

    async def admit(self, record: Record, user: str, *, queue: bool) -> tuple[int, Record | None]:
        """Take the lock of ``record``'s service and environment (place 0) or a place in its queue (1, 2, ...),
        and the holder it waits behind; or refuse, naming the holder. A rollback supersedes the holder, and so
        does any request a holder that nobody advanced any more."""
        change, key = record.change, record.key
        jumps = not (queue and change.needs_approval) or change.action in ("abort", "rollback")
        limit, most = self.requests.config.queue_limit, self.requests.config.queue_per_person
        known: dict[str, Record | None] = {}  # queued requests of a lock stored by an earlier version, read
        waiting = [0]  # the person's requests the compare-and-swap found in the queue
        for _ in range(LOCK_ROUNDS):
            now = self.requests.clock()
            seen = await self.requests.store.lock(key)
            for rid in [] if jumps else [q for q in seen.queue if q not in seen.who and q not in known]:
                known[rid] = await self.requests.store.get(rid)  # whose each is: only where the lock does not say
            holder = await self._holding(seen.holder, now)
            if holder is not None and holder.id == record.id:
                return 0, None
            if holder is not None:
                stale = holder.state == RUNNING and await self._stale(holder, now)
                if change.action == "rollback" or stale:
                    why = (f"superseded by a rollback requested by <@{user}>" if change.action == "rollback"
                           else "nobody advanced it any more; superseded by a new request")
                    await self.supersede(holder, why)
                    continue
                if change.action == "abort" or not (queue and change.needs_approval):
                    # never wait behind the canary an abort is meant to stop: refused, naming what holds the lock
                    raise CommandError(messages.busy_text(holder))

            def take(lock: Lock, seen: Lock = seen, free: bool = holder is None) -> int | None:
                if lock.holder != seen.holder:
                    return None  # the lock moved meanwhile: look again
                if free and (jumps or not lock.queue):
                    lock.holder = record.id
                    lock.queue = [q for q in lock.queue if q != record.id]
                    return 0
                if record.id not in lock.queue:
                    if len(lock.queue) >= limit:
                        return FULL
                    if not jumps:  # HELLO_QUEUE_PER_PERSON, on the queue as this write finds it
                        if any(q not in lock.who and q not in known for q in lock.queue):
                            return UNKNOWN  # the lock does not say whose: read those requests, then look again
                        waiting[0] = _waiting(lock, known, user)
                        if waiting[0] >= most:
                            return TOO_MANY
                    lock.queue.append(record.id)
                    lock.who[record.id] = user
                return lock.place(record.id)

            place = await self.requests.store.update_lock(key, take)
            if place == FULL:
                raise CommandError(messages.full_text(holder, limit))
            if place == TOO_MANY:
                raise CommandError(messages.too_many_text(user, waiting[0], most))
            if place is not None and place != UNKNOWN:
                return place, holder
        raise ClusterError("the lock of this service kept changing: try again", 409)

    async def _holding(self, request_id: str, now: datetime) -> Record | None:
        """The request ``request_id`` if it still holds the lock that names it, else ``None``.

        A pending request past its expiry is expired here; one that never got its message stored
        (its replica died) is cancelled after ``UNPOSTED_GRACE`` seconds: the lock moves only away from
        requests that can no longer be approved.
        """
        record = await self.requests.store.get(request_id) if request_id else None
        if record is None or record.state in FINISHED:
            return None
        if record.expired(now):
            if await self.expire(record.id, now):
                await self.show_expired(record)
            return None
        if record.state != RUNNING and not record.ts and now - at(record.created) >= timedelta(
                seconds=UNPOSTED_GRACE):
            why = "its message was never recorded"
            ended = await self.requests.store.update(record.id, lambda r: end(r, Event.CANCEL, why, now))
            if ended:
                await self.requests.audit("Cancelled", record, record.requester, note=why)
            return None
        return record

    async def _stale(self, record: Record, now: datetime) -> bool:
        engine = self.requests.releases()
        return engine is not None and record.id in await engine.stale([record], now)

    async def holds(self, target: Target, now: datetime) -> str:
        """Refuse a change to a locked service; for a frozen one, the break-glass sentence ("" when free)."""
        holds = self.requests.holds
        if holds is None:
            return ""
        state = await holds.check(target.service.name, target.environment.name, now)
        where = target.title
        if state.lock is not None:
            lock = state.lock
            since = views.when(lock.since, "%Y-%m-%d %H:%M UTC")
            raise CommandError(f"{where} is locked by <@{lock.user}> since {since}: “{foreign(lock.reason, 300)}”. "
                               "Nothing was changed; `/hello unlock` ends the lock.")
        if state.freeze is not None:
            freeze = state.freeze
            return (f"{where} is frozen until {views.when(freeze.until, '%Y-%m-%d %H:%M UTC')} "
                    f"({freeze.source}: “{foreign(freeze.reason, 200)}”)")
        return ""

    async def expire(self, request_id: str, now: datetime) -> bool:
        def expire(r: Record) -> bool:
            return r.expired(now) and end(r, Event.EXPIRE, "", now)

        return bool(await self.requests.store.update(request_id, expire))

    async def supersede(self, record: Record, why: str) -> None:
        """End ``record`` as superseded (its record first: then the lock may move; its driver, if it runs, stops at
        its next write), say so."""
        now = self.requests.clock()
        ended = await self.requests.store.update(record.id, lambda r: end(r, Event.SUPERSEDE, why, now))
        if not ended:
            return
        record.move(Event.SUPERSEDE, now, why)
        await self.requests.audit("Superseded", record, record.requester, note=why)
        await self.requests.edit(record, *messages.superseded_view(record))

    async def show_expired(self, record: Record) -> None:
        if record.state != "expired":
            record.move(Event.EXPIRE, self.requests.clock())
        await self.requests.audit("Expired", record, record.requester)
        await self.requests.edit(record, *messages.approval_view(record))

    async def cancel(self, request_id: str, headline: str) -> None:
        """A request that could not be wholly made ends cancelled, which frees its lock or place."""
        now = self.requests.clock()

        def cancel(r: Record) -> Record:
            end(r, Event.CANCEL, headline, now)
            return r

        record = await self.requests.store.update(request_id, cancel)
        if record is not None:
            await self.leave(record.key, request_id)
            await self.ended(record.key)

    async def ended(self, key: tuple[str, str]) -> None:
        """A record of ``key`` left pending or running (its release ended), which frees the one-change-at-a-time
        lock: the next in the queue gets it. The oldest finished records go."""
        self.requests.home_changed()
        await self.advance(key)
        with contextlib.suppress(DependencyUnavailable):
            await self._prune(await self.requests.store.load())

    async def leave(self, key: tuple[str, str], request_id: str) -> None:
        """A queued request that ended leaves its place, so the places behind it move up, and their messages say
        so (best effort: the next advance drops it anyway)."""
        def go(lock: Lock) -> int:
            place = lock.place(request_id)
            leave(lock, request_id)
            return place

        with contextlib.suppress(DependencyUnavailable):
            if place := await self.requests.store.update_lock(key, go):
                await self.show_places(key, after=place - 1)

    async def show_places(self, key: tuple[str, str], *, after: int = 0) -> None:
        """Edit the messages of the requests queued for ``key`` (behind place ``after``) to show their places as
        the lock has them now. Read after the lock moved: a request whose message ts is not stored yet is left to
        its poster, which looks at the lock once it has stored the ts (:meth:`posted`)."""
        lock = await self.requests.store.lock(key)
        behind = lock.queue[after:]
        holder, *records = await asyncio.gather(self._shown_holder(lock),
                                                *(self.requests.store.get(rid) for rid in behind))
        for place, record in enumerate(records, after + 1):
            if record is not None and record.state == QUEUED and record.ts:
                await self.requests.edit(record, *messages.approval_view(
                    record, place=messages.place_text(place, holder)))

    async def posted(self, record: Record, place: int, holder: Record | None) -> None:
        """``record``'s message, just posted with ``place`` behind ``holder``, is edited when the queue moved while
        it was being posted (the movers edit only the messages whose ts is stored). Never raises."""
        try:
            lock = await self.requests.store.lock(record.key)
            now = lock.place(record.id)
            if now and (now != place or lock.holder != (holder.id if holder is not None else "")):
                text, blocks = messages.approval_view(record, place=messages.place_text(
                    now, await self._shown_holder(lock)))
                await self.requests.edit(record, text, blocks)
        except DependencyUnavailable as exc:
            log.warning("cannot show the place of request %s now: %s", record.id, exc)

    async def _shown_holder(self, lock: Lock) -> Record | None:
        holder = await self.requests.store.get(lock.holder) if lock.holder else None
        return holder if holder is not None and holder.state not in FINISHED else None

    async def advance(self, key: tuple[str, str]) -> None:
        """When nothing holds ``key``'s lock, the first queued request there gets it: its approval opens (its
        message gets the buttons, its expiry starts now); the others' messages show their place.

        Never raises: the cluster away, the queue waits for the next change or the sweeper (every 30 s).
        """
        try:
            await self._advance(key)
        except DependencyUnavailable as exc:
            log.warning("cannot advance the queue of %s: %s", "/".join(k for k in key if k) or "the service", exc)

    async def _advance(self, key: tuple[str, str]) -> None:
        now = self.requests.clock()
        seen = await self.requests.store.lock(key)
        holder = await self._holding(seen.holder, now)
        if holder is not None:
            if holder.state == QUEUED:  # the lock names it, its approval not open yet (a replica died between)
                await self._open(holder)
            return
        if not seen.queue:
            return
        records = await self.requests.store.load()
        waiting = [q for q in seen.queue if q in records and records[q].state == QUEUED]
        head = waiting[0] if waiting else ""

        def seat(lock: Lock) -> Lock | None:
            if lock.holder != seen.holder:
                return None  # someone else moved the lock: they advance the queue
            lock.queue = [q for q in lock.queue if q != head and (q in waiting or q not in seen.queue)]
            lock.holder = head or lock.holder
            return Lock(lock.holder, list(lock.queue), dict(lock.who))

        seated = await self.requests.store.update_lock(key, seat)
        if seated is None or not head:
            return
        await self._open(records[head])
        await self.show_places(key)  # read again: the ts stored since the records were read
        self.requests.home_changed()

    async def _open(self, record: Record) -> Record:
        """A queued request that holds the lock now: pending, its expiry from now, its message with buttons."""
        expires = iso(self.requests.clock() + timedelta(seconds=self.requests.config.approval_ttl_seconds))

        now = self.requests.clock()

        def open_it(r: Record) -> bool:
            if r.state != QUEUED:
                return False
            r.move(Event.OPEN, now)
            r.expires = expires
            return True

        if await self.requests.store.update(record.id, open_it):
            record.move(Event.OPEN, now)
            record.expires = expires
            await self.requests.audit("Dequeued", record, record.requester, note="its turn: the approval is open")
            await self.requests.edit(record, *messages.approval_view(record))
        return record

    async def sweep(self, now: datetime | None = None) -> int:
        """Expire every pending request past its expiry (its message loses its buttons), open the queues whose
        lock is free, and delete the oldest finished requests beyond ``HELLO_KEEP_RELEASES``.

        Safe on several replicas at once: compare-and-swap on each request gives each expiry to exactly one
        of them. Returns how many requests this call expired.
        """
        now = now or self.requests.clock()
        records = await self.requests.store.load()
        expired = 0
        for record in records.values():
            if record.expired(now) and await self.expire(record.id, now):
                expired += 1
                await self.show_expired(record)
        for key in {r.key for r in records.values() if r.state in (QUEUED, PENDING)}:
            await self.advance(key)
        with contextlib.suppress(DependencyUnavailable):
            await self._cancel_strays(records, now)
        await self._prune(records)
        return expired

    async def _cancel_strays(self, records: dict[str, Record], now: datetime) -> None:
        """A queued request that neither holds its lock nor has a place in its queue ``UNPOSTED_GRACE`` seconds
        after it was stored was never admitted (its replica died first): it is cancelled, so it waits nowhere."""
        old = [r for r in records.values()
               if r.state == QUEUED and now - at(r.created) >= timedelta(seconds=UNPOSTED_GRACE)]
        locks: dict[tuple[str, str], Lock] = {}
        for record in old:
            lock = locks[record.key] = locks.get(record.key) or await self.requests.store.lock(record.key)
            if record.id == lock.holder or lock.place(record.id):
                continue
            if await self.requests.store.update(record.id, lambda r: end(r, Event.CANCEL, NEVER_ADMITTED, now)):
                log.info("request %s was stored but never admitted: cancelled", record.id)

    async def _prune(self, records: dict[str, Record]) -> None:
        finished = sorted((r for r in records.values() if r.state in FINISHED), key=lambda r: r.created)
        gone = [r.id for r in finished[:-self.requests.keep]] if len(finished) > self.requests.keep else []
        for rid in gone:
            await self.requests.store.delete(rid)


def end(record: Record, event: Event, headline: str, now: datetime) -> bool:
    """End ``record`` by ``event`` if it applies to its state (read under a compare-and-swap); whether it did."""
    if not allowed(record.state, event):
        return False
    record.move(event, now, headline)
    return True


def to_pending(record: Record, now: datetime) -> None:
    if record.state == QUEUED:
        record.move(Event.OPEN, now)


def _waiting(lock: Lock, records: dict[str, Record | None], user: str) -> int:
    """How many requests of ``user`` wait in ``lock``'s queue (HELLO_QUEUE_PER_PERSON counts them): the lock says
    whose each is; for a lock stored by an earlier version, ``records`` do."""
    def whose(rid: str) -> str:
        record = records.get(rid)
        return lock.who.get(rid) or (record.requester if record is not None else "")

    return sum(1 for q in lock.queue if whose(q) == user)
