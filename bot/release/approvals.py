"""Approval requests: every change is asked for, approved by someone else, then run exactly once.

A mutating command becomes a request: the change is planned from the cluster's current state (from
-> to), stored, and posted in the channel with Approve / Reject buttons. Each request is an object of its
own in the cluster (:mod:`bot.release.records`), so requests survive a restart, every bot replica sees
the same ones, and no two requests contend for one document. The transition ``pending -> running`` is
a compare-and-swap on the request's object: of any number of simultaneous Approve clicks, on any number
of replicas, exactly one wins and runs the change.

One change at a time per service and environment: admission (:mod:`bot.release.admission`) gives
a request the lock of its pair, a place in its queue, or a refusal naming the holder. A request is wholly
made — record, lock or place, message and its ts — or it is cancelled and holds nothing.

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
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.chat import views
from bot.chat.messenger import SlackError
from bot.cluster.kube import Cluster
from bot.core.catalogue import LockMode
from bot.core.errors import CommandError, Conflict, DependencyUnavailable, PermissionDenied
from bot.core.target import Target
from bot.core.tasks import cancel
from bot.core.text import foreign
from bot.core.times import now
from bot.release import messages
from bot.release.actions import Change
from bot.release.admission import Admission, to_pending
from bot.release.buttons import Buttons
from bot.release.lifecycle import FINISHED, PENDING, QUEUED, Event
from bot.release.plan import Outcome, steps_for
from bot.release.record import Record, at, named, request_record
from bot.release.records import Records
from bot.release.rollout import RolloutStatus

if TYPE_CHECKING:
    from bot.chat.contract import Invocation
    from bot.core.config import Config
    from bot.core.ports import AlertDesk, AuditTrail, Holds, HomeTabs, Releases
    from bot.core.services import Services, Shared

log = logging.getLogger(__name__)


class Approvals:
    """Requests, decisions and runs. ``clock`` returns the current time (injected in tests).

    The release engine and the Home tabs call Approvals (its store, its views) and are built after it, and a
    follow-up button runs a command, which takes the assembled :class:`Services` that holds Approvals: these
    three are looked up when called (``releases``, ``home``, ``commands``), never stored into this object.

    It keeps the :class:`Shared` bundle because it, its admission and its buttons use most of it: the
    configuration, the messenger (the request's message), the targets (a stored change's service and
    environment), the bot's own cluster (the records' store) and the registry (a follow-up button runs a command).
    """

    def __init__(self, services: Shared, *, audit: AuditTrail, holds: Holds, alerts: AlertDesk,
                 releases: Callable[[], Releases], home: Callable[[], HomeTabs], commands: Callable[[], Services],
                 clock: Callable[[], datetime] | None = None, edit_interval: float = 0.5) -> None:
        self.services = services
        self.audit_trail, self.holds, self.alerts = audit, holds, alerts
        self.releases, self.home, self.commands = releases, home, commands
        self.clock = clock or now
        self.edit_interval = edit_interval
        # the plan of a stored change that has none yet (a request stored by an earlier version)
        self.store = Records(services.cluster, services.config.state_configmap,
                             lambda change: steps_for(change.action, change.params, self.target_of(change).config))
        self.keep = services.config.keep_releases
        self.buttons = Buttons(self)
        self.admission = Admission(self)
        self._sweeper: asyncio.Future | None = None

    @property
    def config(self) -> Config:
        return self.services.config

    def target_of(self, change: Change) -> Target:
        """The service and environment a stored change is for (resolved where a click or a sweep takes it up)."""
        return self.services.target(change.service, change.environment)

    async def handle_action(self, body: dict, action: dict, respond: Callable[..., Awaitable[Any]]) -> None:
        """Every button click (:class:`bot.release.buttons.Buttons`)."""
        await self.buttons.handle(body, action, respond)

    # ------------------------------------------------------------------ asking
    async def propose(self, plan: Callable[[Cluster], Awaitable[Change]], invocation: Invocation,
                      target: Target) -> None:
        """Plan a change from the cluster's state and post it for approval (or run it, if none is needed).

        The request is stored, then takes the lock (or its place in the queue), then its message is posted
        and the message's ts stored; if any of that fails the request is cancelled: a request either has
        its message or holds nothing. A rollback is never refused because another change holds the lock:
        it supersedes that change, and both messages say so.
        """
        config, chosen, env = target.config, target.service, target.environment
        now = self.clock()
        break_glass = await self.admission.holds(target, now)
        change = named(await plan(await target.cluster()), target)
        needed = max(env.approvals, 2 if break_glass else 1) if change.needs_approval or break_glass else 1
        if break_glass:
            if not change.reason:
                raise CommandError(f"{break_glass}. A change now needs break-glass: give a reason "
                                   f"(`/hello {change.command} … \"why it cannot wait\"`) and two approvers "
                                   "will be asked. Nothing was changed.")
            change.needs_approval = True
        record = request_record(change, invocation.user_id, invocation.channel_id, config, now, needed=needed,
                                break_glass=break_glass)
        await self.submit(record, target, queue=chosen.lock == LockMode.QUEUE)

    async def submit(self, record: Record, target: Target, *, queue: bool, note: str = "no approval needed") -> None:
        """Store ``record``, admit it (the lock, a place in the queue, or refused), audit it, post its message; one
        that needs no approval starts running at once (``note``: what its Approved record says)."""
        now, user = self.clock(), record.requester
        try:
            await self.store.create(record)  # queued: it holds nothing until the lock names it
        except Conflict:
            raise  # a record of this id exists already: it is someone else's to admit
        except BaseException:  # it may have been stored all the same (an answer that timed out)
            with contextlib.suppress(Exception):
                await self.store.delete(record.id)
            raise
        try:
            place, holder = await self.admission.admit(record, user, queue=queue)
            if place == 0:
                await self.store.update(record.id, lambda r: to_pending(r, now))
                to_pending(record, now)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.delete(record.id)
            raise
        await self.audit("Requested", record, user, target=target)
        await self._post(record, user, messages.place_text(place, holder) if place else "")
        if record.state in FINISHED:
            return
        if record.state == QUEUED:
            await self.admission.posted(record, place, holder)  # the queue may have moved while it was posted
            await self.advance(record.key)  # the change it waited for may have ended meanwhile
            return
        if record.change.needs_approval:
            return
        token = uuid.uuid4().hex

        def start(r: Record) -> None:
            if r.state == PENDING:
                r.move(Event.APPROVE, now)
                r.approver, r.token = user, token

        await self.store.update(record.id, start)
        record.approver = user
        await self.audit("Approved", record, user, note=note)
        self._run()

    async def _post(self, record: Record, user: str, place: str) -> None:
        """Post the request's message and store its ts; on any failure the request is cancelled."""
        try:
            if record.state == PENDING and not record.change.needs_approval:
                text, blocks = self.progress_view(replace(record, approver=user, began=record.created), None)
            else:
                text, blocks = messages.approval_view(record, place=place)
            record.ts = await self.services.messenger.post(record.channel, text, blocks)
            stored = await self.store.update(record.id, lambda r: _posted(r, record.ts))
        except Exception as exc:
            if isinstance(exc, SlackError):
                error = foreign(exc.error, 80)
            elif isinstance(exc, DependencyUnavailable):  # the cluster's text: escaped like all foreign text
                error = foreign(str(exc), 120)
            else:
                error = type(exc).__name__
                log.exception("posting request %s failed", record.id)
            why = f"the request could not be posted ({error})"  # cancelled: its message, if posted, says so
            with contextlib.suppress(DependencyUnavailable):
                await self.admission.cancel(record.id, why)
            if record.ts:
                record.move(Event.CANCEL, self.clock(), why)
                await self.edit(record, *messages.approval_view(record))
            raise CommandError(f"I could not post the request in this channel ({error}); nothing was changed."
                               ) from None
        if stored is not None and stored.state in FINISHED:  # ended while it was posted (its ts came too late)
            record.state, record.finished, record.headline = stored.state, stored.finished, stored.headline
            await self.edit(record, *messages.approval_view(record))
        self.home_changed()

    # ------------------------------------------------------------------ deciding
    async def decide(self, request_id: str, user: str, *, approve: bool, channel: str, ts: str,
                     from_home: bool = False) -> None:
        """Approve or reject a pending request from a click on its message (``channel``, ``ts``).

        A button's value is only the request's id, which any message could carry: the click must come
        from the request's own message (its channel always; its ts once stored — right after posting
        the ts may not be stored yet, then the clicked one is taken) and from a channel where changes
        may be made. Anything else changes nothing and the clicker is told why.
        """
        record, target, ts = await self._clicked(request_id, channel, ts, from_home=from_home)
        policy = target.policy
        if record.state == QUEUED and approve:
            raise CommandError("This request is queued behind another change to the same service: its approval "
                               "opens when that one ends. Nothing was changed.")
        if record.state not in (PENDING, QUEUED):
            raise CommandError(messages.already_text(record))
        now = self.clock()
        if record.expired(now):
            if await self.admission.expire(record.id, now):
                await self.admission.show_expired(record)
            raise CommandError(f"This request expired at {views.when(at(record.expires))}: nothing was changed. "
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
        self.home_changed()
        if approve and won.state == PENDING:  # approved by one of several
            await self.audit("Approved", won, user, note=won.approved_so_far)
            await self.edit(won, *messages.approval_view(won))
            return
        if not approve:
            if record.state == QUEUED:  # withdrawn while it waited: its place goes
                await self.admission.leave(won.key, won.id)
            await self.audit("Rejected", won, user)
            await self.edit(won, *messages.approval_view(won))
            await self.advance(won.key)
            return
        note = f"break-glass: {won.break_glass}" if won.break_glass else ""
        if won.needed > 1:
            note = "; ".join(p for p in (note, f"approved by {', '.join(won.approvals)}") if p)
        await self.audit("Approved", won, user, note=note)
        self._run()

    # ------------------------------------------------------------------ the lock and the queue (admission.py)
    async def _clicked(self, request_id: str, channel: str, ts: str, *, from_home: bool) -> tuple[Record, Target, str]:
        """The request a decision's click is about, its target and the message's ts; refuses a click from anywhere
        but the request's own message (or the clicker's own Home) and from a channel where changes are not made."""
        record = await self.store.get(request_id)
        if from_home and record is not None and record.ts:
            # the user's own Home tab, which only this bot publishes and only that user sees
            channel, ts = record.channel, record.ts
        target = self.target_of(record.change) if record is not None else self.services.targets.default
        target.policy.check_channel(channel, "decided")
        if record is None:
            raise CommandError("This request is not known any more: nothing was changed.")
        if channel != record.channel or not ts or (record.ts and ts != record.ts):
            raise PermissionDenied(f"This click did not come from the message of request `{record.id}`: approve or "
                                   f"reject it with the buttons on that message in <#{record.channel}>. "
                                   "Nothing was changed.")
        record.ts = record.ts or ts
        return record, target, ts

    async def ended(self, key: tuple[str, str]) -> None:
        """A release of ``key`` ended: the lock frees for the next one in its queue."""
        await self.admission.ended(key)

    async def advance(self, key: tuple[str, str]) -> None:
        """Open the next queued request of ``key`` when nothing holds its lock (never raises)."""
        await self.admission.advance(key)

    async def sweep(self, now: datetime | None = None) -> int:
        """Send the edits Slack did not take again, expire, open free queues, prune
        (:meth:`bot.release.admission.Admission.sweep`)."""
        await self.services.messenger.resend()
        return await self.admission.sweep(now)

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
        sweeper, self._sweeper = self._sweeper, None
        await cancel(sweeper)

    # ------------------------------------------------------------------ running, messages, audit
    def _run(self) -> None:
        """Hand an approved request to the release engine (the leader replica carries it out)."""
        self.releases().poke()

    def home_changed(self) -> None:
        self.home().changed()

    async def edit(self, record: Record, text: str, blocks: list[dict]) -> None:
        """Edit ``record``'s message; once it shows how the record ended, the record says so (``shown``)."""
        if not record.ts:
            return
        try:
            await self.services.messenger.update(record.channel, record.ts, text, blocks)
        except SlackError as exc:
            log.warning("cannot edit request message %s: %s", record.ts, exc)
            return
        if record.state in FINISHED:
            with contextlib.suppress(DependencyUnavailable):
                await self.store.mark_shown(record.id)

    def progress_view(self, release: Record, status: RolloutStatus | None, *, outcome: Outcome | None = None,
                      problem: str = "") -> tuple[str, list[dict]]:
        """The release's one message (:func:`bot.release.messages.progress_view`)."""
        approved = not (release.action == "abort" and not self.config.abort_needs_approval) and (
            release.change.needs_approval or release.approver != release.requester)  # the bake window's rollback
        return messages.progress_view(release, status, now=self.clock(), approved=approved, outcome=outcome,
                                      problem=problem)

    async def audit_outcome(self, record: Record, outcome: Outcome) -> None:
        await self.audit("Succeeded" if outcome.ok else "Failed", record, record.approver,
                         note=outcome.headline, facts=outcome.facts)

    async def audit(self, phase: str, record: Record, user: str, *, note: str = "",
                    facts: dict[str, Any] | None = None, target: Target | None = None) -> None:
        """Audit a phase of ``record`` (``target``: its target when the caller has it resolved already)."""
        try:
            await self.audit_trail.record(phase, record, user=user, note=note, facts=facts or {}, target=target)
        except Exception:  # the audit trail must never break a release
            log.exception("audit record %s of %s failed", phase, record.id)


def _posted(r: Record, ts: str) -> Record:
    """The stored request ``r`` with its message's ``ts`` (the first stored stays), as it is now."""
    r.ts = r.ts or ts
    return replace(r)


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
    if approve:
        r.move(Event.APPROVE, now)
    elif user == r.requester:
        r.move(Event.WITHDRAW, now, "withdrawn by the requester")
    else:
        r.move(Event.REJECT, now, f"rejected by <@{user}>")
    r.approver, r.token, r.ts = user, token, r.ts or ts
    return r
