"""A small, bounded load generator that splits traffic the way Emissary does.

Every request goes to the stable or the canary helloworld process, chosen by the weights of the two
Mappings in the emulated cluster (read afresh for every request), so the charts show the canary's
share of the traffic. The rate comes from ``HELLO_SANDBOX_RPS`` (default 5 requests per second) and
at most ``max_in_flight`` requests are outstanding at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

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


def canary_share(stable_weight: int | None, canary_weight: int | None, *, canary_route: bool = True) -> float:
    """The canary's share of traffic (0..1) under Emissary's rule for Mappings with the same prefix.

    Explicit weights are percentages; the Mappings without one split what is left evenly. Without a
    canary Mapping the canary gets nothing.
    """
    if not canary_route:
        return 0.0
    explicit = sum(w for w in (stable_weight, canary_weight) if w is not None)
    rest = max(0, 100 - explicit)
    unweighted = [w for w in (stable_weight, canary_weight) if w is None]
    canary = canary_weight if canary_weight is not None else rest / len(unweighted)
    total = explicit + (rest if unweighted else 0)
    if total <= 0:
        return 0.0
    return max(0.0, min(1.0, canary / total))


def mapping_weights(kube: Any, namespace: str = "hello", stable: str = "helloworld",
                    canary: str = "helloworld-canary") -> float:
    """The canary's share of traffic according to the two Mappings stored in the emulator."""
    stable_map = kube.get("getambassador.io", "v3alpha1", "mappings", namespace, stable)
    canary_map = kube.get("getambassador.io", "v3alpha1", "mappings", namespace, canary)

    def weight(mapping: Mapping[str, Any] | None) -> int | None:
        if not mapping:
            return None
        value = (mapping.get("spec") or {}).get("weight")
        return None if value is None else int(value)

    return canary_share(weight(stable_map), weight(canary_map), canary_route=canary_map is not None)


class LoadGenerator:
    """Sends ``rps`` requests per second to ``endpoints()``, ``share()`` of them to the canary."""

    def __init__(
        self,
        endpoints: Callable[[], Mapping[str, str]],
        share: Callable[[], float],
        *,
        rps: float | None = None,
        max_in_flight: int = 20,
        timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.share = share
        self.rps = rps_from_env() if rps is None else rps
        self.timeout = timeout
        self.rng = rng or random.Random()
        self.sent: Counter[str] = Counter()
        self.answered: Counter[tuple[str, int]] = Counter()
        self.failed: Counter[str] = Counter()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def choose(self) -> tuple[str, str] | None:
        """(track, base URL) for the next request, or None when no process serves."""
        live = dict(self.endpoints())
        if not live:
            return None
        if "canary" in live and "stable" in live:
            track = "canary" if self.rng.random() < self.share() else "stable"
        else:
            track = next(iter(live))
        return track, live[track]

    async def start(self) -> LoadGenerator:
        if self.rps > 0 and self._task is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._task = asyncio.create_task(self._run(), name="sandbox-load")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
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
            picked = self.choose()
            if picked is None or self._slots.locked():
                continue
            await self._slots.acquire()
            task = asyncio.create_task(self._one(*picked))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _one(self, track: str, base: str) -> None:
        try:
            self.sent[track] += 1
            assert self._session is not None
            async with self._session.get(base + self.rng.choice(PATHS)) as response:
                await response.read()
                self.answered[(track, response.status)] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.failed[track] += 1  # a process stopping between choice and connect; the next one goes elsewhere
        finally:
            self._slots.release()
