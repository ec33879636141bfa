"""Approval requests: every change is asked for, approved by someone else, then run exactly once.

A mutating command becomes a request: the change is planned from the cluster's current state (from
-> to), stored, and posted in the channel with Approve / Reject buttons. Each request is an object of its
own in the cluster (:mod:`bot.release.requests`), so requests survive a restart, every bot replica sees
the same ones, and no two requests contend for one document. The transition ``pending -> running`` is
a compare-and-swap on the request's object: of any number of simultaneous Approve clicks, on any number
of replicas, exactly one wins and runs the change.

One change at a time per service and environment: the lock is an object per pair naming the request
that holds it and those queued behind it. Admission (:meth:`Approvals.propose`) stores the request, then
takes the lock or a place in its queue in one compare-and-swap (the catalogue's ``lock: queue``), or
refuses naming the holder (``lock: refuse``, and always without a catalogue). A request is wholly made
— record, lock or place, message and its ts — or it is cancelled and holds nothing. When the holder ends,
the first in the queue gets the lock and its approval opens (:meth:`Approvals.advance`). A holder whose
replica died stops holding the lock: a pending request without its message after ``UNPOSTED_GRACE``
seconds, a running one that nobody advanced for a while (superseded by the next request).

Before planning, a manual lock on the service refuses the change and a freeze makes it break-glass (a
reason, and two distinct approvers); an environment's ``approvals: N`` asks N distinct approvers, none
the requester (:attr:`Record.needed`, :attr:`Record.approvals`).

Who may approve is the policy's business (:meth:`bot.policy.Policy.can_approve`); the requester may
withdraw (reject) their own request. A decision counts only from a click on the request's own
message (its channel and message ts), in a channel where changes may be made (HELLO_OPS_CHANNELS):
a button's value is just the request's id, which a click from any other message could carry.
A click after the request expired edits the message to say so and changes nothing.
``/hello canary abort`` runs at once unless ``HELLO_ABORT_NEEDS_APPROVAL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.chat import render
from bot.chat.messenger import SlackError
from bot.cluster.kube import Cluster
from bot.core.catalogue import LockMode
from bot.core.errors import ClusterError, CommandError, DependencyUnavailable, PermissionDenied
from bot.core.text import foreign
from bot.core.times import iso, now
from bot.release import messages
from bot.release.actions import Change
from bot.release.buttons import Buttons
from bot.release.plan import Outcome, Release, release_for
from bot.release.requests import (
    FINISHED,
    PENDING,
    QUEUED,
    RUNNING,
    SUPERSEDED,
    Lock,
    Record,
    RequestState,
    RequestStore,
    at,
)
from bot.release.rollout import RolloutStatus

if TYPE_CHECKING:
    from bot.chat.contract import Invocation
    from bot.core.config import Config
    from bot.core.policy import Policy
    from bot.core.services import Services

log = logging.getLogger(__name__)

UNPOSTED_GRACE = 30.0  # seconds a request may hold the lock before its message ts is stored
LOCK_ROUNDS = 20  # looks at a lock whose holder changed while admission decided


class Approvals:
    """Requests, decisions and runs. ``clock`` returns the current time (injected in tests)."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] | None = None,
                 edit_interval: float = 0.5) -> None:
        self.services = services
        self.clock = clock or now
        self.edit_interval = edit_interval
        self.store = RequestStore(services.cluster, services.config.state_configmap)
        self.keep = services.config.keep_releases
        self.buttons = Buttons(self)
        self._sweeper: asyncio.Future | None = None

    @property
    def config(self) -> Config:
        return self.services.config

    def config_of(self, change: Change) -> Config:
        """The configuration of the service and environment a change is for."""
        return self.services.config_for(change.service, change.environment)

    def policy_of(self, change: Change) -> Policy:
        return self.services.policy_for(self.config_of(change))

    async def handle_action(self, body: dict, action: dict, respond: Callable[..., Awaitable[Any]]) -> None:
        """Every button click (:class:`bot.release.buttons.Buttons`)."""
        await self.buttons.handle(body, action, respond)

    # ------------------------------------------------------------------ asking
    async def propose(self, plan: Callable[[Cluster], Awaitable[Change]], invocation: Invocation, *,
                      service: str = "", environment: str = "") -> None:
        """Plan a change from the cluster's state and post it for approval (or run it, if none is needed).

        The request is stored, then takes the lock (or its place in the queue), then its message is posted
        and the message's ts stored; if any of that fails the request is cancelled: a request either has
        its message or holds nothing. A rollback is never refused because another change holds the lock:
        it supersedes that change, and both messages say so.
        """
        config = self.services.config_for(service, environment)
        chosen, env = self.services.resolve(service or None, environment or None)
        now = self.clock()
        break_glass = await self._holds(chosen.name, env.name, now)
        change = await plan(await self.services.cluster_for(config))
        if self.services.several:
            change.service, change.environment = chosen.name, env.name
            summary = change.summary  # "greeter: v1 → v2" says the service's Deployment; said once is enough
            if summary.startswith(f"{config.stable_deployment}: "):
                summary = summary[len(config.stable_deployment) + 2:]
            change.summary = f"{chosen.name} ({env.name}): {summary}"
        needed = max(env.approvals, 2 if break_glass else 1) if change.needs_approval or break_glass else 1
        if break_glass:
            if not change.reason:
                raise CommandError(f"{break_glass}. A change now needs break-glass: give a reason "
                                   f"(`/hello {change.command} … \"why it cannot wait\"`) and two approvers "
                                   "will be asked. Nothing was changed.")
            change.needs_approval = True
        record = Record(
            id=uuid.uuid4().hex[:10], change=change, requester=invocation.user_id, channel=invocation.channel_id,
            created=iso(now), expires=iso(now + timedelta(seconds=self.config.approval_ttl_seconds)),
            state=QUEUED, needed=needed, break_glass=break_glass,
        )
        await self.store.create(record)  # queued: it holds nothing until the lock names it
        try:
            place, holder = await self._admit(record, invocation.user_id, queue=chosen.lock == LockMode.QUEUE)
            if place == 0:
                await self.store.update(record.id, _to_pending)
                record.state = PENDING
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.delete(record.id)
            raise
        await self.audit("Requested", record, invocation.user_id)
        await self._post(record, config, invocation.user_id, messages.place_text(place, holder) if place else "")
        if record.state == QUEUED:
            await self.advance(record.key)  # the change it waited for may have ended meanwhile
            return
        if change.needs_approval:
            return
        token = uuid.uuid4().hex

        def start(r: Record) -> None:
            if r.state == PENDING:
                r.state, r.approver, r.decided, r.token = RUNNING, invocation.user_id, iso(now), token

        await self.store.update(record.id, start)
        await self.audit("Approved", record, invocation.user_id, note="no approval needed")
        self._run()

    async def _post(self, record: Record, config: Config, user: str, place: str) -> None:
        """Post the request's message and store its ts; on any failure the request is cancelled."""
        try:
            if record.state == PENDING and not record.change.needs_approval:
                text, blocks = self.progress_view(release_for(record, config, created=record.created,
                                                              approver=user), None)
            else:
                text, blocks = messages.approval_view(record, config, place=place)
            record.ts = await self.services.messenger.post(record.channel, text, blocks)
            await self.store.update(record.id, lambda r: setattr(r, "ts", r.ts or record.ts))
        except Exception as exc:
            error = foreign(exc.error, 80) if isinstance(exc, SlackError) else str(exc) if isinstance(
                exc, DependencyUnavailable) else type(exc).__name__
            if not isinstance(exc, SlackError | DependencyUnavailable):
                log.exception("posting request %s failed", record.id)
            await self._cancel(record, f"the request could not be posted ({error})")
            raise CommandError(f"I could not post the request in this channel ({error}); nothing was changed."
                               ) from None
        self._home_changed()

    async def _cancel(self, record: Record, why: str) -> None:
        """A request that could not be wholly made: cancelled (its message, if posted, says so); the lock frees."""
        with contextlib.suppress(DependencyUnavailable):
            await self.finish(record.id, RequestState.CANCELLED, why, was=record.state)
        if record.ts:
            record.state, record.headline = RequestState.CANCELLED, why
            text, blocks = messages.approval_view(record, self.config_of(record.change))
            await self._edit(record, text, blocks)

    async def _admit(self, record: Record, user: str, *, queue: bool) -> tuple[int, Record | None]:
        """Take the lock of ``record``'s service and environment (place 0) or a place in its queue (1, 2, ...),
        and the holder it waits behind; or refuse, naming the holder. A rollback supersedes the holder, and so
        does any request a holder that nobody advanced any more."""
        change, key = record.change, record.key
        jumps = not (queue and change.needs_approval) or change.action in ("abort", "rollback")
        for _ in range(LOCK_ROUNDS):
            now = self.clock()
            seen = await self.store.lock(key)
            holder = await self._holding(seen.holder, now)
            if holder is not None and holder.id == record.id:
                return 0, None
            if holder is not None:
                stale = holder.state == RUNNING and await self._stale(holder, now)
                if change.action == "rollback" or stale:
                    why = (f"superseded by a rollback requested by <@{user}>" if change.action == "rollback"
                           else "nobody advanced it any more; superseded by a new request")
                    await self._supersede(holder, why)
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
                    lock.queue.append(record.id)
                return lock.place(record.id)

            place = await self.store.update_lock(key, take)
            if place is not None:
                return place, holder
        raise ClusterError("the lock of this service kept changing: try again", 409)

    async def _holding(self, request_id: str, now: datetime) -> Record | None:
        """The request ``request_id`` if it still holds the lock that names it, else ``None``.

        A pending request past its expiry is expired here; one that never got its message stored
        (its replica died) is cancelled after ``UNPOSTED_GRACE`` seconds: the lock moves only away from
        requests that can no longer be approved.
        """
        record = await self.store.get(request_id) if request_id else None
        if record is None or record.state in FINISHED:
            return None
        if record.expired(now):
            if await self._expire(record.id, now):
                await self._show_expired(record)
            return None
        if record.state != RUNNING and not record.ts and now - at(record.created) >= timedelta(
                seconds=UNPOSTED_GRACE):
            why = "its message was never recorded"
            if await self.store.update(record.id, lambda r: _end_if(r, (PENDING, QUEUED), "cancelled", why, now)):
                await self.audit("Cancelled", record, record.requester, note=why)
            return None
        return record

    async def _stale(self, record: Record, now: datetime) -> bool:
        engine = self.services.releases
        return engine is not None and record.id in await engine.stale([record], now)

    async def _holds(self, service: str, environment: str, now: datetime) -> str:
        """Refuse a change to a locked service; for a frozen one, the break-glass sentence ("" when free)."""
        holds = self.services.holds
        if holds is None:
            return ""
        state = await holds.check(service, environment, now)
        where = f"{service} in {environment}" if self.services.several else service
        if state.lock is not None:
            lock = state.lock
            since = render.when(lock.since, "%Y-%m-%d %H:%M UTC")
            raise CommandError(f"{where} is locked by <@{lock.user}> since {since}: “{foreign(lock.reason, 300)}”. "
                               "Nothing was changed; `/hello unlock` ends the lock.")
        if state.freeze is not None:
            freeze = state.freeze
            return (f"{where} is frozen until {render.when(freeze.until, '%Y-%m-%d %H:%M UTC')} "
                    f"({freeze.source}: “{foreign(freeze.reason, 200)}”)")
        return ""

    # ------------------------------------------------------------------ deciding
    async def decide(self, request_id: str, user: str, *, approve: bool, channel: str, ts: str,
                     from_home: bool = False) -> None:
        """Approve or reject a pending request from a click on its message (``channel``, ``ts``).

        A button's value is only the request's id, which any message could carry: the click must come
        from the request's own message (its channel always; its ts once stored — right after posting
        the ts may not be stored yet, then the clicked one is taken) and from a channel where changes
        may be made. Anything else changes nothing and the clicker is told why.
        """
        record = await self.store.get(request_id)
        if from_home and record is not None and record.ts:
            # the user's own Home tab, which only this bot publishes and only that user sees
            channel, ts = record.channel, record.ts
        policy = self.policy_of(record.change) if record is not None else self.services.policy
        policy.check_channel(channel, "decided")
        if record is None:
            raise CommandError("This request is not known any more: nothing was changed.")
        if channel != record.channel or not ts or (record.ts and ts != record.ts):
            raise PermissionDenied(f"This click did not come from the message of request `{record.id}`: approve or "
                                   f"reject it with the buttons on that message in <#{record.channel}>. "
                                   "Nothing was changed.")
        record.ts = record.ts or ts
        if record.state == QUEUED and approve:
            raise CommandError("This request is queued behind another change to the same service: its approval "
                               "opens when that one ends. Nothing was changed.")
        if record.state not in (PENDING, QUEUED):
            raise CommandError(messages.already_text(record))
        now = self.clock()
        if record.expired(now):
            if await self._expire(record.id, now):
                await self._show_expired(record)
            raise CommandError(f"This request expired at {render.when(at(record.expires))}: nothing was changed. "
                               "Ask again if it is still wanted.")
        if approve or user != record.requester:
            ok, why = await policy.can_approve(user, record.requester)
            if not ok:
                raise PermissionDenied(why)
        if approve and user in record.approvals:
            raise CommandError(f"You have approved already; it needs {record.needed} different approvers "
                               f"({record.approved_so_far}).")
        token = uuid.uuid4().hex
        won = await self.store.update(request_id, lambda r: _decided(r, user, approve, ts, token, now))
        if won is None or won.token != token:
            latest = won or await self.store.get(request_id)
            if latest is not None and latest.expired(now):
                raise CommandError("This request expired: nothing was changed.")
            raise CommandError(messages.already_text(latest) if latest else "This request is not known any more.")
        self._home_changed()
        if approve and won.state == PENDING:  # approved by one of several
            await self.audit("Approved", won, user, note=won.approved_so_far)
            await self._edit(won, *messages.approval_view(won, self.config_of(won.change)))
            return
        if not approve:
            await self.audit("Rejected", won, user)
            await self._edit(won, *messages.approval_view(won, self.config_of(won.change)))
            await self.advance(won.key)
            return
        note = f"break-glass: {won.break_glass}" if won.break_glass else ""
        if won.needed > 1:
            note = "; ".join(p for p in (note, f"approved by {', '.join(won.approvals)}") if p)
        await self.audit("Approved", won, user, note=note)
        self._run()

    async def _expire(self, request_id: str, now: datetime) -> bool:
        def expire(r: Record) -> bool:
            if not r.expired(now):
                return False
            r.state, r.decided = RequestState.EXPIRED, iso(now)
            return True

        return bool(await self.store.update(request_id, expire))

    async def _supersede(self, record: Record, why: str) -> None:
        """End ``record`` as superseded (its record first: then the lock may move), stop its release, say so."""
        now = self.clock()
        if not await self.store.update(record.id, lambda r: _end_if(r, (PENDING, QUEUED, RUNNING), SUPERSEDED,
                                                                    why, now)):
            return
        record.state, record.headline = SUPERSEDED, why
        await self.audit("Superseded", record, record.requester, note=why)
        engine = self.services.releases
        if engine is not None:
            await engine.supersede(record.id, why)
        await self._edit(record, *messages.superseded_view(record))

    async def _show_expired(self, record: Record) -> None:
        record.state = RequestState.EXPIRED
        await self.audit("Expired", record, record.requester)
        await self._edit(record, *messages.approval_view(record, self.config_of(record.change)))

    # ------------------------------------------------------------------ ending and the queue
    async def finish(self, request_id: str, state: str, headline: str, *, was: str = RUNNING) -> None:
        """The request leaves the state ``was`` (its release ended; or it could not be posted), which frees
        the one-change-at-a-time lock: the next in the queue gets it."""
        now = self.clock()
        record = await self.store.update(
            request_id, lambda r: (_end_if(r, (was,), RequestState(state), headline, now), r)[1])
        self._home_changed()
        if record is not None:
            await self.advance(record.key)
        with contextlib.suppress(DependencyUnavailable):
            await self._prune(await self.store.load())

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
        now = self.clock()
        seen = await self.store.lock(key)
        holder = await self._holding(seen.holder, now)
        if holder is not None:
            if holder.state == QUEUED:  # the lock names it, its approval not open yet (a replica died between)
                await self._open(holder)
            return
        if not seen.queue:
            return
        records = await self.store.load()
        waiting = [q for q in seen.queue if q in records and records[q].state == QUEUED]
        head = waiting[0] if waiting else ""

        def seat(lock: Lock) -> Lock | None:
            if lock.holder != seen.holder:
                return None  # someone else moved the lock: they advance the queue
            lock.queue = [q for q in lock.queue if q != head and (q in waiting or q not in seen.queue)]
            lock.holder = head or lock.holder
            return Lock(lock.holder, list(lock.queue))

        seated = await self.store.update_lock(key, seat)
        if seated is None or not head:
            return
        opened = await self._open(records[head])
        for place, rid in enumerate(seated.queue, 1):
            if rid in records:
                text, blocks = messages.approval_view(records[rid], self.config_of(records[rid].change),
                                                      place=messages.place_text(place, opened))
                await self._edit(records[rid], text, blocks)
        self._home_changed()

    async def _open(self, record: Record) -> Record:
        """A queued request that holds the lock now: pending, its expiry from now, its message with buttons."""
        expires = iso(self.clock() + timedelta(seconds=self.config.approval_ttl_seconds))

        def open_it(r: Record) -> bool:
            if r.state != QUEUED:
                return False
            r.state, r.expires = PENDING, expires
            return True

        if await self.store.update(record.id, open_it):
            record.state, record.expires = PENDING, expires
            await self.audit("Dequeued", record, record.requester, note="its turn: the approval is open")
            await self._edit(record, *messages.approval_view(record, self.config_of(record.change)))
        return record

    async def queue_place(self, record: Record) -> str:
        """"2nd in line, behind …" for a queued request ("" when it is not queued)."""
        lock = await self.store.lock(record.key)
        place = lock.place(record.id)
        holder = await self.store.get(lock.holder) if lock.holder else None
        return messages.place_text(place, holder) if place else ""

    async def sweep(self, now: datetime | None = None) -> int:
        """Expire every pending request past its expiry (its message loses its buttons), open the queues whose
        lock is free, and delete the oldest finished requests beyond ``HELLO_KEEP_RELEASES``.

        Safe on several replicas at once: compare-and-swap on each request gives each expiry to exactly one
        of them. Returns how many requests this call expired.
        """
        now = now or self.clock()
        records = await self.store.load()
        expired = 0
        for record in records.values():
            if record.expired(now) and await self._expire(record.id, now):
                expired += 1
                await self._show_expired(record)
        for key in {r.key for r in records.values() if r.state in (QUEUED, PENDING)}:
            await self.advance(key)
        await self._prune(records)
        return expired

    async def _prune(self, records: dict[str, Record]) -> None:
        finished = sorted((r for r in records.values() if r.state in FINISHED), key=lambda r: r.created)
        gone = [r.id for r in finished[:-self.keep]] if len(finished) > self.keep else []
        for rid in gone:
            await self.store.delete(rid)
        engine = self.services.releases
        if gone and engine is not None:
            await engine.forget(gone)

    async def start(self, interval: float = 30.0) -> None:
        """Adopt the requests an earlier version stored, then sweep every ``interval`` seconds in the background."""
        try:
            adopted = await self.store.adopt_legacy()
        except DependencyUnavailable as exc:  # the next start adopts them
            log.warning("cannot adopt the requests of the shared state ConfigMap yet: %s", exc)
        else:
            if adopted:
                log.info("adopted %d requests from the shared state ConfigMap", len(adopted))

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.sweep()
                except Exception:  # the cluster may be away for a while; try again next time
                    log.warning("cannot sweep the approval requests", exc_info=True)

        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(loop())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    # ------------------------------------------------------------------ running, messages, audit
    def _run(self) -> None:
        """Hand an approved request to the release engine (the leader replica carries it out)."""
        engine = self.services.releases
        if engine is not None:
            engine.poke()

    def _home_changed(self) -> None:
        home = self.services.home
        if home is not None:
            home.changed()

    async def _edit(self, record: Record, text: str, blocks: list[dict]) -> None:
        if not record.ts:
            return
        try:
            await self.services.messenger.update(record.channel, record.ts, text, blocks)
        except SlackError as exc:
            log.warning("cannot edit request message %s: %s", record.ts, exc)

    def approval_view(self, record: Record, *, place: str = "") -> tuple[str, list[dict]]:
        return messages.approval_view(record, self.config_of(record.change), place=place)

    def progress_view(self, release: Release, status: RolloutStatus | None, *, outcome: Outcome | None = None,
                      problem: str = "") -> tuple[str, list[dict]]:
        """The release's one message (:func:`bot.release.messages.progress_view`)."""
        approved = not (release.action == "abort" and not self.config.abort_needs_approval)
        return messages.progress_view(release, status, now=self.clock(), approved=approved, outcome=outcome,
                                      problem=problem)

    async def audit_outcome(self, record: Record, outcome: Outcome) -> None:
        await self.audit("Succeeded" if outcome.ok else "Failed", record, record.approver,
                         note=outcome.headline, facts=outcome.facts)

    async def audit(self, phase: str, record: Record, user: str, *, note: str = "",
                    facts: dict[str, Any] | None = None) -> None:
        audit = self.services.audit
        if audit is None:
            return
        try:
            await audit.record(phase, record, user=user, note=note, facts=facts or {})
        except Exception:  # the audit trail must never break a release
            log.exception("audit record %s of %s failed", phase, record.id)


def _to_pending(record: Record) -> None:
    if record.state == QUEUED:
        record.state = PENDING


def _end_if(record: Record, states: tuple[str, ...], state: str, headline: str, now: datetime) -> bool:
    """End ``record`` in ``state`` if it is in one of ``states``; whether it did."""
    if record.state not in states:
        return False
    record.state, record.headline, record.finished = RequestState(state), headline, iso(now)
    if state == RequestState.CANCELLED and not record.decided:
        record.decided = record.finished
    return True


def _decided(r: Record, user: str, approve: bool, ts: str, token: str, now: datetime) -> Record:
    """One click's decision on the stored request ``r`` (it wins when ``r.token`` ends up ``token``)."""
    if r.state == QUEUED and not approve:
        pass  # withdrawn (or rejected) while it waited its turn
    elif r.state != PENDING or r.expired(now):
        return r
    if r.ts and r.ts != ts:  # stored meanwhile, and it is another message
        raise PermissionDenied("This click did not come from the request's message: nothing was changed.")
    if approve and user in r.approvals:
        return r
    if approve and len(r.approvals) + 1 < r.needed:  # one more of several approvals: still pending
        r.approvals.append(user)
        r.ts, r.token = r.ts or ts, token
        return r
    if approve:
        r.approvals.append(user)
    r.state = RUNNING if approve else RequestState.REJECTED
    r.approver, r.decided, r.token, r.ts = user, iso(now), token, r.ts or ts
    if not approve:
        r.finished = r.decided
        r.headline = "withdrawn by the requester" if user == r.requester else f"rejected by <@{user}>"
    return r
