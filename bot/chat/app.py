"""The Slack app: the Bolt app with the bot's listeners (:mod:`bot.chat.listeners`) and its error handler.

Only this package knows Slack's wire format. A slash command is answered (acked) at once — help and
argument errors inside the ack itself, everything else acked empty — and the work runs afterwards as
a task (:mod:`bot.chat.dispatch`), so Slack's 3-second limit is never at risk and Bolt answers the HTTP
request as soon as ``ack()`` returns (``process_before_response=True``).
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse

from bot.chat import listeners
from bot.chat.dispatch import RESPONSE_URL, Dispatcher, invocation_from, replier
from bot.chat.supervise import reference
from bot.core.services import Services
from bot.core.text import foreign

__all__ = ["RESPONSE_URL", "Dispatcher", "build_app", "invocation_from", "replier", "request_kind",
           "unhandled_answer"]

log = logging.getLogger(__name__)


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
    listeners.register(app, services, dispatcher)

    @app.error
    async def on_error(error: Exception, body: dict, logger: logging.Logger) -> BoltResponse:
        if isinstance(error, BoltUnhandledRequestError):
            log.debug("no listener for a %s request: answered 200", request_kind(body))
            return unhandled_answer(body)
        ref = reference()
        log.error("unhandled error in Slack request (reference %s)", ref, exc_info=error)
        return BoltResponse(status=200, body=f"Sorry, something went wrong (reference {ref}).")

    return app
