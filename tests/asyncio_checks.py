"""asyncio's debug checks for the chat tests: a task whose exception nobody retrieved fails the test.

asyncio reports such a task only when it is garbage-collected ("Task exception was never retrieved",
through the loop's exception handler, which logs it on the ``asyncio`` logger). :class:`UnretrievedWatch`
listens on both the loop's handler and the logger, and collects garbage before it reads what it heard;
with ``debug`` it also turns on the loop's debug mode, so the report says where the task was created.
The conftests of the chat tests (tests/core, tests/chat, tests/release, tests/observe/schedule) import
:func:`no_unretrieved_task_exceptions`, an autouse fixture that fails any test of theirs that left one.

The fixture leaves debug mode off: it records a stack for every callback, future and task, which made
the chat tests take half as long again in CPU. To see where a reported task was created, run the tests
with ``PYTHONASYNCIODEBUG=1`` (asyncio's own switch; the watch keeps a loop's debug mode as it finds it).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

NEVER_RETRIEVED = "exception was never retrieved"


class UnretrievedWatch(logging.Handler):
    """Hears every "exception was never retrieved" of a loop (and of any loop, through the logger)."""

    def __init__(self, *, debug: bool = True) -> None:
        super().__init__(level=logging.ERROR)
        self.debug = debug
        self.found: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        self._debug = False

    def emit(self, record: logging.LogRecord) -> None:
        if NEVER_RETRIEVED in record.getMessage():
            self.found.append(self.format(record))

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if NEVER_RETRIEVED in message:
            future = context.get("future") or context.get("task")
            self.found.append(f"{message}: {future!r}: {context.get('exception')!r}")
            return  # heard here; not logged a second time
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._debug = loop.get_debug()
        loop.set_debug(self.debug or self._debug)
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_error)
        logging.getLogger("asyncio").addHandler(self)

    def stop(self) -> list[str]:
        """Collect garbage (where unretrieved exceptions are reported), stop listening; what was heard."""
        gc.collect()
        logging.getLogger("asyncio").removeHandler(self)
        if self._loop is not None:
            self._loop.set_exception_handler(self._previous)
            self._loop.set_debug(self._debug)
            self._loop = None
        return list(self.found)


@pytest.fixture(autouse=True)
async def no_unretrieved_task_exceptions(request: pytest.FixtureRequest) -> AsyncIterator[UnretrievedWatch]:
    """Fails the test if a task it ran ended with an exception that nobody retrieved.

    Without debug mode (see the module's docstring). A test marked ``asyncio_debug_off`` (one whose
    assertions depend on how fast the bot is next to the emulators) runs without it even under
    ``PYTHONASYNCIODEBUG=1``; it is checked all the same. A test that is not a coroutine runs no task on
    this loop, so it is not watched (a garbage collection per test is most of a quick test's time).
    """
    watch = UnretrievedWatch(debug=False)
    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        yield watch
        return
    loop = asyncio.get_running_loop()
    if request.node.get_closest_marker("asyncio_debug_off") is not None:
        loop.set_debug(False)
    watch.start(loop)
    try:
        yield watch
    finally:
        found = watch.stop()
    if found:
        pytest.fail("a background task's exception was never retrieved:\n" + "\n".join(found), pytrace=False)
