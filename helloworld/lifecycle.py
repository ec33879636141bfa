"""Readiness and graceful drain.

Sanic stops its server as soon as SIGTERM arrives. This service instead turns ``/readyz`` to 503 at
once, keeps serving while requests are in flight (up to the drain grace), then stops the server the
way Sanic does, so a rolling update loses no request. SIGINT (what Sanic's worker manager sends its
workers when the main process gets SIGTERM) is treated the same. In a single process a second signal
stops at once; a worker ignores it, since its manager escalates (it kills workers on a second signal)
and a signal sent to the whole process group reaches a worker twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from sanic import Sanic

log = logging.getLogger("sanic.server")


class Lifecycle:
    """Readiness flag, in-flight request count and the drain that follows a stop signal."""

    def __init__(self, drain_seconds: float, *, escalate: bool = True) -> None:
        self.drain_seconds = drain_seconds
        self.escalate = escalate
        self.stopping = False
        self.stop_requested = False
        self.idle = asyncio.Event()
        """Set when the last in-flight request ends during a drain (see :meth:`request_done`)."""
        self.ready = False
        self.draining = False
        self.inflight = 0
        self.started = False
        self._task: asyncio.Task[None] | None = None

    def request_done(self) -> None:
        """Called by the request wrapper when it has decremented :attr:`inflight` to 0 while draining."""
        self.idle.set()

    def catch_early_signals(self) -> None:
        """Remember a stop signal that arrives while the server is still starting.

        Without this, SIGINT raises KeyboardInterrupt in a starting worker and the worker manager
        waits for an acknowledgement that never comes. Installed only in server processes.
        """

        def remember(signum: int, frame: object) -> None:
            self.stop_requested = True

        signal.signal(signal.SIGTERM, remember)
        signal.signal(signal.SIGINT, remember)

    def install(self, app: Sanic) -> None:
        """Register the listeners that flip readiness and take over SIGTERM/SIGINT."""
        app.register_listener(self._after_start, "after_server_start")
        app.register_listener(self._before_stop, "before_server_stop")

    async def _after_start(self, app: Sanic) -> None:
        loop = asyncio.get_running_loop()
        # Sanic has just installed its own handlers (stop at once); ours replace them.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.begin_drain, app, loop)
        self.started = True
        self.ready = True
        log.info("helloworld worker ready [%d]", os.getpid())
        if self.stop_requested:
            self.begin_drain(app, loop)

    async def _before_stop(self, app: Sanic) -> None:
        self.ready = False

    def begin_drain(self, app: Sanic, loop: asyncio.AbstractEventLoop) -> None:
        """Stop being ready, then stop the server once in-flight requests are done or the grace ends."""
        if self.draining:
            if self.escalate and not self.stopping:
                log.info("Second stop signal: stopping now")
                self._stop(app)
            return
        self.draining = True
        self.ready = False
        log.info("Stop signal: draining %d in-flight request(s), grace %.1fs", self.inflight, self.drain_seconds)
        self._task = loop.create_task(self._drain(app, loop))

    async def _drain(self, app: Sanic, loop: asyncio.AbstractEventLoop) -> None:
        deadline = loop.time() + self.drain_seconds
        if self.inflight > 0:
            try:
                await asyncio.wait_for(self.idle.wait(), self.drain_seconds)
            except TimeoutError:
                pass
        if self.inflight > 0:
            log.warning("Drain grace over with %d request(s) in flight", self.inflight)
        # What is left (a request that arrived just now) gets Sanic's own graceful shutdown.
        app.config.GRACEFUL_SHUTDOWN_TIMEOUT = max(deadline - loop.time(), 0.5)
        loop.call_soon(self._stop, app)

    def _stop(self, app: Sanic) -> None:
        if not self.stopping:
            self.stopping = True
            app.stop(terminate=False)
