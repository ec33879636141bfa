"""The one retry policy (on tenacity): what is worth another try, and how long to wait before it.

:func:`transient` decides for every dependency: a Kubernetes 409 Conflict is tried again on fresh
state (each caller re-reads what it changes); 5xx and 429 answers, timeouts and unreachable servers
are tried again after a pause; 404, 403 and 422 are answers, not accidents, and are raised at once.
Slack's server errors and connection problems count as transient too; its refusals do not.

:func:`retry` calls a coroutine function until it succeeds (or its result satisfies ``until``), with
the pauses of a :class:`Backoff`: exponential, capped, and tried a bounded number of times or for a
bounded time. The Kubernetes wrapper, the compare-and-swap store, the release engine, the scheduler's
posts and the alert cards all retry through it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_base,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bot.core.errors import ClusterError, Conflict, Forbidden, NotFound, SlackError

T = TypeVar("T")
RETRY_ATTEMPTS = 5

# Slack's error codes for its own trouble (its refusals, like ``not_in_channel``, are answers)
TRANSIENT_SLACK = frozenset({"fatal_error", "internal_error", "service_unavailable", "request_timeout",
                             "ratelimited", "unknown_error"})


def transient(exc: BaseException) -> bool:
    """Worth another try: a conflict (re-read and redo), a 5xx/429, a timeout or an unreachable server;
    from Slack, a server error or a connection problem (reported by its exception's name)."""
    if isinstance(exc, SlackError):
        return exc.error in TRANSIENT_SLACK or exc.error.startswith("http_5") or any(c.isupper() for c in exc.error)
    if isinstance(exc, Conflict):
        return True
    if isinstance(exc, NotFound | Forbidden) or not isinstance(exc, ClusterError):
        return False
    return exc.status == 0 or exc.status == 429 or exc.status >= 500


def conflict(exc: BaseException) -> bool:
    """Someone else wrote first (409): read again and decide again."""
    return isinstance(exc, Conflict)


def outage(exc: BaseException) -> bool:
    """Transient but not a conflict: the other side is away or overloaded, so time is what helps."""
    return transient(exc) and not conflict(exc)


def never(exc: BaseException) -> bool:
    """No error is worth another try (for :func:`retry` with ``until``: only the result is waited on)."""
    return False


def jitter(low: float = 0.0, high: float = 0.02) -> float:
    """A short random pause, so replicas that collided do not collide again."""
    return random.uniform(low, high)


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """The pauses between tries: ``first``, ``first × factor``, … never more than ``most`` seconds, each
    plus up to ``spread`` seconds at random; at most ``attempts`` tries in all (``None``: no limit) and no
    new try once ``patience`` seconds have passed since the first (``None``: no limit)."""

    first: float = 0.05
    most: float = 1.0
    factor: float = 2.0
    spread: float = 0.0
    attempts: int | None = RETRY_ATTEMPTS
    patience: float | None = None

    def stop(self) -> stop_base:
        """The policy's end as tenacity's stop condition."""
        stops: list[stop_base] = []
        if self.attempts is not None:
            stops.append(stop_after_attempt(self.attempts))
        if self.patience is not None:
            stops.append(stop_after_delay(self.patience))
        return stop_any(*stops)

    def wait(self) -> wait_base:
        """The policy's pauses as tenacity's wait strategy."""
        wait: wait_base = wait_exponential(multiplier=self.first, exp_base=self.factor, max=self.most)
        return wait + wait_random(0, self.spread) if self.spread else wait


CLUSTER = Backoff()  # a Kubernetes API call: 5 tries, 0.05 s doubling to at most 1 s
CONFLICTS = Backoff(first=0.002, most=0.1, spread=0.05, attempts=400)  # compare-and-swap: re-read soon, spread
# apart so that many writers of one object (a popular lock) all get through


async def retry(fn: Callable[..., Awaitable[T]], *args: Any, backoff: Backoff = CLUSTER,
                when: Callable[[BaseException], bool] = transient, until: Callable[[T], bool] | None = None,
                on_retry: Callable[[BaseException | None], Awaitable[None]] | None = None,
                sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> T:
    """``await fn(*args)``, tried again after an error for which ``when`` says so, or (with ``until``)
    after a result that does not satisfy ``until``, as ``backoff`` allows.

    When the tries are spent, the last error is raised, or the last (unsatisfying) result returned.
    ``on_retry`` is awaited before each pause with the error (``None`` after a result); it may raise
    (the error it was given, say) to stop trying. ``sleep`` waits (injectable: a test's simulated clock).
    """
    condition: retry_base = retry_if_exception(when)
    if until is not None:
        condition = condition | retry_if_result(lambda result: not until(result))

    async def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None:
            assert state.outcome is not None
            await on_retry(state.outcome.exception() if state.outcome.failed else None)

    def spent(state: RetryCallState) -> T:
        assert state.outcome is not None
        return state.outcome.result()  # raises the last error, or gives the last result

    retrying = AsyncRetrying(stop=backoff.stop(), wait=backoff.wait(), retry=condition, sleep=sleep,
                             before_sleep=before_sleep, retry_error_callback=spent)
    return await retrying(fn, *args)
