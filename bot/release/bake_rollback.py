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
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from bot.core.errors import DependencyUnavailable
from bot.core.times import iso
from bot.release import steps as step_runner
from bot.release.actions import plan_rollback
from bot.release.approvals import named, request_record
from bot.release.lifecycle import Event
from bot.release.plan import Outcome, Step, StepState

if TYPE_CHECKING:
    from bot.release.driver import Driver
    from bot.release.record import Record

log = logging.getLogger(__name__)

BOT = "hello-chatops"  # the requester of the bot's own rollbacks when Slack cannot say who the bot is
FINAL_EDIT_WAIT = 60.0  # seconds the superseded release's last edit is waited for (the leader sends it later)


def reason_for(alertname: str) -> str:
    """The rollback's reason, as its message, `/hello release`, `/hello history` and the audit trail show it."""
    return f"critical alert {alertname[:120]} in the bake window"


async def bot_user(driver: Driver) -> str:
    """The bot's own Slack user id (``auth.test``), so its messages name it like a person; else :data:`BOT`."""
    try:
        who = await driver.engine.services.messenger.auth_test()
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
    requester = await bot_user(driver)
    rollback = request_record(change, requester, release.channel, driver.config, engine.clock())
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
    await submit(driver, rollback)
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
    except Exception:
        log.exception("release %s: the bake window's rollback %s could not be made", driver.release.id, rollback.id)

