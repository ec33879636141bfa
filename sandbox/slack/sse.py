"""A workspace's changes as Server-Sent Events (``event: <type>`` / ``data: <json>`` per change)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

KEEP_ALIVE_SECONDS = 15


class ChangeStream:
    """Serves ``workspace``'s change events to any number of clients; :meth:`close` ends them all."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        unsubscribe = self.workspace.subscribe(queue.put_nowait)
        self._queues.add(queue)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        })
        try:
            await response.prepare(request)
            hello = json.dumps({"seq": self.workspace.version})
            await response.write(f"event: hello\ndata: {hello}\n\n".encode())
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                data = json.dumps(event, default=str)
                await response.write(f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            unsubscribe()
            self._queues.discard(queue)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    async def close(self, app: web.Application | None = None) -> None:
        """End every open stream (an aiohttp ``on_shutdown`` hook)."""
        for queue in list(self._queues):
            queue.put_nowait(None)
