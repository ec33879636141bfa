"""The Slack app: one ``/hello`` command, the button actions, and the error handler.

Only this module knows Slack's wire format. A slash command is answered (acked) at once — help and
argument errors inside the ack itself, everything else acked empty — and the work runs afterwards as
a task, so Slack's 3-second limit is never at risk and Bolt answers the HTTP request as soon as
``ack()`` returns (``process_before_response=True``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse

from bot.chat import forms, metrics
from bot.chat.contract import CHOOSE, DETAILS, EVERY, Command, Context, Invocation, Reply, Targeted, split, take_target
from bot.chat.help import reply_for
from bot.chat.messenger import SlackError
from bot.chat.supervise import Supervisor, reference
from bot.chat.views import error as error_view
from bot.core.errors import ClusterError, CommandError, UsageError
from bot.core.services import Services
from bot.core.text import clean, escape, foreign

log = logging.getLogger(__name__)

COMMAND = "/hello"
RESPONSE_URL = "response_url"  # the ``method`` of a SlackError about a request's response URL


class Dispatcher:
    """Runs sub-commands and delivers their replies through the :class:`~bot.messenger.Messenger`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.supervisor = Supervisor()
        self._help: dict[str, Reply] = {}  # help is pure and asked often: rendered once per topic

    # ---------------------------------------------------------------- background work
    @property
    def tasks(self) -> set[asyncio.Task]:
        """The work running after its ack."""
        return self.supervisor.tasks

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "work") -> asyncio.Task:
        """Run ``coro`` after the ack, under the supervisor (:mod:`bot.chat.supervise`)."""
        return self.supervisor.spawn(coro, name)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for running work (used on shutdown and by tests)."""
        await self.supervisor.drain(timeout)

    # ---------------------------------------------------------------- ack path (no I/O)
    def prepare(self, invocation: Invocation) -> tuple[Any, Any, Reply | None]:
        """Parse the command text. Returns (command, request, immediate reply or None). Pure."""
        registry = self.services.registry
        try:
            args = split(invocation.text)
        except UsageError as exc:
            return None, None, self.error_reply(str(exc), "/hello help")
        if not args:
            return None, None, self.help_reply("")
        name, rest = args[0].lower(), args[1:]
        command = registry.get(name)
        if command is None:
            usage = "\n".join(f"{c.usage}" for c in registry)
            return None, None, self.error_reply(f"Unknown command `{foreign(args[0], 40)}`. Commands:", usage)
        try:
            if command.targeted:
                service, environment, rest = self.target(command, rest, invocation.channel_id)
                config = Context(invocation, self.services, service, environment).config
                request = Targeted(command.parse(rest, config), service, environment)
            else:
                request = command.parse(rest, self.services.config)
        except UsageError as exc:
            metrics.COMMANDS.labels(command=name, outcome="usage").inc()
            return command, None, self.error_reply(str(exc), exc.usage or command.usage)
        if name == "help":
            try:
                return command, request, self.help_reply(request.topic)
            except UsageError as exc:
                return command, None, self.error_reply(str(exc), exc.usage)
        return command, request, None

    def target(self, command: Command, args: list[str], channel: str) -> tuple[str, str, list[str]]:
        """The service and environment a targeted command names (see :func:`take_target`); a command
        with an overview (``/hello status``) given no service where several could be meant covers all,
        and one that opens a form when given nothing (``/hello deploy``) lets the person choose in it."""
        try:
            return take_target(args, self.services, channel)
        except UsageError:
            catalogue = self.services.catalogue
            named = catalogue is not None and bool(args) and args[0] in catalogue.names
            if getattr(command.module, "OVERVIEW", False) and not named:
                return EVERY, "", list(args)
            if getattr(command.module, "FORM", False) and not args:
                return CHOOSE, "", []
            raise

    def help_reply(self, topic: str) -> Reply:
        reply = self._help.get(topic)
        if reply is None:
            reply = reply_for(self.services.registry, topic)
            self._help[topic] = reply
        return reply

    @staticmethod
    def error_reply(message: str, usage: str = "", ref: str = "") -> Reply:
        text = message + (f"\nUsage: {usage}" if usage else "") + (f"\nReference: {ref}" if ref else "")
        return Reply(text=text, blocks=error_view.blocks(message, usage, ref), ephemeral=True)

    # ---------------------------------------------------------------- work path
    async def run(self, command: Any, request: Any, invocation: Invocation,
                  respond: Callable[..., Awaitable[Any]] | None = None) -> None:
        started = time.perf_counter()
        outcome = "ok"
        ctx = Context(invocation=invocation, services=self.services)
        if isinstance(request, Targeted):
            ctx.service, ctx.environment, request = request.service, request.environment, request.request
        try:
            scope = getattr(command.module, "change_scope", None)  # a command naming its own service and environment
            if scope is not None:
                ctx.service, ctx.environment = scope(request)
            policy = ctx.policy  # the bot's own for EVERY and CHOOSE
            if getattr(request, "mutating", False) and ctx.service != CHOOSE:
                await policy.check_change(invocation.user_id, invocation.channel_id,
                                          f"run `{command.name}`")
            else:
                await policy.check_read(invocation.user_id)
            reply = await command.run(request, ctx)
            if reply is not None:
                await self.deliver(reply, invocation, respond)
        except ClusterError as exc:
            if exc.status >= 500 or exc.status == 422:
                # an outage or a bug, not a refusal of the request: counted as an error, with a reference
                outcome = "error"
                ref = reference()
                log.error("command %s: the Kubernetes API failed (reference %s): %s", command.name, ref, exc)
                await self.deliver(self.error_reply(str(exc), ref=ref), invocation, respond)
            else:
                outcome = "refused"
                await self.deliver(self.error_reply(str(exc)), invocation, respond)
        except CommandError as exc:
            outcome = "refused" if not isinstance(exc, UsageError) else "usage"
            usage = exc.usage if isinstance(exc, UsageError) else ""
            await self.deliver(self.error_reply(str(exc), usage), invocation, respond)
        except Exception:
            outcome = "error"
            ref = reference()
            log.exception("command %s failed (reference %s)", command.name, ref)
            await self.deliver(
                self.error_reply("Sorry, something went wrong on my side.", ref=ref), invocation, respond
            )
        finally:
            metrics.COMMANDS.labels(command=command.name, outcome=outcome).inc()
            metrics.HANDLER_SECONDS.labels(command=command.name).observe(time.perf_counter() - started)

    async def deliver(self, reply: Reply, invocation: Invocation,
                      respond: Callable[..., Awaitable[Any]] | None = None) -> str | None:
        """Post a reply; returns the message ts for channel messages. Failures are logged, never raised."""
        messenger = self.services.messenger
        try:
            if reply.ephemeral:
                if respond is not None:
                    await respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral",
                                  replace_original=False)
                else:
                    await messenger.ephemeral(invocation.channel_id, invocation.user_id, reply.text, reply.blocks)
                return None
            if not reply.text and not reply.blocks:
                ts = None  # uploads only: they go straight into the channel
            else:
                ts = await messenger.post(invocation.channel_id, reply.text, reply.blocks)
        except SlackError as exc:
            log.warning("cannot deliver reply in %s: %s", invocation.channel_id, exc)
            if respond is not None and exc.method != RESPONSE_URL:
                if exc.error in ("not_in_channel", "channel_not_found"):
                    hint = "I am not a member of this channel: invite me (`/invite @hello`) and try again."
                else:
                    # the response URL needs no token: this reaches the person even when Slack refuses ours
                    hint = (f"I could not post the reply in this channel: Slack answered "
                            f"`{escape(exc.error[:60])}`. Ask whoever runs the bot to look at its log.")
                try:
                    await respond(text=hint, response_type="ephemeral", replace_original=False)
                except SlackError as again:  # counted where it failed; nobody else to tell
                    log.warning("cannot tell the user that posting failed either: %s", again)
            return None
        uploads = list(reply.uploads)
        if reply.followup is not None:
            try:
                uploads += await reply.followup()
            except Exception:
                ref = reference()
                log.exception("follow-up of a reply failed (reference %s)", ref)
                try:
                    await messenger.post(invocation.channel_id, f"The chart could not be drawn (reference {ref}).",
                                         thread_ts=ts or None)
                except SlackError:
                    pass
        for upload in uploads:
            try:
                await messenger.upload(invocation.channel_id, upload.content, upload.filename, upload.title,
                                       thread_ts=ts, comment=upload.comment)
            except SlackError as exc:
                log.warning("cannot upload %s: %s", upload.filename, exc)
                if respond is not None:
                    try:
                        await respond(text=f"The chart could not be uploaded: {foreign(exc.error, 80)}.",
                                      response_type="ephemeral", replace_original=False)
                    except SlackError as again:
                        log.warning("cannot tell the user that the upload failed either: %s", again)
        return ts


def invocation_from(body: dict) -> Invocation:
    return Invocation(
        user_id=str(body.get("user_id", "")),
        channel_id=str(body.get("channel_id", "")),
        text=clean(body.get("text", "")),
        user_name=str(body.get("user_name", "")),
        channel_name=str(body.get("channel_name", "")),
        response_url=str(body.get("response_url", "")),
        team_id=str(body.get("team_id", "")),
        trigger_id=str(body.get("trigger_id", "")),
    )


class _SameTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that the client's token wins: it is the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_SameTokenNotice())


class _NoRefusedBodies(logging.Filter):
    """Bolt's own signature check logs the whole body (and its token, its ``response_url``) of a request
    it refuses. ``/slack/events`` checks signatures first and passes Bolt signed requests only, so this
    can only happen if a request ages past the 5-minute window in between; then one short line is left."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = "Bolt refused a request's signature (body not logged)"
        record.args = ()
        return True


for _name in ("slack_bolt.AsyncRequestVerification", "slack_bolt.RequestVerification"):
    logging.getLogger(_name).addFilter(_NoRefusedBodies())


def replier(respond: Callable[..., Awaitable[Any]] | None) -> Callable[..., Awaitable[Any]]:
    """Bolt's ``respond`` failing the way the messenger does: a :class:`SlackError` (method
    ``response_url``), counted in ``hello_chatops_slack_api_errors_total``, when the response URL cannot be
    reached, refuses the reply (it expired, it was used five times) or the request carried none."""

    async def send(**kwargs: Any) -> Any:
        if respond is None or getattr(respond, "response_url", "") is None:
            error = "no_response_url"  # a click in a Home tab or a modal: there is no message to answer under
        else:
            try:
                answer = await respond(**kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = type(exc).__name__[:64]
            else:
                status = int(getattr(answer, "status_code", 200) or 200)
                if status < 400:
                    return answer
                error = f"http_{status}"
        metrics.SLACK_ERRORS.labels(method=RESPONSE_URL, error=error).inc()
        raise SlackError(RESPONSE_URL, error)

    return send


#: What Slack expects for a request the bot has no listener for: the options of an external select it
#: did not offer are none; anything else is acknowledged with an empty 200, so Slack neither retries an
#: event nor disables the subscription, and shows no error for a click, a shortcut or a dialog.
NO_OPTIONS = {"block_suggestion", "dialog_suggestion"}


def unhandled_answer(body: dict) -> BoltResponse:
    """The answer to a signed request no listener took (see :data:`NO_OPTIONS`)."""
    if body.get("type") in NO_OPTIONS:
        return BoltResponse(status=200, body={"options": []})
    return BoltResponse(status=200, body="")


def request_kind(body: dict) -> str:
    """A short name for a request, for the log: its slash command, or its type and its event's type."""
    kind = f"command {body.get('command')}" if body.get("command") else str(body.get("type") or "unknown")
    event = body.get("event")
    if isinstance(event, dict) and event.get("type"):
        kind += f" {event.get('type')}"
    return foreign(kind, 80)


def build_app(services: Services, *, dispatcher: Dispatcher | None = None, socket_mode: bool = False) -> AsyncApp:
    """The Bolt app. ``services.messenger.client`` is the Web API client it uses."""
    config = services.config
    dispatcher = dispatcher or Dispatcher(services)
    app = AsyncApp(
        client=services.messenger.client,
        signing_secret=config.slack_signing_secret,
        process_before_response=not socket_mode,
        # a request no listener takes goes to ``on_error`` below, which answers what Slack expects
        raise_error_for_unhandled_request=True,
        # Slack verifies the Events API's URL once when it is set
        url_verification_enabled=True,
        ignoring_self_events_enabled=False,
    )
    app.dispatcher = dispatcher  # type: ignore[attr-defined]

    @app.command(COMMAND)
    async def on_command(ack: Callable[..., Awaitable[Any]], body: dict, respond: Any) -> None:
        invocation = invocation_from(body)
        command, request, immediate = dispatcher.prepare(invocation)
        if immediate is not None:
            if command is not None and command.name == "help":
                metrics.COMMANDS.labels(command="help", outcome="ok").inc()
            await ack(text=immediate.text, blocks=immediate.blocks, response_type="ephemeral")
            return
        await ack()
        dispatcher.spawn(dispatcher.run(command, request, invocation, replier(respond)), name=f"/hello {command.name}")

    @app.view(forms.CALLBACK)
    async def on_form(ack: Callable[..., Awaitable[Any]], body: dict, view: dict) -> None:
        """A submitted form runs as the command it stands for; a usage error is shown in the form."""
        name, channel, values = forms.submitted(view)
        errors = {**forms.target_errors(values), **forms.version_errors(values)}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        service, environment = forms.target(view, values)
        invocation = Invocation(user_id=str((body.get("user") or {}).get("id", "")), channel_id=channel,
                                text=forms.command_text(name, values, service, environment))
        command, request, immediate = dispatcher.prepare(invocation)
        if immediate is not None or command is None or getattr(request, "form", False):
            message = immediate.text.split("\nUsage:")[0] if immediate is not None else "Give a version."
            await ack(response_action="errors", errors={forms.error_block(message, values): message[:150]})
            return
        await ack()
        dispatcher.spawn(dispatcher.run(command, request, invocation), name=f"form {command.name}")

    @app.event("app_home_opened")
    async def on_home(ack: Callable[..., Awaitable[Any]], event: dict) -> None:
        await ack()
        home = services.home
        if home is None or event.get("tab", "home") != "home":
            return
        dispatcher.spawn(home.opened(str(event.get("user", ""))), name="home")

    async def on_removed(ack: Callable[..., Awaitable[Any]], body: dict, event: dict) -> None:
        """``app_uninstalled`` and ``tokens_revoked``: the workspace took the bot's token away, so its
        scheduled posts and Home publishes stop there (logged once). A ``tokens_revoked`` that names no
        bot token (only people's) leaves the bot's own token, and the bot, working."""
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

    @app.action(re.compile(r"^link_"))
    async def on_link(ack: Callable[..., Awaitable[Any]]) -> None:
        await ack()  # URL buttons also send an action; nothing to do

    async def on_button(ack: Callable[..., Awaitable[Any]], body: dict, action: dict, respond: Any) -> None:
        """One of the bot's own buttons: its handler (``services.approvals.handle_action``) runs after the ack."""
        await ack()
        respond = replier(respond)
        handler = getattr(services.approvals, "handle_action", None)
        label = metrics.action_label(str(action.get("action_id", "")))
        if handler is None:
            await not_handled(label, respond)
            return

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

    async def on_details(ack: Callable[..., Awaitable[Any]], body: dict, action: dict, respond: Any) -> None:
        await ack()
        await details(body, action, replier(respond))

    async def on_foreign(ack: Callable[..., Awaitable[Any]], action: dict, respond: Any) -> None:
        """A Block Kit element the bot did not send (another app's, or an old message's): said so, privately."""
        await ack()
        await not_handled(metrics.action_label(str(action.get("action_id", ""))), replier(respond), "refused")

    async def not_handled(label: str, respond: Callable[..., Awaitable[Any]], outcome: str = "unhandled") -> None:
        metrics.ACTIONS.labels(action=label, outcome=outcome).inc()
        dispatcher.spawn(respond(text="This button is not handled by this bot.", response_type="ephemeral",
                                 replace_original=False), name=f"action {label}")

    # Each of the bot's elements has its own listener (Bolt matches the action id); Block Kit elements only:
    # the bot sends no legacy attachment buttons or dialogs, so theirs (another app's) go unhandled, answered
    # as Slack expects by ``on_error``. Any other Block Kit action id is another app's: the last listener.
    for action_id in sorted(metrics.ACTION_IDS - {DETAILS}):
        app.action({"type": "block_actions", "action_id": action_id})(on_button)
    app.action({"type": "block_actions", "action_id": DETAILS})(on_details)
    app.action({"type": "block_actions", "action_id": re.compile(r".+")})(on_foreign)

    async def details(body: dict, action: dict, respond: Callable[..., Awaitable[Any]]) -> None:
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

    @app.error
    async def on_error(error: Exception, body: dict, logger: logging.Logger) -> BoltResponse:
        if isinstance(error, BoltUnhandledRequestError):
            log.debug("no listener for a %s request: answered 200", request_kind(body))
            return unhandled_answer(body)
        ref = reference()
        log.error("unhandled error in Slack request (reference %s)", ref, exc_info=error)
        return BoltResponse(status=200, body=f"Sorry, something went wrong (reference {ref}).")

    return app
