"""The Bolt listeners, registered per concern: the ``/hello`` command, the forms, the Home tab, the
workspace taking the bot's token away, and the buttons (each of the bot's own action ids has its own
listener; another app's fall to the last one).

Every listener acks first and leaves the work to the :class:`~bot.chat.dispatch.Dispatcher`'s supervisor,
so Slack's 3-second limit is never at risk.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.chat import forms, metrics
from bot.chat.contract import DETAILS, Invocation
from bot.chat.dispatch import Dispatcher, invocation_from, replier
from bot.chat.supervise import reference
from bot.chat.views import error as error_view
from bot.core.errors import CommandError
from bot.core.services import Services
from bot.core.text import foreign

log = logging.getLogger(__name__)

COMMAND = "/hello"
Ack = Callable[..., Awaitable[Any]]
Respond = Callable[..., Awaitable[Any]]


def register(app: AsyncApp, services: Services, dispatcher: Dispatcher) -> None:
    """Every listener of the bot, on ``app``."""
    command(app, dispatcher)
    form(app, dispatcher)
    home(app, services, dispatcher)
    workspace(app, services)
    buttons(app, services, dispatcher)


def command(app: AsyncApp, dispatcher: Dispatcher) -> None:
    """``/hello``: a pure answer is the ack itself (help, a usage error); anything else is acked empty and
    run afterwards."""

    @app.command(COMMAND)
    async def on_command(ack: Ack, body: dict, respond: Any) -> None:
        invocation = invocation_from(body)
        command, request, immediate = dispatcher.prepare(invocation)
        if immediate is not None:
            if command is not None and command.name == "help":
                metrics.COMMANDS.labels(command="help", outcome="ok").inc()
            await ack(text=immediate.text, blocks=immediate.blocks, response_type="ephemeral")
            return
        await ack()
        dispatcher.spawn(dispatcher.run(command, request, invocation, replier(respond)), name=f"/hello {command.name}")


def form(app: AsyncApp, dispatcher: Dispatcher) -> None:
    """A submitted form runs as the command it stands for; a usage error is shown in the form."""

    @app.view(forms.CALLBACK)
    async def on_form(ack: Ack, body: dict, view: dict) -> None:
        name, channel, values = forms.submitted(view)
        errors = {**forms.target_errors(values), **forms.version_errors(values)}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        service, environment = forms.target(view, values)
        invocation = Invocation(user_id=str((body.get("user") or {}).get("id", "")), channel_id=channel,
                                text=forms.command_text(name, values, service, environment))
        command, request, immediate = dispatcher.prepare(invocation)
        if immediate is not None or command is None:
            message = immediate.text.split("\nUsage:")[0] if immediate is not None else "Give a version."
            await ack(response_action="errors", errors={forms.error_block(message, values): message[:150]})
            return
        await ack()
        dispatcher.spawn(dispatcher.run(command, request, invocation), name=f"form {command.name}")


def home(app: AsyncApp, services: Services, dispatcher: Dispatcher) -> None:
    """The Home tab, published again each time someone opens it."""

    @app.event("app_home_opened")
    async def on_home(ack: Ack, event: dict) -> None:
        await ack()
        home = services.home
        if home is None or event.get("tab", "home") != "home":
            return
        dispatcher.spawn(home.opened(str(event.get("user", ""))), name="home")


def workspace(app: AsyncApp, services: Services) -> None:
    """``app_uninstalled`` and ``tokens_revoked``: the workspace took the bot's token away, so its
    scheduled posts and Home publishes stop there (logged once). A ``tokens_revoked`` that names no
    bot token (only people's) leaves the bot's own token, and the bot, working."""

    async def on_removed(ack: Ack, body: dict, event: dict) -> None:
        await ack()
        kind = str(event.get("type", ""))
        if kind == "tokens_revoked" and not ((event.get("tokens") or {}).get("bot")):
            log.debug("tokens_revoked for people's tokens only: the bot's own is still valid")
            return
        team = str(body.get("team_id") or (body.get("enterprise_id") or ""))
        if services.messenger.stop_for(team, kind):
            log.warning("Slack says %s in workspace %s: scheduled posts and Home publishes stop there",
                        foreign(kind, 40), foreign(team, 40))

    app.event("app_uninstalled")(on_removed)
    app.event("tokens_revoked")(on_removed)


def buttons(app: AsyncApp, services: Services, dispatcher: Dispatcher) -> None:
    """Each of the bot's elements has its own listener (Bolt matches the action id); Block Kit elements only:
    the bot sends no legacy attachment buttons or dialogs, so theirs (another app's) go unhandled, answered
    as Slack expects by the app's error handler. Any other Block Kit action id is another app's: the last
    listener."""

    @app.action(re.compile(r"^link_"))
    async def on_link(ack: Ack) -> None:
        await ack()  # URL buttons also send an action; nothing to do

    async def on_button(ack: Ack, body: dict, action: dict, respond: Any) -> None:
        await ack()
        click(services, dispatcher, body, action, replier(respond))

    async def on_details(ack: Ack, body: dict, action: dict, respond: Any) -> None:
        await ack()
        details(dispatcher, body, action, replier(respond))

    async def on_foreign(ack: Ack, action: dict, respond: Any) -> None:
        """A Block Kit element the bot did not send (another app's, or an old message's): said so, privately."""
        await ack()
        not_handled(dispatcher, metrics.action_label(str(action.get("action_id", ""))), replier(respond), "refused")

    for action_id in sorted(metrics.ACTION_IDS - {DETAILS}):
        app.action({"type": "block_actions", "action_id": action_id})(on_button)
    app.action({"type": "block_actions", "action_id": DETAILS})(on_details)
    app.action({"type": "block_actions", "action_id": re.compile(r".+")})(on_foreign)


def click(services: Services, dispatcher: Dispatcher, body: dict, action: dict, respond: Respond) -> None:
    """One of the bot's own buttons, acked: its handler (``services.approvals.handle_action``) runs after."""
    handler = services.approvals.handle_action
    label = metrics.action_label(str(action.get("action_id", "")))

    async def work() -> None:
        try:
            await handler(body, action, respond)
            metrics.ACTIONS.labels(action=label, outcome="ok").inc()
        except CommandError as exc:  # a Slack failure too: the clicker is told (if the response URL works)
            metrics.ACTIONS.labels(action=label, outcome="refused").inc()
            await respond(text=str(exc), blocks=error_view.blocks(str(exc)), response_type="ephemeral",
                          replace_original=False)
        except Exception:
            metrics.ACTIONS.labels(action=label, outcome="error").inc()
            ref = reference()
            log.exception("button %s failed (reference %s)", label, ref)
            await respond(text=f"Sorry, something went wrong (reference {ref}).", response_type="ephemeral",
                          replace_original=False)

    dispatcher.spawn(work(), name=f"action {label}")


def details(dispatcher: Dispatcher, body: dict, action: dict, respond: Respond) -> None:
    """A choice in the status overview's select: that service's status, as if typed by the chooser."""
    chosen = str((action.get("selected_option") or {}).get("value", ""))
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", ""))
    invocation = Invocation(user_id=str((body.get("user") or {}).get("id", "")), channel_id=channel,
                            text=f"status {chosen}")
    command, request, immediate = dispatcher.prepare(invocation)
    if immediate is not None or command is None or command.name != "status" or not chosen:
        metrics.ACTIONS.labels(action=DETAILS, outcome="refused").inc()
        message = immediate.text if immediate is not None else "Choose a service and environment."
        dispatcher.spawn(respond(text=message, response_type="ephemeral", replace_original=False),
                         name="status details")
        return
    metrics.ACTIONS.labels(action=DETAILS, outcome="ok").inc()
    dispatcher.spawn(dispatcher.run(command, request, invocation, respond), name="status details")


def not_handled(dispatcher: Dispatcher, label: str, respond: Respond, outcome: str = "unhandled") -> None:
    """A click no handler of the bot takes: counted, and the clicker told privately."""
    metrics.ACTIONS.labels(action=label, outcome=outcome).inc()
    dispatcher.spawn(respond(text="This button is not handled by this bot.", response_type="ephemeral",
                             replace_original=False), name=f"action {label}")
