"""Stalls: a release whose driver waits on the cluster says so in its message after ``after`` seconds, whatever
the cause (no answer from a slow API server, conflicts that keep its writes from landing, errors).

The driver marks each wait on the cluster with :meth:`Stalls.watch` (storing its progress, doing a step that
should take moments); :meth:`Stalls.look`, called every second beside the driver, gives the oldest wait that
has lasted ``after`` seconds, so the driver can note it as the release's problem (its message's edits never
wait on Slack) and drop the note when the wait is over. Steps that wait by nature (a rollout, an issuance,
an analysis, a person, a bake window) report their own waits and are not watched.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Stall:
    """``what`` has waited on the cluster for ``seconds``."""

    what: str
    seconds: float

    @property
    def text(self) -> str:
        """The release's problem while it lasts (the message adds since when)."""
        return f"{self.what} waits on the cluster (slow answers or refused writes)"


class Stalls:
    """The driver's waits on the cluster now; ``clock`` is monotonic seconds."""

    def __init__(self, *, after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.after = after
        self.clock = clock
        self._waits: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count()

    @contextlib.contextmanager
    def watch(self, what: str) -> Iterator[None]:
        """Mark the block as a wait on the cluster for ``what`` (a phrase: "storing the release's progress")."""
        key = next(self._ids)
        self._waits[key] = (what, self.clock())
        try:
            yield
        finally:
            self._waits.pop(key, None)

    def look(self) -> Stall | None:
        """The oldest wait that has lasted ``after`` seconds, if any."""
        if not self._waits:
            return None
        what, since = min(self._waits.values(), key=lambda wait: wait[1])
        seconds = self.clock() - since
        return Stall(what, seconds) if seconds >= self.after else None
