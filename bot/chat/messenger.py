"""The one place that speaks Slack's Web API on behalf of handlers.

Handlers and services post, edit and upload through :class:`Messenger`, never through the Slack
client. It tries a call again, through :func:`bot.core.retry.retry`, when Slack answers:

- HTTP 429 ``ratelimited``: after ``Retry-After``, in every form Slack sends it (whole seconds,
  ``1.5``, or an HTTP-date). The pause holds the calls that share the limit, as Slack's tiers are kept
  per method, and for ``chat.postMessage`` per channel and ``views.publish`` per person: one channel's
  or one person's limit never holds another's. The calls it holds then go one at a time, each that
  ``Retry-After`` (at most a second) after the one before, rather than all at the same moment (when one
  would pass and the others spend a try each);
- a server error (a 5xx, also as an HTML page from Slack's edge, labelled ``http_<status>``), or a
  connection problem: after a short pause.

A ``views.open`` is never tried again past its trigger's life (3 s from the click or command): it ends
at once as ``trigger_expired``, so the caller can say so. Every failed answer, the retried ones too,
is counted in ``hello_chatops_slack_api_errors_total`` by method and error; when the tries are spent,
:class:`SlackError` is raised with a short reason. An edit Slack did not take is kept and sent again by
:meth:`Messenger.resend` (the approvals sweeper), so no message is left showing an old state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from tenacity import RetryCallState
from tenacity.wait import wait_base

from bot.chat import metrics
from bot.core import times
from bot.core.config import Config
from bot.core.errors import SlackError
from bot.core.retry import Backoff, retry, transient

__all__ = ["TRIGGER_EXPIRED", "Limited", "Messenger", "SlackError", "make_client", "retry_after"]

log = logging.getLogger(__name__)

TRIGGER_LIFE = 3.0  # seconds a trigger_id may open a view (Slack's documented life)
TRIGGER_EXPIRED = "trigger_expired"
DEFAULT_RETRY_AFTER = 1.0  # a 429 without a readable Retry-After
MOST_RETRY_AFTER = 300.0  # a Retry-After beyond this is taken as this
MOST_PACE = 1.0  # seconds at most between the calls a limit held (chat.postMessage: one a second per channel)
#: The argument that gives a method's limit its own bucket (the others: one per method).
KEYED = {"chat.postMessage": "channel", "views.publish": "user_id"}
MOST_UNSENT = 500  # messages whose last edit is kept for resending (the oldest is dropped beyond)


def make_client(config: Config) -> AsyncWebClient:
    """An AsyncWebClient for the configured workspace (or emulator). It tries again after a reset
    connection; 429 and 5xx answers are the :class:`Messenger`'s to retry."""
    return AsyncWebClient(token=config.slack_bot_token, base_url=config.slack_api_url, timeout=15,
                          retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)])


def retry_after(value: str | None, now: Callable[[], Any] = times.now) -> float:
    """Seconds to wait from a ``Retry-After`` header: whole or decimal seconds, or an HTTP-date
    (RFC 9110); missing or unreadable: :data:`DEFAULT_RETRY_AFTER`. Never below 0 nor above
    :data:`MOST_RETRY_AFTER`."""
    text = (value or "").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(text) - now()).total_seconds()
        except (TypeError, ValueError, IndexError):
            seconds = DEFAULT_RETRY_AFTER
    if seconds != seconds:  # NaN
        seconds = DEFAULT_RETRY_AFTER
    return min(MOST_RETRY_AFTER, max(0.0, seconds))


def _error_code(exc: SlackApiError) -> str:
    """Slack's error code, or ``http_<status>`` when the answer was not Slack's JSON (a 502 page, say)."""
    response = exc.response
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:64]
    status = int(getattr(response, "status_code", 0) or 0)
    return f"http_{status}" if status >= 300 else "unknown_error"


class Limited(SlackError):
    """Slack answered 429: ``wait`` seconds (its ``Retry-After``) before the next call of that limit."""

    def __init__(self, method: str, wait: float) -> None:
        super().__init__(method, "ratelimited")
        self.wait = wait


def worth_again(exc: BaseException) -> bool:
    """A 429 or Slack's own trouble (a 5xx, also as a page); never an expired trigger or a refusal."""
    if not isinstance(exc, SlackError) or exc.error == TRIGGER_EXPIRED:
        return False
    return isinstance(exc, Limited) or exc.error.startswith("http_5") or transient(exc)


class _AfterRetryAfter(wait_base):
    """No pause of its own after a 429 (the call waits for its limit's turn); else ``fallback``'s."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed and isinstance(outcome.exception(), Limited):
            return 0.0
        return float(self.fallback(retry_state))


@dataclass(frozen=True, kw_only=True)
class SlackBackoff(Backoff):
    """:class:`Backoff` whose pause after a 429 is the limit's ``Retry-After``."""

    def wait(self) -> wait_base:
        return _AfterRetryAfter(super().wait())


SLACK_TRIES = SlackBackoff(first=0.5, most=4.0, attempts=4)  # the call and three more


def _header(response: Any, name: str) -> str | None:
    """A response header by name, whatever the case (a list keeps its first value)."""
    for key, value in (getattr(response, "headers", None) or {}).items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list | tuple) and value else value)
    return None


class Messenger:
    """``clock`` (monotonic seconds) tells when a limit's ``Retry-After`` has passed."""

    def __init__(self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        #: Workspaces (team or enterprise ids) that removed the app or revoked its bot token, and why
        #: (``app_uninstalled``, ``tokens_revoked``): the bot's own posts and Home publishes stop there.
        self.removed: dict[str, str] = {}
        #: When each limit (method, and channel or person where Slack keeps them apart) may be called again.
        self.free_at: dict[tuple[str, str], float] = {}
        #: While a limit holds calls: its last ``Retry-After``, and when the next call it holds may go.
        self._pace: dict[tuple[str, str], float] = {}
        self._next_turn: dict[tuple[str, str], float] = {}
        #: The last state of each message (channel, ts) whose edit Slack did not take, for :meth:`resend`.
        self.unsent: dict[tuple[str, str], tuple[str, list[dict]]] = {}
        self._edit_seq = 0
        self._latest_edit: dict[tuple[str, str], int] = {}  # the newest edit begun of each message

    def stop_for(self, team: str, why: str) -> bool:
        """Record that ``team`` took the bot's token away; True the first time (so it is logged once)."""
        first = not self.removed
        self.removed.setdefault(team, why)
        return first

    @property
    def stopped(self) -> bool:
        """Whether the workspace the bot's token belongs to took it away: the bot has one token, for one
        workspace (or one Enterprise Grid organisation), so any removal Slack signs is that one's."""
        return bool(self.removed)

    async def _call(self, method: str, *, deadline: float | None = None, **kwargs: Any) -> dict:
        """``method`` with ``kwargs``, tried again as the module's docstring says; ``deadline`` (on
        :attr:`clock`) is the last moment a try may begin."""
        arg = KEYED.get(method)
        limit = (method, str(kwargs.get(arg) or "") if arg else "")

        async def once() -> dict:
            await self._turn(limit, deadline)
            return await self._once(method, limit, kwargs)

        return await retry(once, backoff=SLACK_TRIES, when=worth_again)

    async def _turn(self, limit: tuple[str, str], deadline: float | None) -> None:
        """Wait until ``limit``'s ``Retry-After`` has passed, and then for the calls it held before this one, each
        a ``Retry-After`` (at most :data:`MOST_PACE`) apart; a turn that comes past ``deadline`` ends the call."""
        now, until = self.clock(), self.free_at.get(limit, 0.0)
        turn = max(until, self._next_turn.get(limit, 0.0)) if until > now else now
        if deadline is not None and turn >= deadline:
            metrics.SLACK_ERRORS.labels(method=limit[0], error=TRIGGER_EXPIRED).inc()
            raise SlackError(limit[0], TRIGGER_EXPIRED)
        if turn > now:
            self._next_turn[limit] = turn + self._pace.get(limit, DEFAULT_RETRY_AFTER)
            await asyncio.sleep(turn - now)

    async def _once(self, method: str, limit: tuple[str, str], kwargs: dict[str, Any]) -> dict:
        try:
            response = await getattr(self.client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            error = _error_code(exc)
            metrics.SLACK_ERRORS.labels(method=method, error=error).inc()
            if getattr(exc.response, "status_code", 0) == 429 or error == "ratelimited":
                wait = retry_after(_header(exc.response, "retry-after"))
                self.free_at[limit] = max(self.free_at.get(limit, 0.0), self.clock() + wait)
                self._pace[limit] = min(wait, MOST_PACE)
                log.info("Slack %s rate-limited%s: next call in %.1f s", method,
                         f" for {limit[1]}" if limit[1] else "", wait)
                raise Limited(method, wait) from None
            raise SlackError(method, error) from None
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            metrics.SLACK_ERRORS.labels(method=method, error=type(exc).__name__).inc()
            raise SlackError(method, type(exc).__name__) from None
        return dict(response.data) if hasattr(response, "data") else dict(response)

    async def post(self, channel: str, text: str, blocks: list[dict] | None = None, *,
                   thread_ts: str | None = None) -> str:
        """Post a message; returns its ``ts``."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        data = await self._call("chat.postMessage", **kwargs)
        return str(data.get("ts", ""))

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict] | None = None) -> None:
        """Edit a message. When Slack does not take the newest edit of a message for a reason that passes
        (a limit, its own trouble), that state is kept in :attr:`unsent` until :meth:`resend` sends it."""
        key = (channel, ts)
        self._edit_seq += 1
        seq = self._latest_edit[key] = self._edit_seq
        try:
            await self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks or [])
        except SlackError as exc:
            if self._latest_edit.get(key) == seq and worth_again(exc):
                self.unsent.pop(key, None)
                self.unsent[key] = (text, list(blocks or []))
                while len(self.unsent) > MOST_UNSENT:
                    self.unsent.pop(next(iter(self.unsent)))
            raise
        else:
            if self._latest_edit.get(key) == seq:
                self.unsent.pop(key, None)
        finally:
            if self._latest_edit.get(key) == seq:
                del self._latest_edit[key]

    def forget(self, channel: str, ts: str) -> None:
        """Drop the state of the message kept for :meth:`resend` (another replica edits it now)."""
        self.unsent.pop((channel, ts), None)

    @property
    def edits_pending(self) -> int:
        """Edits begun and not answered yet, and edits Slack did not take that wait for :meth:`resend`."""
        return len(self._latest_edit) + len(self.unsent)

    async def resend(self) -> int:
        """Send again the last state of every message whose edit Slack did not take (the approvals sweeper
        does, every 30 s): a finished release's message shows how it ended, a finished request's loses its
        buttons, once Slack is back. Returns how many Slack took now."""
        taken = 0
        for (channel, ts), (text, blocks) in list(self.unsent.items()):
            if self.stopped or self.unsent.get((channel, ts)) != (text, blocks):
                continue  # a newer edit is on its way, or Slack took one meanwhile
            try:
                await self.update(channel, ts, text, blocks)
                taken += 1
            except SlackError as exc:
                log.info("the message %s in %s still cannot be edited: %s", ts, channel, exc.error)
        return taken

    async def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict] | None = None) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        await self._call("chat.postEphemeral", **kwargs)

    async def upload(self, channel: str, content: bytes, filename: str, title: str, *,
                     thread_ts: str | None = None, comment: str = "") -> str:
        """Upload a file into the channel (optionally a thread) with files_upload_v2; returns the file id."""
        kwargs: dict[str, Any] = {"channel": channel, "content": content, "filename": filename, "title": title}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if comment:
            kwargs["initial_comment"] = comment
        data = await self._call("files_upload_v2", **kwargs)
        files = data.get("files") or [data.get("file") or {}]
        return str((files[0] or {}).get("id", ""))

    async def open_view(self, trigger_id: str, view: dict, *, issued: float | None = None) -> str:
        """``views.open`` with the trigger id of the interaction (valid 3 s from ``issued``, on :attr:`clock`;
        default now, once); returns the view id. Raises :class:`SlackError` ``trigger_expired`` rather than
        try past the trigger's life."""
        deadline = (self.clock() if issued is None else issued) + TRIGGER_LIFE
        data = await self._call("views.open", deadline=deadline, trigger_id=trigger_id, view=view)
        return str((data.get("view") or {}).get("id", ""))

    async def publish_home(self, user: str, view: dict) -> None:
        """``views.publish``: ``view`` becomes ``user``'s App Home tab."""
        await self._call("views.publish", user_id=user, view=view)

    async def group_members(self, group: str) -> list[str]:
        data = await self._call("usergroups.users.list", usergroup=group)
        return list(data.get("users") or [])

    async def auth_test(self) -> dict:
        return await self._call("auth.test")
