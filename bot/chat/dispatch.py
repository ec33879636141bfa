"""Running a command after its ack: the :class:`Dispatcher` parses (no I/O, on the ack path), runs the
command under the supervisor, turns errors into replies (a ``CommandError`` is told to the person, anything
else is logged with a reference), and delivers the reply through the messenger or the response URL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.chat import metrics
from bot.chat.contract import CHOOSE, EVERY, Command, Context, Invocation, Reply, Request, Targeted, split, take_target
from bot.chat.help import reply_for
from bot.chat.messenger import SlackError
from bot.chat.supervise import Supervisor, reference
from bot.chat.views import error as error_view
from bot.core.errors import ClusterError, CommandError, UsageError
from bot.core.services import Services
from bot.core.target import Target
from bot.core.text import clean, escape, foreign

log = logging.getLogger(__name__)

KEEP = 64  # parsed commands kept for their listener at most (one the listener never took is dropped)
RESPONSE_URL = "response_url"  # the ``method`` of a SlackError about a request's response URL
# what parsing gave: the command (None: not one), its request (None: refused) and the reply to give now, if any
Prepared = tuple[Command | None, Request | Targeted | None, Reply | None]


class Dispatcher:
    """Runs sub-commands and delivers their replies through the :class:`~bot.messenger.Messenger`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.supervisor = Supervisor()
        self._help: dict[str, Reply] = {}  # help is pure and asked often: rendered once per topic
        # what the quick path parsed, handed to the listener that runs it (so a command is parsed once)
        self._kept: OrderedDict[tuple[str, str], Prepared] = OrderedDict()

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
    def prepare(self, invocation: Invocation, *, keep: bool = False) -> Prepared:
        """Parse the command text. Returns (command, request, immediate reply or None). Pure.

        Parsing depends only on the text and the channel (the target is resolved from them): ``keep`` (the
        quick path, which parses before Bolt) keeps a result that has work to do for the listener's call with
        the same text in the same channel, so the command is parsed and its target resolved once.
        """
        key = (invocation.channel_id, invocation.text)
        kept = self._kept.pop(key, None)
        if kept is not None:
            return kept
        prepared = self._prepare(invocation)
        if keep and prepared[2] is None:
            self._kept[key] = prepared
            while len(self._kept) > KEEP:
                self._kept.popitem(last=False)
        return prepared

    def _prepare(self, invocation: Invocation) -> Prepared:
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
                target, scope, rest = self.target(command, rest, invocation.channel_id)
                config = (target or self.services.targets.default).config
                request = Targeted(command.parse(rest, config), target, scope)
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

    def target(self, command: Command, args: list[str], channel: str) -> tuple[Target | None, str, list[str]]:
        """The target a targeted command names (see :func:`take_target`), resolved here once, and its scope: a
        command with an overview (``/hello status``) given no service where several could be meant covers all
        (:data:`EVERY`), and one that opens a form when given nothing (``/hello deploy``) lets the person choose
        in it (:data:`CHOOSE`)."""
        targets = self.services.targets
        try:
            target, rest = take_target(args, targets, channel)
            return target, "", rest
        except UsageError:
            named = bool(args) and args[0] in targets.catalogue.names
            if command.overview and not named:
                return None, EVERY, list(args)
            if command.form and not args:
                return None, CHOOSE, []
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
    async def run(self, command: Command, request: Request | Targeted, invocation: Invocation,
                  respond: Callable[..., Awaitable[Any]] | None = None) -> None:
        started = time.perf_counter()
        outcome = "ok"
        ctx = Context(invocation=invocation, services=self.services)
        if isinstance(request, Targeted):
            ctx.target, ctx.scope, request = request.target, request.scope, request.request
        try:
            if command.change_scope is not None:  # a command naming its own service and environment
                ctx.target = self.services.targets.resolve(*command.change_scope(request))
            if request.mutating and ctx.scope != CHOOSE:
                await self.check_change(command, request, ctx)
            else:
                await ctx.policy.check_read(invocation.user_id)  # the bot's own for EVERY and CHOOSE
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

    async def check_change(self, command: Command, request: Request, ctx: Context) -> None:
        """May the person make this change from here? A command that covers several services and environments
        (a hold) is checked against each, unless it is one ``HELLO_ADMINS`` may make (``admin_scope``, a hold on
        ``all``) and the person is an admin: then only the channel is (``HELLO_OPS_CHANNELS``)."""
        user, channel = ctx.invocation.user_id, ctx.invocation.channel_id
        admin, covers = command.admin_scope, command.change_targets
        if admin is not None and admin(request) and await self.services.policy.is_admin(user):
            self.services.policy.check_channel(channel)
            return
        for target in covers(request, self.services.targets) if covers is not None else [ctx.where]:
            await target.policy.check_change(user, channel, f"run `{command.name}`")

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

def replier(respond: Callable[..., Awaitable[Any]] | None) -> Callable[..., Awaitable[Any]]:
    """Bolt's ``respond`` failing the way the messenger does: a :class:`SlackError` (method
    ``response_url``), counted in ``hello_chatops_slack_api_errors_total``, when the response URL cannot be
    reached, refuses the reply (it expired, it was used five times) or the request carried none."""

    async def send(**kwargs: Any) -> Any:
        # Bolt's ``respond`` and its answer are its own duck types (an ``AsyncRespond`` that may carry no URL, a
        # ``WebhookResponse``): read with getattr, so a plain function (tests) stands in for them
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
