"""Waiting in a test for something the system does in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.02) -> Any:
    """Poll ``check()`` (sync or async) every ``every`` seconds until it is truthy and return what it gave;
    fail naming ``what`` after ``timeout`` seconds (a slower poll for checks that query real servers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        assert loop.time() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(every)
