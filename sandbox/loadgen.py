"""A small, bounded load generator: a service's clients, sending every request to the sandbox's proxy.

Every request goes to the service's HAProxy frontend (:mod:`sandbox.haproxy`), which picks the stable or
the canary process by the weights the routes give them (:mod:`sandbox.gateway`), so the charts and the
canary judge see the split a real proxy made. The answer's ``X-Sandbox-Track`` header says which track
served it (counted in :attr:`LoadGenerator.answered`). The rate comes from ``HELLO_SANDBOX_RPS`` (default 5
requests per second) and at most ``max_in_flight`` requests are outstanding at any time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import Counter
from collections.abc import Mapping

import aiohttp

from bot.core.tasks import cancel
from sandbox.haproxy import TRACK_HEADER

log = logging.getLogger(__name__)

RPS_VARIABLE = "HELLO_SANDBOX_RPS"
DEFAULT_RPS = 5.0
MAX_RPS = 200.0
PATHS = ("/v1/hello", "/v2/hello", "/v2/hello?name=sandbox")


def rps_from_env(env: Mapping[str, str] | None = None) -> float:
    """``HELLO_SANDBOX_RPS`` as a number between 0 and 200 (default 5); raises ValueError when invalid."""
    raw = (os.environ if env is None else env).get(RPS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_RPS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{RPS_VARIABLE} must be a number of requests per second, got {raw!r}") from None
    if not 0 <= value <= MAX_RPS:
        raise ValueError(f"{RPS_VARIABLE} must be between 0 and {MAX_RPS:g}, got {raw!r}")
    return value


class LoadGenerator:
    """Sends ``rps`` requests per second to ``url`` (the service's proxy frontend)."""

    def __init__(
        self,
        url: str,
        *,
        rps: float | None = None,
        max_in_flight: int = 20,
        timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.rps = rps_from_env() if rps is None else rps
        self.timeout = timeout
        self.rng = rng or random.Random()
        self.sent = 0
        self.answered: Counter[tuple[str, int]] = Counter()  # (track that served it, or "", HTTP status)
        self.failed = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def served(self) -> dict[str, int]:
        """Answered requests by the track that served them (``""``: the proxy answered itself, e.g. 503)."""
        by_track: Counter[str] = Counter()
        for (track, _status), count in self.answered.items():
            by_track[track] += count
        return dict(by_track)

    async def start(self) -> LoadGenerator:
        if self.rps > 0 and self._task is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._task = asyncio.create_task(self._run(), name="sandbox-load")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        for task in list(self._requests):
            task.cancel()
        if self._requests:
            await asyncio.gather(*self._requests, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rps
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > 1.0:  # fell behind (suspended laptop): do not burst
                next_at = loop.time()
            if self._slots.locked():
                continue
            await self._slots.acquire()
            task = asyncio.create_task(self._one())
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _one(self) -> None:
        try:
            self.sent += 1
            assert self._session is not None
            async with self._session.get(self.url + self.rng.choice(PATHS)) as response:
                await response.read()
                self.answered[(response.headers.get(TRACK_HEADER, ""), response.status)] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.failed += 1
        finally:
            self._slots.release()
