"""Approval requests: every change is asked for, approved by someone else, then run exactly once.

A mutating command becomes a request: the change is planned from the cluster's current state (from
-> to), stored, and posted in the channel with Approve / Reject buttons. Requests live in the
cluster, in the ConfigMap named by ``HELLO_STATE_CONFIGMAP`` (one key ``request.<id>`` per request,
JSON), so they survive a restart and every bot replica sees the same ones. Every write is a
read-modify-PUT guarded by the ConfigMap's resourceVersion; a 409 Conflict means someone else wrote
first, so the state is read again and the decision made again on it. The transition
``pending -> running`` is that compare-and-swap: of any number of simultaneous Approve clicks, on
any number of replicas, exactly one wins and runs the change.

One change at a time per service: a new request is refused while another one is waiting for
approval (until it is approved, rejected or expires) or running; the refusal names it. The lock is
the stored requests themselves, so it holds across replicas. A running request whose replica died
stops holding the lock after the rollout and certificate time limits have passed.

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
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot import actions, render
from bot.actions import Change, Outcome, retry
from bot.errors import ClusterError, CommandError, Conflict, PermissionDenied
from bot.kube import Cluster
from bot.messenger import SlackError
from bot.rollout import MessageEditor, RolloutStatus
from bot.text import foreign

if TYPE_CHECKING:
    from bot.config import Config
    from bot.services import Services
    from commands import Invocation

log = logging.getLogger(__name__)

T = TypeVar("T")
PREFIX = "request."
KEEP_FINISHED = 50
PENDING, RUNNING = "pending", "running"
FINISHED = ("succeeded", "failed", "rejected", "expired", "cancelled")
# Buttons under a finished change: they start a new request (or run abort at once, per the policy).
FOLLOW_UPS = {"release_rollback": "rollback", "release_promote": "promote", "release_abort": "abort"}
BUTTONS = {
    "rollback": {"action_id": "release_rollback", "text": "Roll back", "style": "danger"},
    "promote": {"action_id": "release_promote", "text": "Promote", "style": "primary"},
    "abort": {"action_id": "release_abort", "text": "Abort canary", "style": "danger"},
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        data["change"] = Change(**data["change"])
        return cls(**data)

    def expired(self, now: datetime) -> bool:
        return self.state == PENDING and now >= _parse(self.expires)

    def what(self) -> str:
        return f"*{self.change.label}* {render.escape(self.change.summary)}"


class RequestStore:
    """The requests in the state ConfigMap, changed only through :meth:`transact`."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], name: str) -> None:
        self._cluster = cluster
        self.name = name

    async def load(self) -> dict[str, Record]:
        cluster = await self._cluster()
        cm = await retry(cluster.get_configmap, self.name)
        return self._records(cm)

    @staticmethod
    def _records(cm: dict | None) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for key, value in ((cm or {}).get("data") or {}).items():
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

    async def transact(self, decide: Callable[[dict[str, Record]], tuple[T, bool]], attempts: int = 40) -> T:
        """Read, let ``decide`` change the records (it returns (result, changed)), PUT; redo on a conflict.

        ``decide`` may raise (e.g. :class:`CommandError`) to give up without writing.
        """
        cluster = await self._cluster()
        failures = 0
        for _ in range(attempts):
            cm = await retry(cluster.get_configmap, self.name)
            records = self._records(cm)
            result, changed = decide(records)
            if not changed:
                return result
            data = {k: v for k, v in ((cm or {}).get("data") or {}).items() if not k.startswith(PREFIX)}
            data.update({PREFIX + r.id: r.to_json() for r in _pruned(records)})
            try:
                if cm is None:
                    await cluster.create_configmap(self.name, data)
                else:
                    await cluster.replace_configmap({**cm, "data": data})
                return result
            except Conflict:
                await asyncio.sleep(actions.jitter())
            except ClusterError as exc:
                if not actions.transient(exc) or failures >= actions.RETRY_ATTEMPTS:
                    raise
                failures += 1
                await asyncio.sleep(0.05 * 2 ** failures)
        raise ClusterError(f"configmaps/{self.name} kept changing: gave up after {attempts} attempts", 409)


def _pruned(records: dict[str, Record]) -> list[Record]:
    finished = sorted((r for r in records.values() if r.state in FINISHED), key=lambda r: r.created)
    drop = {r.id for r in finished[:-KEEP_FINISHED]} if len(finished) > KEEP_FINISHED else set()
    return [r for r in records.values() if r.id not in drop]


class Run:
    """A change being carried out: the :class:`bot.actions.Job` its steps report to."""

    def __init__(self, approvals: Approvals, record: Record, cluster: Cluster, editor: MessageEditor | None) -> None:
        self.approvals = approvals
        self.record = record
        self.cluster = cluster
        self.config = approvals.config
        self.params = record.change.params
        self.steps: list[str] = []
        self.status: RolloutStatus | None = None
        self.editor = editor
        self.started = time.monotonic()

    async def step(self, text: str) -> None:
        self.steps.append(text)
        await self._show()

    async def watching(self, status: RolloutStatus) -> None:
        self.status = status
        await self._show()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def _show(self) -> None:
        if self.editor is not None:
            text, blocks = self.approvals.progress_view(self.record, self, None)
            await self.editor.show(text, blocks)


class Approvals:
    """Requests, decisions and runs. ``clock`` returns the current time (injected in tests)."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] | None = None,
                 edit_interval: float = 0.5) -> None:
        self.services = services
        self.clock = clock or (lambda: datetime.now(UTC))
        self.edit_interval = edit_interval
        self.store = RequestStore(services.cluster, services.config.state_configmap)
        self._sweeper: asyncio.Future | None = None

    @property
    def config(self) -> Config:
        return self.services.config

    # ------------------------------------------------------------------ asking
    async def propose(self, plan: Callable[[Cluster], Awaitable[Change]], invocation: Invocation) -> None:
        """Plan a change from the cluster's state and post it for approval (or run it, if none is needed)."""
        cluster = await self.services.cluster()
        change = await plan(cluster)
        now = self.clock()
        record = Record(
            id=uuid.uuid4().hex[:10], change=change, requester=invocation.user_id, channel=invocation.channel_id,
            created=_iso(now), expires=_iso(now + timedelta(seconds=self.config.approval_ttl_seconds)),
            state=PENDING if change.needs_approval else RUNNING,
        )
        if record.state == RUNNING:
            record.approver, record.decided, record.token = invocation.user_id, record.created, uuid.uuid4().hex

        def admit(records: dict[str, Record]) -> tuple[list[Record], bool]:
            expired = [r for r in records.values() if r.expired(now)]
            for r in expired:
                r.state, r.decided = "expired", _iso(now)
            busy = self.active(records, now)
            if busy is not None:
                raise CommandError(self.busy_text(busy))
            records[record.id] = record
            return expired, True

        expired = await self.store.transact(admit)
        for old in expired:
            await self._show_expired(old)
        await self._audit("Requested", record, invocation.user_id)
        try:
            if record.state == PENDING:
                text, blocks = self.approval_view(record)
            else:
                text, blocks = self.progress_view(record, None, None)
            record.ts = await self.services.messenger.post(record.channel, text, blocks)
        except SlackError as exc:
            error = foreign(exc.error, 80)
            await self._finish(record, "cancelled", f"the request could not be posted ({error})")
            raise CommandError(f"I could not post the request in this channel ({error}); nothing was changed."
                               ) from None
        await self._update(record.id, lambda r: setattr(r, "ts", record.ts))
        if record.state == RUNNING:
            await self._audit("Approved", record, invocation.user_id, note="no approval needed")
            await self._run(record)

    def active(self, records: dict[str, Record], now: datetime) -> Record | None:
        """The request holding the lock: pending and not expired, or running and not stale."""
        stale = timedelta(seconds=2 * self.config.rollout_timeout_seconds + self.config.cert_timeout_seconds + 60)
        for r in sorted(records.values(), key=lambda r: r.created):
            if r.state == PENDING and not r.expired(now):
                return r
            if r.state == RUNNING and now - _parse(r.decided or r.created) < stale:
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
        if action_id in ("approve", "reject"):
            await self.decide(value, user, approve=action_id == "approve", channel=channel,
                              ts=str(container.get("message_ts") or ""))
        elif action_id in FOLLOW_UPS:
            await self.follow_up(FOLLOW_UPS[action_id], user, channel)
        else:
            raise CommandError("This button is not handled by this bot.")

    async def follow_up(self, kind: str, user: str, channel: str) -> None:
        from commands import Invocation

        await self.services.policy.check_change(user, channel, f"ask for a {kind}")
        cfg = self.config
        plans = {"rollback": lambda c: actions.plan_rollback(c, cfg),
                 "promote": lambda c: actions.plan_promote(c, cfg),
                 "abort": lambda c: actions.plan_abort(c, cfg)}
        await self.propose(plans[kind], Invocation(user_id=user, channel_id=channel, text=f"canary {kind}"
                                                   if kind != "rollback" else "rollback"))

    async def decide(self, request_id: str, user: str, *, approve: bool, channel: str, ts: str) -> None:
        """Approve or reject a pending request from a click on its message (``channel``, ``ts``).

        A button's value is only the request's id, which any message could carry: the click must come
        from the request's own message (its channel always; its ts once stored — right after posting
        the ts may not be stored yet, then the clicked one is taken) and from a channel where changes
        may be made. Anything else changes nothing and the clicker is told why.
        """
        self.services.policy.check_channel(channel, "decided")
        record = await self.store.get(request_id)
        if record is None:
            raise CommandError("This request is not known any more: nothing was changed.")
        if channel != record.channel or not ts or (record.ts and ts != record.ts):
            raise PermissionDenied(f"This click did not come from the message of request `{record.id}`: approve or "
                                   f"reject it with the buttons on that message in <#{record.channel}>. "
                                   "Nothing was changed.")
        record.ts = record.ts or ts
        if record.state != PENDING:
            raise CommandError(self.already_text(record))
        now = self.clock()
        if record.expired(now):
            if await self._expire(record.id, now):
                await self._show_expired(record)
            raise CommandError(f"This request expired at {render.when(_parse(record.expires))}: nothing was changed. "
                               "Ask again if it is still wanted.")
        if approve or user != record.requester:
            ok, why = await self.services.policy.can_approve(user, record.requester)
            if not ok:
                raise PermissionDenied(why)
        token = uuid.uuid4().hex

        def transition(records: dict[str, Record]) -> tuple[Record | None, bool]:
            r = records.get(request_id)
            if r is None or r.state != PENDING or r.expired(now):
                return r, False
            if r.ts and r.ts != ts:  # stored meanwhile, and it is another message
                raise PermissionDenied("This click did not come from the request's message: nothing was changed.")
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
        if not approve:
            await self._audit("Rejected", won, user)
            text, blocks = self.approval_view(won)
            await self._edit(won, text, blocks)
            return
        await self._audit("Approved", won, user)
        await self._run(won)

    @staticmethod
    def already_text(record: Record) -> str:
        who = f" by <@{record.approver}>" if record.approver else ""
        states = {RUNNING: f"already approved{who} and running", "succeeded": f"already approved{who} and done",
                  "failed": f"already approved{who}; it failed", "rejected": f"already rejected{who}",
                  "expired": "expired", "cancelled": "cancelled"}
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
        return len(expired)

    async def start(self, interval: float = 30.0) -> None:
        """Sweep expired requests every ``interval`` seconds in the background."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.sweep()
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

    async def _show_expired(self, record: Record) -> None:
        record.state = "expired"
        await self._audit("Expired", record, record.requester)
        text, blocks = self.approval_view(record)
        await self._edit(record, text, blocks)

    # ------------------------------------------------------------------ running
    async def _run(self, record: Record) -> None:
        cluster = await self.services.cluster()
        editor = None
        if record.ts:
            editor = MessageEditor(self.services.messenger, record.channel, record.ts, interval=self.edit_interval)
        run = Run(self, record, cluster, editor)
        try:
            outcome = await actions.RUNS[record.change.action](run)
        except ClusterError as exc:
            done = f" Steps begun: {'; '.join(run.steps)}." if run.steps else ""
            outcome = Outcome(False, f"Stopped: {exc}.{done}",
                              details=["Check the state with `/hello status` before trying again."],
                              buttons=_fallback_buttons(record.change.action))
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("change %s failed (reference %s)", record.id, ref)
            outcome = Outcome(False, f"Stopped by an error on my side (reference {ref}).",
                              details=[f"Steps begun: {'; '.join(run.steps) or 'none'}."],
                              buttons=_fallback_buttons(record.change.action))
        record.state = "succeeded" if outcome.ok else "failed"
        record.headline = outcome.headline
        try:
            await self._finish(record, record.state, outcome.headline)
        except ClusterError as exc:
            log.error("cannot record the outcome of request %s: %s", record.id, exc)
        text, blocks = self.progress_view(record, run, outcome)
        if editor is not None:
            await editor.final(text, blocks)
        await self._audit("Succeeded" if outcome.ok else "Failed", record, record.approver,
                          note=outcome.headline, facts=outcome.facts)

    async def _finish(self, record: Record, state: str, headline: str) -> None:
        now = _iso(self.clock())

        def finish(r: Record) -> None:
            r.state, r.headline, r.finished = state, headline, now

        record.state, record.headline, record.finished = state, headline, now
        await self._update(record.id, finish)

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

    def approval_view(self, record: Record) -> tuple[str, list[dict]]:
        state_line = {
            PENDING: f"Waiting for approval until {render.when(_parse(record.expires), '%H:%M UTC')}",
            "rejected": f":no_entry: {_sentence(record.headline) or 'Rejected'}: nothing was changed",
            "expired": f":hourglass: Expired at {render.when(_parse(record.expires), '%H:%M UTC')}: "
                       "nothing was changed",
            "cancelled": f":x: Cancelled: {record.headline}",
        }.get(record.state, record.state)
        text = (f"{record.change.label} requested by <@{record.requester}>: {render.escape(record.change.summary)}"
                f" — {state_line}")
        blocks = render.blocks("approval", record=record, change=record.change, state_line=state_line,
                               pending=record.state == PENDING)
        return text, blocks

    def progress_view(self, record: Record, run: Run | None, outcome: Outcome | None) -> tuple[str, list[dict]]:
        if record.change.needs_approval:
            who = f"Requested by <@{record.requester}>, approved by <@{record.approver}>"
        else:
            who = f"Run by <@{record.requester}> (no approval needed)"
        steps = []
        for index, step in enumerate(run.steps if run else []):
            last = index == len(run.steps) - 1 if run else True
            mark = ":white_check_mark:"
            if last and outcome is None:
                mark = ":hourglass_flowing_sand:"
            elif last and not outcome.ok:  # type: ignore[union-attr]
                mark = ":x:"
            steps.append(f"{mark} {render.escape(step)}")
        status = run.status if run else None
        buttons = []
        if outcome is not None:
            buttons = [{**BUTTONS[b], "value": record.id} for b in outcome.buttons if b in BUTTONS]
        elapsed = render.duration(run.elapsed()) if run else "0s"
        if outcome is None:
            headline = "Running…"
        else:
            headline = (":white_check_mark: " if outcome.ok else ":x: ") + render.escape(outcome.headline)
        text = f"{record.change.label}: {render.escape(record.change.summary)} — {headline}"
        blocks = render.blocks("progress", record=record, change=record.change, who=who, steps=steps,
                               status=status, elapsed=elapsed, outcome=outcome, headline=headline,
                               buttons=buttons, final=outcome is not None)
        return text, blocks

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


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fallback_buttons(action: str) -> tuple[str, ...]:
    return {"deploy": ("rollback",), "rollback": ("rollback",), "promote": ("rollback", "abort"),
            "canary": ("abort",), "shift": ("abort",), "abort": ("abort",)}.get(action, ())

