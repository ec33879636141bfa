"""The one way the bot runs work in the background: every task started after an ack goes through here.

A reply through a ``response_url``, a ``views.publish``, an upload, a progress edit, an alert card or a
digest runs after Slack has had its answer, so nobody is left to see its exception. :func:`guard` runs
such a coroutine and catches whatever escapes it:

- a Slack failure (:class:`~bot.chat.messenger.SlackError`, already counted in
  ``hello_chatops_slack_api_errors_total`` where the call failed; or a Slack client error that did not go
  through the messenger, counted here) is logged as one warning line with a reference id;
- anything else is logged as one error record with a reference id and its traceback, and counted in
  ``hello_chatops_background_errors_total`` by the task's kind.

Cancellation passes through (a cancelled task is not a failure). :class:`Supervisor` keeps the tasks it
started, so shutdown and tests can wait for them (:meth:`Supervisor.drain`); a task it started never
ends with an exception that nobody retrieves.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.chat import metrics
from bot.chat.messenger import SlackError, _error_code

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Called with (reference, exception) after a failure was logged: a task's own way to tell a person.
OnError = Callable[[str, BaseException], Awaitable[Any]]


def reference() -> str:
    """A short id that ties what a person is shown to the log line about it."""
    return uuid.uuid4().hex[:8]


def kind_of(name: str) -> str:
    """The bounded ``task`` label of a task named ``name``: its first word (``"action approve"`` -> ``action``)."""
    first = name.split(" ", 1)[0].split("-", 1)[0].lstrip("/")
    return first[:32] or "work"


def slack_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(method, error)`` when ``exc`` is a Slack failure, else None."""
    if isinstance(exc, SlackError):
        return exc.method, exc.error
    if isinstance(exc, SlackApiError):
        error = _error_code(exc)
        api_url = str(getattr(exc.response, "api_url", "") or "")
        return (api_url.rsplit("/", 1)[-1] or "unknown")[:64], error
    if isinstance(exc, SlackClientError):
        return "unknown", type(exc).__name__
    return None


async def guard(coro: Awaitable[T], name: str, *, kind: str | None = None,
                on_error: OnError | None = None) -> T | None:
    """Await ``coro``; a failure is logged (one record, with a reference id), counted and swallowed.

    Returns the coroutine's result, or None when it failed. ``on_error`` is awaited after a failure (with
    the reference and the exception) and is guarded the same way, so it cannot fail either.
    """
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ref = report(exc, name, kind=kind)
        if on_error is not None:
            try:
                await on_error(ref, exc)
            except asyncio.CancelledError:
                raise
            except Exception as again:
                report(again, f"{name} (telling about {ref})", kind=kind)
        return None


def report(exc: BaseException, name: str, *, kind: str | None = None) -> str:
    """Log and count one background failure; returns its reference id."""
    ref = reference()
    slack = slack_failure(exc)
    if slack is not None:
        method, error = slack
        if not isinstance(exc, SlackError):  # the messenger counts its own; these did not go through it
            metrics.SLACK_ERRORS.labels(method=method, error=error).inc()
        log.warning("background task %s: Slack %s failed: %s (reference %s)", name, method, error, ref)
    else:
        metrics.BACKGROUND_ERRORS.labels(task=kind or kind_of(name)).inc()
        log.error("background task %s failed: %s: %s (reference %s)", name, type(exc).__name__,
                  str(exc)[:200].replace("\n", " "), ref, exc_info=exc)
    return ref


class Supervisor:
    """Starts background tasks under :func:`guard` and keeps them until they end."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "work", *, kind: str | None = None,
              on_error: OnError | None = None) -> asyncio.Task:
        """Run ``coro`` in the background, supervised; returns its task (which never fails)."""
        task = asyncio.ensure_future(guard(coro, name, kind=kind, on_error=on_error))
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, coro))
        return task

    def _done(self, task: asyncio.Task, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled() and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            coro.close()  # cancelled before it began: it will never run, and is not "never awaited"
        if not task.cancelled() and task.exception() is not None:  # retrieved: guard lets only BaseExceptions out
            log.error("background task %s ended by %r", task.get_name(), task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait, at most ``timeout`` seconds, for running tasks, including those they start meanwhile."""
        deadline = time.monotonic() + timeout
        while self.tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self.tasks), timeout=max(0.01, deadline - time.monotonic()))

    async def cancel(self) -> None:
        """Cancel every running task and wait for them to end."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


#: The supervisor of work that belongs to no longer-lived owner (a progress edit's timer, start-up chores).
BACKGROUND = Supervisor()
