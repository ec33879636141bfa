"""One retry policy for Kubernetes API calls (tenacity): transient errors are tried again with backoff.

A 409 Conflict is retried on fresh state (each caller re-reads what it changes); 5xx and 429 answers,
timeouts and unreachable servers are retried with exponential backoff; 404, 403 and 422 are answers,
not accidents, and are raised at once.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.core.errors import ClusterError, Conflict, Forbidden, NotFound

T = TypeVar("T")
RETRY_ATTEMPTS = 5


def transient(exc: BaseException) -> bool:
    """Worth another try: a conflict (re-read and redo), a 5xx/429, a timeout or an unreachable server."""
    if isinstance(exc, Conflict):
        return True
    if isinstance(exc, NotFound | Forbidden) or not isinstance(exc, ClusterError):
        return False
    return exc.status == 0 or exc.status == 429 or exc.status >= 500


async def retry(fn: Callable[..., Awaitable[T]], *args: Any, attempts: int = RETRY_ATTEMPTS, **kwargs: Any) -> T:
    """``await fn(*args, **kwargs)``, retried on :func:`transient` errors with exponential backoff."""
    async for attempt in AsyncRetrying(stop=stop_after_attempt(attempts), reraise=True,
                                       wait=wait_exponential(multiplier=0.05, max=1.0),
                                       retry=retry_if_exception(transient)):
        with attempt:
            return await fn(*args, **kwargs)
    raise AssertionError("unreachable")  # pragma: no cover


def jitter(low: float = 0.0, high: float = 0.02) -> float:
    """A short random pause, so replicas that collided do not collide again."""
    return random.uniform(low, high)
