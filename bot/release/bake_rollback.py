"""The bake window's rollback, a release of its own.

When a critical alert fires in a release's bake window (:func:`bot.release.driven.bake`), the bot asks for a
rollback itself: a new record (:class:`bot.release.record.Record`) requested by the bot's own Slack user
(:data:`BOT` when Slack cannot say which that is), with the reason "critical alert <alertname> in the bake
window" and no approval needed. It takes the lock of the service and environment from the baking release by
superseding it: the baking release's record ends ``superseded`` (its outcome names the rollback), in one
compare-and-swap that succeeds only while it is running and driven by this replica, so of two replicas that
see the same alert exactly one makes a rollback (the other's write finds it superseded, or driven by the
other, and stops: :class:`bot.release.driver.Lost`). Then the rollback is admitted like any request
(:meth:`bot.release.approvals.Approvals.submit`): its record, the lock, its ``Requested`` and ``Approved``
audit records, its own message in the channel, and the engine carries it out like any release.

A replica that dies between the two (or whose admission fails) leaves the baking release superseded by a
rollback whose record does not exist, or was stored and never admitted (:func:`never_admitted`; such a record
is deleted and made again whole): the leader's repair (:meth:`bot.release.engine.Engine.repair`, every
30 s) makes it (:func:`recover`), with the id the superseded release names, so of two replicas that both
repair, one stores it (the other's create finds it there) and one rollback runs. It is made only while nothing
of that service and environment has run since, within :data:`RECOVER_WITHIN`, and only to the version the
superseded release names.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.core.errors import Conflict, DependencyUnavailable
from bot.core.target import Target
from bot.core.times import iso
from bot.release import steps as step_runner
from bot.release.actions import plan_rollback
from bot.release.admission import NEVER_ADMITTED, UNPOSTED_GRACE
from bot.release.lifecycle import Event, State
from bot.release.plan import Outcome, Step, StepState
from bot.release.record import at, named, request_record

if TYPE_CHECKING:
    from bot.release.driver import Driver
    from bot.release.engine import Engine
    from bot.release.record import Record

log = logging.getLogger(__name__)

BOT = "hello-chatops"  # the requester of the bot's own rollbacks when Slack cannot say who the bot is
FINAL_EDIT_WAIT = 60.0  # seconds the superseded release's last edit is waited for (the leader sends it later)
RECOVER_WITHIN = timedelta(hours=1)  # a rollback lost longer ago than this is not made any more


def reason_for(alertname: str) -> str:
    """The rollback's reason, as its message, `/hello release`, `/hello history` and the audit trail show it."""
    return f"critical alert {alertname[:120]} in the bake window"


async def bot_user(engine: Engine) -> str:
    """The bot's own Slack user id (``auth.test``), so its messages name it like a person; else :data:`BOT`."""
    try:
        who = await engine.services.messenger.auth_test()
    except Exception as exc:  # Slack away, or an error of its own: the marker says who asked all the same
        log.info("cannot ask Slack who the bot is (%s): the rollback is requested by %s", exc, BOT)
        return BOT
    return str(who.get("user_id") or BOT)


async def roll_back(driver: Driver, step: Step, cluster: Any, alert: Any, what: str, details: list[str]
                    ) -> step_runner.StepResult:
    """Supersede the baking release by a rollback release of its own (see the module); returns the bake step's
    result. Raises :class:`bot.release.driver.Lost` when another replica's driver superseded it first."""
    release, engine = driver.release, driver.engine
    approvals = engine.approvals
    change = named(await plan_rollback(cluster, driver.config, reason=reason_for(alert.name)), driver.target)
    change.needs_approval = False
    rollback = request_record(change, await bot_user(engine), release.channel, driver.config, engine.clock())
    requester = rollback.requester
    headline = (f"Superseded by rollback `{rollback.id}` to `{change.params.version}`, requested by the bot: "
                f"{what}")
    facts = {"alert": alert.name, "rolled_back": True, "rollback": rollback.id, "to": change.params.version}
    step.state, step.finished, step.note = StepState.FAILED, iso(engine.clock()), headline
    step.details, step.facts = list(details), dict(facts)
    release.outcome = Outcome(False, headline, details=list(details), facts=facts)
    await driver.save(end=Event.SUPERSEDE)  # the compare-and-swap that decides: raises Lost for the loser
    await approvals.audit("Superseded", release, requester, note=headline, facts=facts)
    if driver.editor is not None:
        await driver.editor.final(*approvals.progress_view(release, driver.status, outcome=release.outcome))
    await submit(driver, rollback)  # a replica that dies before this: recover() makes it
    engine.background.spawn(shown(driver), f"the last edit of {release.id}")
    return step_runner.StepResult(False, headline, details=details, facts=facts)


async def shown(driver: Driver) -> None:
    """Once Slack took the superseded release's last edit, its record says so (else the leader sends it again)."""
    editor = driver.editor
    if editor is not None and await editor.sent(FINAL_EDIT_WAIT) and editor.final_taken:
        with contextlib.suppress(DependencyUnavailable):
            await driver.engine.records.mark_shown(driver.release.id)


async def submit(driver: Driver, rollback: Record) -> None:
    """Admit the rollback (the lock is free: its holder was just superseded), post it and start it; a failure is
    logged and said, never raised (the baking release has ended already)."""
    approvals = driver.engine.approvals
    try:
        await approvals.submit(rollback, driver.target, queue=False, note=f"no approval needed: {rollback.reason}")
    except Conflict:  # the leader's repair found it missing meanwhile and made it
        log.info("release %s: the bake window's rollback %s is made elsewhere", driver.release.id, rollback.id)
    except Exception:
        log.exception("release %s: the bake window's rollback %s could not be made", driver.release.id, rollback.id)


def never_admitted(record: Record, now: Any) -> bool:
    """A rollback stored by a replica that died before admitting it: queued without a message ``UNPOSTED_GRACE``
    seconds after it was stored (a rollback never waits in a queue), or cancelled by the sweeper for it."""
    if record.state == State.CANCELLED:
        return record.headline == NEVER_ADMITTED
    return record.state == State.QUEUED and not record.ts and (
        now - at(record.created) >= timedelta(seconds=UNPOSTED_GRACE))


def lost(record: Record, records: dict[str, Record], now: Any) -> str:
    """The id of the rollback that superseded ``record`` when its record does not exist, or was never admitted, and
    it is still wanted (nothing of the same service and environment began since, and not longer ago than
    :data:`RECOVER_WITHIN`); else ""."""
    facts = record.outcome.facts if record.outcome is not None else {}
    rid = str(facts.get("rollback") or "")
    if record.state != State.SUPERSEDED or not rid or not facts.get("to"):
        return ""
    if rid in records and not never_admitted(records[rid], now):
        return ""
    ended = at(record.finished)
    if now - ended > RECOVER_WITHIN:
        return ""
    later = [r for r in records.values() if r.key == record.key and r.id != record.id and r.began
             and at(r.began) >= ended]
    return "" if later else rid


async def recover(engine: Engine, records: dict[str, Record]) -> int:
    """Make every rollback that superseded a release and was never admitted (:func:`lost`): planned again from the
    cluster, with the id and to the version the superseded release names. Returns how many this call made."""
    made = 0
    for record in list(records.values()):
        rid = lost(record, records, engine.clock())
        if rid:
            try:
                made += await _remake(engine, record, rid)
            except Exception:  # the next repair tries again
                log.exception("release %s: its rollback %s cannot be made now", record.id, rid)
    return made


async def _remake(engine: Engine, superseded: Record, rid: str) -> bool:
    assert superseded.outcome is not None
    facts = superseded.outcome.facts
    target: Target = engine.services.target(superseded.service, superseded.environment)
    reason = reason_for(str(facts.get("alert") or "unknown"))
    change = named(await plan_rollback(await target.cluster(), target.config, reason=reason), target)
    if change.params.version != facts.get("to"):
        log.warning("release %s: its rollback %s would go to %s now, not %s: not made", superseded.id, rid,
                    change.params.version, facts.get("to"))
        return False
    change.needs_approval = False
    rollback = request_record(change, await bot_user(engine), superseded.channel, target.config, engine.clock())
    rollback.id = rid
    # a stray record is deleted (only as read: another replica may have made the rollback again meanwhile), so
    # that the rollback is made again whole: stored, admitted, posted
    if not await engine.approvals.store.delete(rid, only_if=lambda r: never_admitted(r, engine.clock())):
        return False
    try:
        await engine.approvals.submit(rollback, target, queue=False, note=f"no approval needed: {reason}")
    except Conflict:
        log.info("release %s: its rollback %s is made by another replica", superseded.id, rid)
        return False
    log.info("release %s: its rollback %s was never admitted: made now", superseded.id, rid)
    return True

