"""Approval requests: every change is asked for, approved by someone else, then run exactly once.

A mutating command becomes a request: the change is planned from the cluster's current state (from
-> to), stored, and posted in the channel with Approve / Reject buttons. Requests live in the
cluster, in the ConfigMap named by ``HELLO_STATE_CONFIGMAP`` (one key ``request.<id>`` per request,
JSON), so they survive a restart and every bot replica sees the same ones. Every write is a
read-modify-PUT guarded by the ConfigMap's resourceVersion; a 409 Conflict means someone else wrote
first, so the state is read again and the decision made again on it. The transition
``pending -> running`` is that compare-and-swap: of any number of simultaneous Approve clicks, on
any number of replicas, exactly one wins and runs the change.

One change at a time per service and environment: a new request while another one for the same pair is
waiting for approval (until it is approved, rejected or expires) or running is queued (the catalogue's
``lock: queue``: its approval opens when the lock frees, see :meth:`Approvals.advance`) or refused
naming it (``lock: refuse``, and always without a catalogue). The lock is the stored requests
themselves, so it holds across replicas. A running request whose replica died stops holding the lock
after the rollout and certificate time limits have passed.

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
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot.chat import render
from bot.chat.messenger import SlackError
from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.core.catalogue import LockMode
from bot.core.errors import CommandError, DependencyUnavailable, PermissionDenied
from bot.core.text import foreign
from bot.release.actions import Change
from bot.release.plan import Outcome, Release, Step, StepKind, StepState, release_for, steps_for
from bot.release.rollout import RolloutStatus

if TYPE_CHECKING:
    from bot.chat.contract import Invocation
    from bot.core.config import Config
    from bot.core.policy import Policy
    from bot.core.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")
PREFIX = "request."
KEEP_FINISHED = 50
PENDING, RUNNING, SUPERSEDED = "pending", "running", "superseded"
QUEUED = "queued"  # waits for the service and environment's running change; then pending (its approval opens)
FINISHED = ("succeeded", "failed", "rejected", "expired", "cancelled", SUPERSEDED)
UNPOSTED_GRACE = 30.0
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{1,20}", re.ASCII)
_REQUEST_ID = re.compile(r"[0-9a-f]{6,32}", re.ASCII)
REASON_SHOWN = 300  # characters of a reason shown in a message
# Buttons under a finished change: they start a new request (or run abort at once, per the policy).
FOLLOW_UPS = {"release_rollback": "rollback", "release_promote": "promote", "release_abort": "abort"}
# Buttons on an alert card: Roll back and Abort canary are follow-ups too; the others are the card's own.
ALERT_ACTIONS = {"alert_rollback": "rollback", "alert_abort": "abort", "alert_silence": "", "alert_ack": ""}
FOLLOW_UP_TEXT = {"rollback": "rollback", "promote": "canary promote", "abort": "canary abort"}  # as typed
BUTTONS = {
    "rollback": {"action_id": "release_rollback", "text": "Roll back", "style": "danger"},
    "promote": {"action_id": "release_promote", "text": "Promote", "style": "primary"},
    "abort": {"action_id": "release_abort", "text": "Abort canary", "style": "danger"},
    # a release that waits for a person (a gate, or an analysis that could not decide or failed in advise mode)
    "continue": {"action_id": "analysis_continue", "text": "Continue", "style": "primary"},
    "stop": {"action_id": "analysis_abort", "text": "Abort canary", "style": "danger"},
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class Record:
    """One request as stored in the cluster."""

    id: str
    change: Change
    requester: str
    channel: str
    created: str
    expires: str
    state: str = PENDING
    ts: str = ""
    approver: str = ""
    decided: str = ""
    finished: str = ""
    headline: str = ""
    token: str = ""  # set by whoever won the pending -> running transition
    needed: int = 1  # distinct approvers it needs (the environment's ``approvals``; 2 under break-glass)
    approvals: list[str] = field(default_factory=list)  # who approved so far, in order
    break_glass: str = ""  # why it needs break-glass (the freeze in force when it was asked), else ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def approved_so_far(self) -> str:
        """"1 of 2: <@U2>" while it waits for more approvers ("" when it needs one)."""
        if self.needed <= 1:
            return ""
        who = ", ".join(f"<@{u}>" for u in self.approvals) or "nobody yet"
        return f"{len(self.approvals)} of {self.needed} approvals: {who}"

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        data["change"] = Change(**data["change"])
        return cls(**data)

    def expired(self, now: datetime) -> bool:
        return self.state == PENDING and now >= _parse(self.expires)

    def what(self) -> str:
        return f"*{self.change.label}* {render.escape(self.change.summary)}"

    @property
    def key(self) -> tuple[str, str]:
        """The lock it takes: one change at a time per service and environment."""
        return self.change.service, self.change.environment


class RequestStore:
    """The requests in the state ConfigMap, changed only through :meth:`transact`."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], name: str, *, keep: int = KEEP_FINISHED,
                 on_pruned: Callable[[list[str]], Awaitable[None]] | None = None) -> None:
        """``keep`` finished requests are kept (the oldest go); ``on_pruned`` hears the ids that went."""
        self._store = ConfigMapStore(cluster, name)
        self.name = name
        self.keep = keep
        self.on_pruned = on_pruned

    async def load(self) -> dict[str, Record]:
        return self._records(await self._store.read() or {})

    @staticmethod
    def _records(data: dict[str, str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for key, value in data.items():
            if key.startswith(PREFIX):
                try:
                    record = Record.from_json(value)
                except (ValueError, TypeError, KeyError):
                    log.warning("ignoring unreadable request %s in the state ConfigMap", key)
                    continue
                out[record.id] = record
        return out

    async def get(self, request_id: str) -> Record | None:
        return (await self.load()).get(request_id)

    async def transact(self, decide: Callable[[dict[str, Record]], tuple[T, bool]]) -> T:
        """Read, let ``decide`` change the records (it returns (result, changed)), write; redo on a conflict.

        ``decide`` may raise (e.g. :class:`CommandError`) to give up without writing.
        """

        dropped: list[str] = []

        def mutate(data: dict[str, str]) -> T:
            records = self._records(data)
            result, changed = decide(records)
            dropped.clear()
            if changed:
                for key in [k for k in data if k.startswith(PREFIX)]:
                    del data[key]
                kept, gone = _pruned(records, self.keep)
                data.update({PREFIX + r.id: r.to_json() for r in kept})
                dropped.extend(gone)
            return result

        result = await self._store.update(mutate)
        if dropped and self.on_pruned is not None:
            await self.on_pruned(list(dropped))
        return result


def _pruned(records: dict[str, Record], keep: int) -> tuple[list[Record], list[str]]:
    """The records to keep, and the ids of the oldest finished ones beyond ``keep``."""
    finished = sorted((r for r in records.values() if r.state in FINISHED), key=lambda r: r.created)
    drop = {r.id for r in finished[:-keep]} if len(finished) > keep else set()
    return [r for r in records.values() if r.id not in drop], sorted(drop)


class Approvals:
    """Requests, decisions and runs. ``clock`` returns the current time (injected in tests)."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] | None = None,
                 edit_interval: float = 0.5) -> None:
        self.services = services
        self.clock = clock or (lambda: datetime.now(UTC))
        self.edit_interval = edit_interval
        self.store = RequestStore(services.cluster, services.config.state_configmap,
                                  keep=services.config.keep_releases, on_pruned=self._forget)
        self._sweeper: asyncio.Future | None = None

    @property
    def config(self) -> Config:
        return self.services.config

    def config_of(self, change: Change) -> Config:
        """The configuration of the service and environment a change is for."""
        return self.services.config_for(change.service, change.environment)

    def policy_of(self, change: Change) -> Policy:
        return self.services.policy_for(self.config_of(change))

    # ------------------------------------------------------------------ asking
    async def propose(self, plan: Callable[[Cluster], Awaitable[Change]], invocation: Invocation, *,
                      service: str = "", environment: str = "") -> None:
        """Plan a change from the cluster's state and post it for approval (or run it, if none is needed).

        The request is stored (taking the lock) before its message is posted; if the message cannot be
        posted, for whatever reason, the request is cancelled at once: a request either has its message
        or holds no lock. A rollback is never refused because another change holds the lock: it
        supersedes that change, and both messages say so.
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
        queue = chosen.lock == LockMode.QUEUE
        needed = max(env.approvals, 2 if break_glass else 1) if change.needs_approval or break_glass else 1
        if break_glass:
            if not change.reason:
                raise CommandError(f"{break_glass}. A change now needs break-glass: give a reason "
                                   f"(`/hello {change.command} … \"why it cannot wait\"`) and two approvers "
                                   "will be asked. Nothing was changed.")
            change.needs_approval = True
        record = Record(
            id=uuid.uuid4().hex[:10], change=change, requester=invocation.user_id, channel=invocation.channel_id,
            created=_iso(now), expires=_iso(now + timedelta(seconds=self.config.approval_ttl_seconds)),
            needed=needed, break_glass=break_glass,
        )
        running = [r for r in (await self.store.load()).values() if r.state == RUNNING]
        engine = self.services.releases
        stale = await engine.stale(running, now) if engine is not None and running else set()

        def admit(records: dict[str, Record]) -> tuple[tuple[list[Record], list[Record]], bool]:
            expired = [r for r in records.values() if r.expired(now)]
            for r in expired:
                r.state, r.decided = "expired", _iso(now)
            superseded: list[Record] = []
            busy = self.active(records, now, stale, record.key)
            while busy is not None and (change.action == "rollback" or busy.id in stale):
                why = (f"superseded by a rollback requested by <@{invocation.user_id}>"
                       if change.action == "rollback" else "nobody advanced it any more; superseded by a new request")
                busy.state, busy.headline, busy.finished = SUPERSEDED, why, _iso(now)
                superseded.append(busy)
                busy = self.active(records, now, stale, record.key)
            if busy is not None:
                if not (queue and change.needs_approval) or change.action == "abort":  # never wait behind
                    # the canary an abort is meant to stop: refused, naming what holds the lock
                    raise CommandError(self.busy_text(busy))
                record.state = QUEUED
            records[record.id] = record
            return (expired, superseded), True

        expired, superseded = await self.store.transact(admit)
        for old in expired:
            await self._show_expired(old)
        for old in superseded:
            await self._show_superseded(old)
        await self._audit("Requested", record, invocation.user_id)
        try:
            if record.state == QUEUED:
                text, blocks = self.approval_view(record, place=self._place(await self.store.load(), record))
            elif change.needs_approval:
                text, blocks = self.approval_view(record)
            else:
                text, blocks = self.progress_view(
                    release_for(record, config, created=record.created, approver=invocation.user_id), None)
            record.ts = await self.services.messenger.post(record.channel, text, blocks)
        except Exception as exc:
            error = foreign(exc.error, 80) if isinstance(exc, SlackError) else type(exc).__name__
            if not isinstance(exc, SlackError):
                log.exception("posting request %s failed", record.id)
            await self.finish(record.id, "cancelled", f"the request could not be posted ({error})", was=record.state)
            raise CommandError(f"I could not post the request in this channel ({error}); nothing was changed."
                               ) from None
        if change.needs_approval:
            await self._update(record.id, lambda r: setattr(r, "ts", r.ts or record.ts))
            self._home_changed()
            if record.state == QUEUED:
                await self.advance(record.key)  # the change it waited for may have ended meanwhile
            return
        token = uuid.uuid4().hex

        def start(r: Record) -> None:
            if r.state == PENDING:
                r.state, r.ts, r.approver, r.decided, r.token = RUNNING, record.ts, invocation.user_id, _iso(now), token

        await self._update(record.id, start)
        await self._audit("Approved", record, invocation.user_id, note="no approval needed")
        await self._run(record)

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

    def active(self, records: dict[str, Record], now: datetime, stale: set[str] = frozenset(),
               key: tuple[str, str] | None = None) -> Record | None:
        """The request holding the lock of ``key`` (a service and environment; ``None``: any): pending (with
        its message) and not expired, or running.

        A pending request whose message was never posted (its replica died first) holds no lock after
        ``UNPOSTED_GRACE`` seconds.
        """
        for r in sorted(records.values(), key=lambda r: r.created):
            if key is not None and r.key != key:
                continue
            if r.state == PENDING and not r.expired(now):
                if r.ts or now - _parse(r.created) < timedelta(seconds=UNPOSTED_GRACE):
                    return r
            if r.state == RUNNING:
                return r
        return None

    @staticmethod
    def busy_text(busy: Record) -> str:
        doing = ("is waiting for approval" if busy.state == PENDING
                 else f"is running (approved by <@{busy.approver}>)")
        return (f"One change at a time: {busy.what()} requested by <@{busy.requester}> {doing}. "
                "Wait for it to finish (or reject it), then ask again.")

    # ------------------------------------------------------------------ buttons
    async def handle_action(self, body: dict, action: dict, respond: Callable[..., Awaitable[Any]]) -> None:
        """Every button click. Raises :class:`CommandError` to answer the clicker privately."""
        action_id = str(action.get("action_id", ""))
        value = str(action.get("value", ""))
        user = str((body.get("user") or {}).get("id", ""))
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id", ""))
        from_home = container.get("type") == "view" and (body.get("view") or {}).get("type") == "home"
        if action_id in ("approve", "reject"):
            await self.decide(value, user, approve=action_id == "approve", channel=channel,
                              ts=str(container.get("message_ts") or ""), from_home=from_home)
        elif action_id in FOLLOW_UPS:
            await self.follow_up(FOLLOW_UPS[action_id], user, channel, value)
        elif action_id in ("analysis_continue", "analysis_abort"):
            await self.decide_step(value, user, channel, "continue" if action_id == "analysis_continue" else "abort")
        elif action_id in ALERT_ACTIONS:
            await self.alert_action(action_id, value, user, channel, str(container.get("message_ts") or ""))
        else:
            raise CommandError("This button is not handled by this bot.")

    async def alert_action(self, action_id: str, group: str, user: str, channel: str, ts: str) -> None:
        """A button on an alert card (:mod:`bot.observe.alerts`): Roll back and Abort canary take the same
        path as typing the command; Silence 1h and Acknowledge are the card's own business."""
        alerts = self.services.alerts
        if alerts is None:
            raise CommandError("Alerts are not handled by this bot.")
        if action_id == "alert_silence":
            await alerts.silence(group, user, channel, ts)
        elif action_id == "alert_ack":
            await alerts.acknowledge(group, user, channel, ts)
        else:
            found = await alerts.from_card(group, channel, ts)
            place = found.place
            if place is None:  # one service: the command as typed in the channel
                await self.follow_up(ALERT_ACTIONS[action_id], user, channel)
                return
            if place.ambiguous:
                raise CommandError("This alert fits several services or environments, so the card cannot tell which "
                                   "to change: type the command naming them (`/hello rollback <service> "
                                   "<environment>`). Nothing was changed.")
            await self.follow_up(ALERT_ACTIONS[action_id], user, channel, service=place.service,
                                 environment=place.environment)

    async def follow_up(self, kind: str, user: str, channel: str, release_id: str = "", *,
                        service: str | None = None, environment: str | None = None) -> None:
        """A button under a finished change: the same path as typing the command (parse, policy, plan, approval).

        Nobody typed a reason: the button gives one, naming itself and the request it sits under
        ("from the Roll back button under request 3f9c2a1b7e"), so it works with HELLO_REQUIRE_REASON too.
        The change is for the service and environment of that request; ``service`` / ``environment`` name
        them instead (an alert card's buttons act on the pair of the card's alert group).
        """
        from bot.chat.contract import Context, Invocation

        text = FOLLOW_UP_TEXT[kind]
        name, *words = text.split()
        command = self.services.registry.get(name)
        if command is None:
            raise CommandError(f"`/hello {name}` is not available in this bot.")
        under = f" under request {release_id}" if _REQUEST_ID.fullmatch(release_id) else ""
        reason = f"from the {BUTTONS[kind]['text']} button{under}"
        if service is None:  # the pair of the request the button sits under (none: the default)
            under_record = await self.store.get(release_id) if under else None
            service, environment = under_record.key if under_record is not None else ("", "")
        environment = environment or ""
        config = self.services.config_for(service, environment)
        request = command.parse([*words, reason], config)
        await self.services.policy_for(config).check_change(user, channel, f"ask for a {kind}")
        invocation = Invocation(user_id=user, channel_id=channel, text=f'{text} "{reason}"')
        await command.run(request, Context(invocation=invocation, services=self.services, service=service,
                                           environment=environment))

    async def decide_step(self, release_id: str, user: str, channel: str, decision: str) -> None:
        """Continue or Abort on a release that waits for a person: an approver continues, a deployer may abort."""
        record = await self.store.get(release_id)
        if record is None or record.state != RUNNING:
            raise CommandError("This release is not running any more: nothing was changed.")
        if channel != record.channel:
            raise PermissionDenied("This click did not come from the release's message: nothing was changed.")
        policy = self.policy_of(record.change)
        if decision == "continue":
            ok, why = await policy.can_approve(user, "")
            if not ok:
                raise PermissionDenied(why)
        else:
            await policy.check_change(user, channel, "abort the canary")
        await self.services.releases.decide(release_id, user, decision)
        await self._audit("Continued" if decision == "continue" else "Stopped", record, user,
                          note="a person decided on a waiting release")

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
            raise CommandError(self.already_text(record))
        now = self.clock()
        if record.expired(now):
            if await self._expire(record.id, now):
                await self._show_expired(record)
            raise CommandError(f"This request expired at {render.when(_parse(record.expires))}: nothing was changed. "
                               "Ask again if it is still wanted.")
        if approve or user != record.requester:
            ok, why = await policy.can_approve(user, record.requester)
            if not ok:
                raise PermissionDenied(why)
        if approve and user in record.approvals:
            raise CommandError(f"You have approved already; it needs {record.needed} different approvers "
                               f"({record.approved_so_far}).")
        token = uuid.uuid4().hex

        def transition(records: dict[str, Record]) -> tuple[Record | None, bool]:
            r = records.get(request_id)
            if r is not None and r.state == QUEUED and not approve:
                pass  # withdrawn (or rejected) while it waited its turn
            elif r is None or r.state != PENDING or r.expired(now):
                return r, False
            if r.ts and r.ts != ts:  # stored meanwhile, and it is another message
                raise PermissionDenied("This click did not come from the request's message: nothing was changed.")
            if approve and user in r.approvals:
                return r, False
            if approve and len(r.approvals) + 1 < r.needed:  # one more of several approvals: still pending
                r.approvals.append(user)
                r.ts, r.token = r.ts or ts, token
                return r, True
            if approve:
                r.approvals.append(user)
            r.state = RUNNING if approve else "rejected"
            r.approver, r.decided, r.token, r.ts = user, _iso(now), token, r.ts or ts
            if not approve:
                r.finished = r.decided
                r.headline = "withdrawn by the requester" if user == r.requester else f"rejected by <@{user}>"
            return r, True

        won = await self.store.transact(transition)
        if won is None or won.token != token:
            latest = won or await self.store.get(request_id)
            if latest is not None and latest.expired(now):
                raise CommandError("This request expired: nothing was changed.")
            raise CommandError(self.already_text(latest) if latest else "This request is not known any more.")
        self._home_changed()
        if approve and won.state == PENDING:  # approved by one of several
            await self._audit("Approved", won, user, note=won.approved_so_far)
            text, blocks = self.approval_view(won)
            await self._edit(won, text, blocks)
            return
        if not approve:
            await self._audit("Rejected", won, user)
            text, blocks = self.approval_view(won)
            await self._edit(won, text, blocks)
            await self.advance(won.key)
            return
        note = f"break-glass: {won.break_glass}" if won.break_glass else ""
        if won.needed > 1:
            note = "; ".join(p for p in (note, f"approved by {', '.join(won.approvals)}") if p)
        await self._audit("Approved", won, user, note=note)
        await self._run(won)

    @staticmethod
    def already_text(record: Record) -> str:
        who = f" by <@{record.approver}>" if record.approver else ""
        states = {RUNNING: f"already approved{who} and running", "succeeded": f"already approved{who} and done",
                  "failed": f"already approved{who}; it failed", "rejected": f"already rejected{who}",
                  "expired": "expired", "cancelled": "cancelled", SUPERSEDED: "superseded"}
        return f"This request was {states.get(record.state, record.state)}: nothing more was changed."

    async def _expire(self, request_id: str, now: datetime) -> bool:
        def expire(records: dict[str, Record]) -> tuple[bool, bool]:
            r = records.get(request_id)
            if r is None or not r.expired(now):
                return False, False
            r.state, r.decided = "expired", _iso(now)
            return True, True

        return await self.store.transact(expire)

    async def sweep(self, now: datetime | None = None) -> int:
        """Mark every pending request past its expiry as expired and edit its message (buttons gone).

        Safe on several replicas at once: the compare-and-swap on the ConfigMap gives each expiry to
        exactly one of them. Returns how many requests this call expired.
        """
        now = now or self.clock()

        def expire(records: dict[str, Record]) -> tuple[list[Record], bool]:
            gone = [r for r in records.values() if r.state == PENDING and r.expired(now)]
            for r in gone:
                r.state, r.decided = "expired", _iso(now)
            return gone, bool(gone)

        expired = await self.store.transact(expire)
        for record in expired:
            await self._show_expired(record)
        for key in {r.key for r in expired}:
            await self.advance(key)
        return len(expired)

    async def start(self, interval: float = 30.0) -> None:
        """Sweep expired requests every ``interval`` seconds in the background."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.sweep()
                    for key in {r.key for r in (await self.store.load()).values() if r.state == QUEUED}:
                        await self.advance(key)
                except Exception:  # the cluster may be away for a while; try again next time
                    log.warning("cannot sweep expired approval requests", exc_info=True)

        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(loop())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _show_superseded(self, record: Record) -> None:
        """Edit a superseded request's message (and stop its release, if it had begun)."""
        await self._audit("Superseded", record, record.requester, note=record.headline)
        engine = self.services.releases
        if engine is not None:
            await engine.supersede(record.id, record.headline)
        text = f"{record.change.label}: {record.change.summary} — {_sentence(record.headline)}"
        await self._edit(record, text, render.text_block(f":arrow_heading_down: *{record.change.label}* "
                                                         f"{render.escape(record.change.summary)}\n"
                                                         f"{_sentence(record.headline)}"))

    async def _show_expired(self, record: Record) -> None:
        record.state = "expired"
        await self._audit("Expired", record, record.requester)
        text, blocks = self.approval_view(record)
        await self._edit(record, text, blocks)

    # ------------------------------------------------------------------ running
    async def _run(self, record: Record) -> None:
        """Hand an approved request to the release engine (the leader replica carries it out)."""
        engine = self.services.releases
        if engine is not None:
            engine.poke()

    async def _forget(self, ids: list[str]) -> None:
        """Finished requests pruned from the state ConfigMap take their release records with them."""
        engine = self.services.releases
        if engine is not None:
            await engine.forget(ids)

    def _home_changed(self) -> None:
        home = self.services.home
        if home is not None:
            home.changed()

    async def finish(self, request_id: str, state: str, headline: str, *, was: str = RUNNING) -> None:
        """The request leaves the state ``was`` (its release ended; or, pending, it could not be posted),
        which frees the one-change-at-a-time lock."""
        now = _iso(self.clock())

        def finish(r: Record) -> None:
            if r.state == was:
                r.state, r.headline, r.finished = state, headline, now

        await self._update(request_id, finish)
        self._home_changed()
        record = await self.store.get(request_id)
        if record is not None:
            await self.advance(record.key)

    async def advance(self, key: tuple[str, str]) -> None:
        """When nothing holds ``key``'s lock, the oldest queued request there becomes pending: its approval
        opens (its message gets the buttons, its expiry starts now); the others' messages show their place.

        Never raises: the cluster away, the queue waits for the next change or the sweeper (every 30 s).
        """
        try:
            await self._advance(key)
        except DependencyUnavailable as exc:
            log.warning("cannot advance the queue of %s: %s", "/".join(k for k in key if k) or "the service", exc)

    async def _advance(self, key: tuple[str, str]) -> None:
        now = self.clock()
        ttl = timedelta(seconds=self.config.approval_ttl_seconds)

        def promote(records: dict[str, Record]) -> tuple[Record | None, bool]:
            if self.active(records, now, key=key) is not None:
                return None, False
            waiting = sorted((r for r in records.values() if r.state == QUEUED and r.key == key),
                             key=lambda r: r.created)
            if not waiting:
                return None, False
            head = waiting[0]
            head.state, head.expires = PENDING, _iso(now + ttl)
            return head, True

        head = await self.store.transact(promote)
        if head is None:
            return
        await self._audit("Dequeued", head, head.requester, note="its turn: the approval is open")
        text, blocks = self.approval_view(head)
        await self._edit(head, text, blocks)
        records = await self.store.load()  # once, for every place in line
        for r in records.values():
            if r.state == QUEUED and r.key == key:
                text, blocks = self.approval_view(r, place=self._place(records, r))
                await self._edit(r, text, blocks)
        self._home_changed()

    def _place(self, records: dict[str, Record], record: Record) -> str:
        """"2nd in line, behind Deploy greeter (production): v1 → v2" for a queued request (pure)."""
        now = self.clock()
        ahead = [r for r in records.values()
                 if r.state == QUEUED and r.key == record.key and r.created < record.created]
        holder = self.active(records, now, key=record.key)
        behind = f", behind {holder.what()}" if holder is not None else ""
        return f"{_ordinal(len(ahead) + 1)} in line{behind}"

    async def _update(self, request_id: str, change: Callable[[Record], Any]) -> None:
        def apply(records: dict[str, Record]) -> tuple[None, bool]:
            r = records.get(request_id)
            if r is None:
                return None, False
            change(r)
            return None, True

        await self.store.transact(apply)

    # ------------------------------------------------------------------ messages
    async def _edit(self, record: Record, text: str, blocks: list[dict]) -> None:
        if not record.ts:
            return
        try:
            await self.services.messenger.update(record.channel, record.ts, text, blocks)
        except SlackError as exc:
            log.warning("cannot edit request message %s: %s", record.ts, exc)

    def approval_view(self, record: Record, *, place: str = "") -> tuple[str, list[dict]]:
        state_line = {
            QUEUED: f":hourglass: Queued, {place or 'waiting for the change before it'}: its approval opens when "
                    "that one ends",
            PENDING: f"Waiting for approval until {render.when(_parse(record.expires), '%H:%M UTC')}"
                     + (f" · {record.approved_so_far}" if record.approved_so_far else ""),
            "rejected": f":no_entry: {_sentence(record.headline) or 'Rejected'}: nothing was changed",
            "expired": f":hourglass: Expired at {render.when(_parse(record.expires), '%H:%M UTC')}: "
                       "nothing was changed",
            "cancelled": f":x: Cancelled: {record.headline}",
        }.get(record.state, record.state)
        reason = shown_reason(record.change.reason)
        text = (f"{record.change.label} requested by <@{record.requester}>: {render.escape(record.change.summary)}"
                + (f" — reason: “{reason}”" if reason else "") + f" — {state_line}")
        plan = [step.title for step in steps_for(record.change.action, record.change.params,
                                                 self.config_of(record.change))]
        blocks = render.blocks("approval", record=record, change=record.change, state_line=state_line,
                               pending=record.state == PENDING, queued=record.state == QUEUED, plan=plan,
                               reason=reason,
                               break_glass=record.break_glass)
        return text, blocks

    def progress_view(self, release: Release, status: RolloutStatus | None, *, outcome: Outcome | None = None,
                      problem: str = "") -> tuple[str, list[dict]]:
        """The release's one message: who, the steps begun so far, the rollout, the outcome."""
        if (release.approver and release.approver != release.requester) or self._needs_approval(release):
            who = f"Requested by <@{release.requester}>, approved by <@{release.approver}>"
        else:
            who = f"Run by <@{release.requester}> (no approval needed)"
        steps = []
        waiting = None
        for step in (s for s in release.steps if s.state != StepState.WAITING):
            steps.append(_step_line(step))
            if step.waiting and step.state == StepState.RUNNING:
                waiting = step
                steps.append(f":raising_hand: {render.escape(step.waiting)}")
        buttons = []
        if outcome is not None:
            buttons = [{**BUTTONS[b], "value": release.id} for b in outcome.buttons if b in BUTTONS]
        elif waiting is not None:
            buttons = [{**BUTTONS[b], "value": release.id} for b in ("continue", "stop")]
        started = _parse(release.created) if release.created else self.clock()
        end = _parse(release.finished) if outcome is not None and release.finished else self.clock()
        elapsed = render.duration(max(0.0, (end - started).total_seconds()))
        if outcome is None:
            headline = "Running…"
        else:
            headline = (":white_check_mark: " if outcome.ok else ":x: ") + render.escape(outcome.headline)
        reason = shown_reason(release.reason)
        text = f"{release.label}: {render.escape(release.summary)} — {headline}" + (f" (reason: “{reason}”)"
                                                                                   if reason else "")
        if problem and outcome is None:
            steps.append(f":warning: {render.escape(problem)}")
        blocks = render.blocks("progress", record=release, change=release, who=who, steps=steps,
                               status=status, elapsed=elapsed,
                               outcome=outcome, headline=headline, buttons=buttons, final=outcome is not None,
                               reason=reason)
        return text, blocks

    def _needs_approval(self, release: Release) -> bool:
        return not (release.action == "abort" and not self.config.abort_needs_approval)

    async def audit_outcome(self, record: Record, outcome: Outcome) -> None:
        await self._audit("Succeeded" if outcome.ok else "Failed", record, record.approver,
                          note=outcome.headline, facts=outcome.facts)

    # ------------------------------------------------------------------ audit
    async def _audit(self, phase: str, record: Record, user: str, *, note: str = "",
                     facts: dict[str, Any] | None = None) -> None:
        audit = self.services.audit
        if audit is None:
            return
        try:
            await audit.record(phase, record, user=user, note=note, facts=facts or {})
        except Exception:  # the audit trail must never break a release
            log.exception("audit record %s of %s failed", phase, record.id)


def shown_reason(reason: str) -> str:
    """A change's reason as a message shows it: on one line, cut, escaped for mrkdwn (it is the requester's text)."""
    return foreign(reason, REASON_SHOWN) if reason else ""


def _step_line(step: Step) -> str:
    """One begun step in the release's message: its mark and title, and what an analysis or bake shows."""
    mark = {StepState.DONE: ":white_check_mark:", StepState.FAILED: ":x:"}.get(step.state, ":hourglass_flowing_sand:")
    line = f"{mark} {render.escape(step.title)}"
    running = step.state == StepState.RUNNING
    if step.kind == StepKind.ANALYSE and running:
        if step.verdict:
            line += f" — last check: {render.escape(step.verdict)}"
        if step.next_check and not step.waiting:
            line += f" · next check at {render.when(_parse(step.next_check), '%H:%M:%S UTC')}"
    elif step.kind == StepKind.BAKE and running and step.next_check:
        line += f" — until {render.when(_parse(step.next_check), '%H:%M:%S UTC')}"
    elif step.kind in (StepKind.ANALYSE, StepKind.BAKE) and step.note:
        line += f" — {render.escape(step.note)}"
    if step.decided_by and _SLACK_USER.fullmatch(step.decided_by):
        line += f" · decided by <@{step.decided_by}>"
    return line


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
