"""Fault rules, as both emulators keep them: the rules a test or the console added, each answering the next
N matching requests (or every one, with no count) until used up or cleared."""

from __future__ import annotations

import threading
from typing import Any, Generic, Protocol, TypeVar


class Rule(Protocol):
    count: int | None

    def matches(self, *request: Any) -> bool: ...


R = TypeVar("R", bound=Rule)


class FaultRules(Generic[R]):
    """The active fault rules, consumed in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[R] = []
        self._lock = threading.Lock()

    def add(self, fault: R) -> R:
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, *request: Any) -> R | None:
        """The first rule matching the request (its rule's ``matches`` arguments), with one use consumed
        (removed when used up)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(*request):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(vars(rule)) for rule in self._rules]
