"""The one place that speaks Slack's Web API on behalf of handlers.

Handlers and services post, edit and upload through :class:`Messenger`, never through the Slack
client. It retries rate limits (429 after ``Retry-After``) and server errors through slack_sdk's
retry handlers, counts errors in the bot's metrics, and raises :class:`SlackError` with a short
reason when Slack refuses.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat import metrics
from bot.core.config import Config
from bot.core.errors import SlackError

__all__ = ["Messenger", "SlackError", "make_client"]

log = logging.getLogger(__name__)


def make_client(config: Config) -> AsyncWebClient:
    """An AsyncWebClient for the configured workspace (or emulator) with retries on 429, 5xx and resets."""
    client = AsyncWebClient(token=config.slack_bot_token, base_url=config.slack_api_url, timeout=15)
    client.retry_handlers.extend([
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
    ])
    return client


def _error_code(exc: SlackApiError) -> str:
    """Slack's error code, also when the answer was not JSON (a proxy's 502 page, say)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error", "unknown_error"))[:64]
    status = getattr(exc.response, "status_code", 0)
    return f"http_{status}" if status else "unknown_error"


class Messenger:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        #: Workspaces (team or enterprise ids) that removed the app or revoked its bot token, and why
        #: (``app_uninstalled``, ``tokens_revoked``): the bot's own posts and Home publishes stop there.
        self.removed: dict[str, str] = {}

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

    async def _call(self, method: str, **kwargs: Any) -> dict:
        try:
            response = await getattr(self.client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            error = _error_code(exc)
            metrics.SLACK_ERRORS.labels(method=method, error=error).inc()
            raise SlackError(method, error) from None
        except (SlackClientError, OSError, TimeoutError) as exc:
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
        await self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks or [])

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

    async def open_view(self, trigger_id: str, view: dict) -> str:
        """``views.open`` with the trigger id of the interaction (valid 3 s, once); returns the view id."""
        data = await self._call("views.open", trigger_id=trigger_id, view=view)
        return str((data.get("view") or {}).get("id", ""))

    async def publish_home(self, user: str, view: dict) -> None:
        """``views.publish``: ``view`` becomes ``user``'s App Home tab."""
        await self._call("views.publish", user_id=user, view=view)

    async def group_members(self, group: str) -> list[str]:
        data = await self._call("usergroups.users.list", usergroup=group)
        return list(data.get("users") or [])

    async def auth_test(self) -> dict:
        return await self._call("auth.test")
