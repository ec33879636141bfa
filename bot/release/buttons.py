"""The buttons of requests, releases and alert cards: each action id has its handler.

Approve and Reject decide a request (:meth:`bot.release.approvals.Approvals.decide`); the buttons under a
finished change (Roll back, Promote, Abort canary) and an alert card's Roll back / Abort start a new
request by the same path as typing the command; Continue and Abort on a waiting release record a
person's decision; Silence and Acknowledge are the alert card's own.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.chat.contract import Context, Invocation
from bot.core.errors import CommandError, PermissionDenied
from bot.release.lifecycle import RUNNING
from bot.release.messages import BUTTONS

if TYPE_CHECKING:
    from bot.release.approvals import Approvals

_REQUEST_ID = re.compile(r"[0-9a-f]{6,32}", re.ASCII)
# Buttons under a finished change: they start a new request (or run abort at once, per the policy).
FOLLOW_UPS = {"release_rollback": "rollback", "release_promote": "promote", "release_abort": "abort"}
# Buttons on an alert card: Roll back and Abort canary are follow-ups too; the others are the card's own.
ALERT_ACTIONS = {"alert_rollback": "rollback", "alert_abort": "abort", "alert_silence": "", "alert_ack": ""}
FOLLOW_UP_TEXT = {"rollback": "rollback", "promote": "canary promote", "abort": "canary abort"}  # as typed


@dataclass(frozen=True)
class Click:
    """One button click, as the handlers need it."""

    action_id: str
    value: str
    user: str
    channel: str
    ts: str  # the message clicked (its ts; "" from a view)
    from_home: bool  # the user's own Home tab


def click_from(body: dict, action: dict) -> Click:
    container = body.get("container") or {}
    return Click(action_id=str(action.get("action_id", "")), value=str(action.get("value", "")),
                 user=str((body.get("user") or {}).get("id", "")),
                 channel=str((body.get("channel") or {}).get("id") or container.get("channel_id", "")),
                 ts=str(container.get("message_ts") or ""),
                 from_home=container.get("type") == "view" and (body.get("view") or {}).get("type") == "home")


class Buttons:
    """The handlers by action id. Each raises :class:`CommandError` to answer the clicker privately."""

    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals
        self.handlers: dict[str, Callable[[Click], Awaitable[None]]] = {
            "approve": self._approve, "reject": self._reject,
            **dict.fromkeys(FOLLOW_UPS, self._follow_up),
            "analysis_continue": self._continue, "analysis_abort": self._stop,
            **dict.fromkeys(ALERT_ACTIONS, self._alert),
        }

    async def handle(self, body: dict, action: dict, respond: Callable[..., Awaitable[Any]]) -> None:
        click = click_from(body, action)
        handler = self.handlers.get(click.action_id)
        if handler is None:
            raise CommandError("This button is not handled by this bot.")
        await handler(click)

    async def _approve(self, click: Click) -> None:
        await self.approvals.decide(click.value, click.user, approve=True, channel=click.channel, ts=click.ts,
                                    from_home=click.from_home)

    async def _reject(self, click: Click) -> None:
        await self.approvals.decide(click.value, click.user, approve=False, channel=click.channel, ts=click.ts,
                                    from_home=click.from_home)

    async def _follow_up(self, click: Click) -> None:
        await self.follow_up(FOLLOW_UPS[click.action_id], click.user, click.channel, click.value)

    async def _continue(self, click: Click) -> None:
        await self.decide_step(click.value, click.user, click.channel, "continue")

    async def _stop(self, click: Click) -> None:
        await self.decide_step(click.value, click.user, click.channel, "abort")

    async def _alert(self, click: Click) -> None:
        """A button on an alert card (:mod:`bot.observe.alerts`): Roll back and Abort canary take the same
        path as typing the command; Silence 1h and Acknowledge are the card's own business."""
        alerts = self.approvals.alerts
        group, user, channel, ts = click.value, click.user, click.channel, click.ts
        if click.action_id == "alert_silence":
            await alerts.silence(group, user, channel, ts)
            return
        if click.action_id == "alert_ack":
            await alerts.acknowledge(group, user, channel, ts)
            return
        place = (await alerts.from_card(group, channel, ts)).place
        kind = ALERT_ACTIONS[click.action_id]
        if place is None:  # one service: the command as typed in the channel
            await self.follow_up(kind, user, channel)
            return
        if place.ambiguous:
            raise CommandError("This alert fits several services or environments, so the card cannot tell which "
                               "to change: type the command naming them (`/hello rollback <service> "
                               "<environment>`). Nothing was changed.")
        await self.follow_up(kind, user, channel, service=place.service, environment=place.environment)

    async def follow_up(self, kind: str, user: str, channel: str, release_id: str = "", *,
                        service: str | None = None, environment: str | None = None) -> None:
        """A button under a finished change: the same path as typing the command (parse, policy, plan, approval).

        Nobody typed a reason: the button gives one, naming itself and the request it sits under
        ("from the Roll back button under request 3f9c2a1b7e"), so it works with HELLO_REQUIRE_REASON too.
        The change is for the service and environment of that request; ``service`` / ``environment`` name
        them instead (an alert card's buttons act on the pair of the card's alert group).
        """
        services = self.approvals.commands()
        text = FOLLOW_UP_TEXT[kind]
        name, *words = text.split()
        command = services.registry.get(name)
        if command is None:
            raise CommandError(f"`/hello {name}` is not available in this bot.")
        under = f" under request {release_id}" if _REQUEST_ID.fullmatch(release_id) else ""
        reason = f"from the {BUTTONS[kind]['text']} button{under}"
        if service is None:  # the pair of the request the button sits under (none: the default)
            under_record = await self.approvals.store.get(release_id) if under else None
            service, environment = under_record.key if under_record is not None else ("", "")
        target = services.target(service, environment or "")
        request = command.parse([*words, reason], target.config)
        await target.policy.check_change(user, channel, f"ask for a {kind}")
        invocation = Invocation(user_id=user, channel_id=channel, text=f'{text} "{reason}"')
        await command.run(request, Context(invocation=invocation, services=services, target=target))

    async def decide_step(self, release_id: str, user: str, channel: str, decision: str) -> None:
        """Continue or Abort on a release that waits for a person: an approver continues, a deployer may abort."""
        approvals = self.approvals
        record = await approvals.store.get(release_id)
        if record is None or record.state != RUNNING:
            raise CommandError("This release is not running any more: nothing was changed.")
        if channel != record.channel:
            raise PermissionDenied("This click did not come from the release's message: nothing was changed.")
        policy = approvals.target_of(record.change).policy
        if decision == "continue":
            ok, why = await policy.can_approve(user, "")
            if not ok:
                raise PermissionDenied(why)
        else:
            await policy.check_change(user, channel, "abort the canary")
        await approvals.releases().decide(release_id, user, decision)
        await approvals.audit("Continued" if decision == "continue" else "Stopped", record, user,
                              note="a person decided on a waiting release")
