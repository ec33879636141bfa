"""Slack's Web API rate limits and fault rules: what answers HTTP 429 (or a 5xx page) before a method runs.

Slack limits every Web API method "per API method per workspace per app" by tier (Tier 1: 1+ per
minute, Tier 2: 20+, Tier 3: 50+, Tier 4: 100+), tolerates short bursts above the rate, and limits
``chat.postMessage`` to about one message per second per channel, "short bursts >1 allowed". A call
past its limit answers HTTP 429 with ``Retry-After`` (whole seconds) and ``{"ok": false, "error":
"ratelimited"}``, and changes nothing.

The emulator models each limit as a token bucket: ``burst`` calls may go at once, and the bucket
refills at the documented rate. :data:`DOCUMENTED` holds the tier of each method the emulator serves,
from the method's reference page.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limit:
    """``per_minute`` calls a minute on average, ``burst`` of them at once; ``key`` names the argument
    that gives each value its own bucket (``channel`` for ``chat.postMessage``), None one bucket."""

    label: str
    per_minute: float
    burst: int
    key: str | None = None


# Bursts: Slack tolerates "a small amount of burst" on Tier 1, "occasional bursts" on Tier 2,
# "sporadic bursts" on Tier 3 and "generous burst behavior" on Tier 4; the emulator lets a Tier 2-4
# method spend its whole minute's allowance at once, a Tier 1 method three calls.
TIER_1 = Limit("Tier 1", 1, 3)
TIER_2 = Limit("Tier 2", 20, 20)
TIER_3 = Limit("Tier 3", 50, 50)
TIER_4 = Limit("Tier 4", 100, 100)
# "1 per second, short bursts >1 allowed" per channel; bursts of 30-odd messages are observed to pass.
POST_MESSAGE = Limit("special: 1 per second per channel", 60, 30, key="channel")

DOCUMENTED: dict[str, Limit] = {
    "api.test": TIER_4,
    "auth.test": TIER_4,  # "special"; generous in practice
    "chat.postMessage": POST_MESSAGE,
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.delete": TIER_3,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
    "users.info": TIER_4,
    "usergroups.users.list": TIER_2,
    "conversations.info": TIER_3,
    "views.open": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "views.publish": TIER_4,
    "apps.connections.open": TIER_1,
}


class Bucket:
    """A token bucket: ``capacity`` tokens, refilled at ``rate`` tokens a second."""

    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = float(capacity)
        self.at = now

    def take(self, now: float) -> float:
        """Spend a token and return 0, or return the seconds until one is there (nothing spent)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimits:
    """The emulator's rate limiter: documented limits by method (``limits``), on or off (``enabled``).

    ``clock`` (seconds, monotonic) lets a test advance time instead of sleeping.
    """

    def __init__(self, limits: dict[str, Limit] | None = None, *, enabled: bool = True,
                 clock: Clock = time.monotonic) -> None:
        self.limits = dict(DOCUMENTED if limits is None else limits)
        self.enabled = enabled
        self.clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def check(self, method: str, key: str = "") -> int | None:
        """None when the call may go on (one token spent), else ``Retry-After`` in whole seconds."""
        limit = self.limits.get(method)
        if not self.enabled or limit is None:
            return None
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get((method, key))
            if bucket is None:
                bucket = self._buckets[(method, key)] = Bucket(limit.burst, limit.per_minute / 60, now)
            wait = bucket.take(now)
        return None if wait == 0 else max(1, math.ceil(wait))

    def follow(self, clock: Clock) -> None:
        """Measure time by ``clock`` from now on (a simulated day's, say), with full buckets."""
        with self._lock:
            self.clock = clock
            self._buckets.clear()

    def reset(self) -> None:
        """Full buckets again, as after a quiet while."""
        with self._lock:
            self._buckets.clear()

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled,
                "limits": {m: {"label": lim.label, "per_minute": lim.per_minute, "burst": lim.burst,
                               **({"per": lim.key} if lim.key else {})} for m, lim in sorted(self.limits.items())}}


@dataclass
class Fault:
    """Answer the next ``count`` calls of ``method`` (None or ``"*"``: any method; ``"upload"``: the file
    upload URL) with ``status``: 429 ``ratelimited`` with ``Retry-After: retry_after``, or a 5xx HTML
    page as Slack's edge sends it (``error`` set: a JSON ``{"ok": false, "error": error}`` instead).
    ``count`` None means every call until the rules are cleared."""

    method: str | None = None
    status: int = 429
    count: int | None = 1
    retry_after: int | float | str = 1  # whole seconds, decimal seconds, or an HTTP-date
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status != 429 and not 500 <= self.status <= 599:
            raise ValueError("a fault answers 429 or a 5xx status")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1 (or None for every call)")

    def matches(self, method: str) -> bool:
        return self.method in (None, "*", method)


class RateLimitLog:
    """Every 429 the emulator answered (by limit or by fault rule), newest last, for the state page."""

    def __init__(self, keep: int = 50) -> None:
        self.count = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)

    def record(self, method: str, key: str, retry_after: int, source: str) -> dict[str, Any]:
        self.count += 1
        entry = {"method": method, "key": key, "retry_after": retry_after, "source": source, "at": time.time()}
        self.recent.append(entry)
        return entry

    def line(self) -> str:
        """One sentence for a person: how often the app was rate-limited, and the last time."""
        if not self.count:
            return "The app has not been rate-limited."
        last = self.recent[-1]
        where = f" in {last['key']}" if last["key"] else ""
        stamp = time.strftime("%H:%M:%S", time.localtime(last["at"]))
        times = "once" if self.count == 1 else f"{self.count} times"
        return (f"The app was rate-limited {times}; last: {last['method']}{where} at {stamp}, "
                f"Retry-After {last['retry_after']} s" + (" (fault rule)" if last["source"] == "fault" else ""))

    def snapshot(self) -> dict[str, Any]:
        return {"count": self.count, "recent": list(self.recent), "line": self.line()}
