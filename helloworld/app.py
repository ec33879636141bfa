"""The Sanic application: build it with :func:`create_app`."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from time import perf_counter

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from helloworld.lifecycle import Lifecycle
from helloworld.logs import log_config
from helloworld.metrics import FLUSH_SECONDS, ROUTE_UNMATCHED, Metrics
from helloworld.settings import Settings

APP_NAME = "helloworld"
NAME_MAX_CHARS = 64
API_VERSIONS = ("v1", "v2")

Handler = Callable[[Request], Awaitable[HTTPResponse]]

log = logging.getLogger("sanic.error")

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_API_PREFIX = re.compile(r"^/(v\d+)(?:/|$)")
_PATH_SHOWN = 200


def _error(status: int, message: str, **extra: object) -> HTTPResponse:
    return json_response({"error": message, **extra}, status=status)


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _with_faults(handler: Handler, settings: Settings) -> Handler:
    """Add the configured latency and error share to a hello handler (no-op when both are off)."""
    rate = settings.fault_error_rate
    delay = settings.fault_latency_ms / 1000
    if not rate and not delay:
        return handler
    version = settings.version

    @wraps(handler)
    async def faulty(request: Request) -> HTTPResponse:
        if delay:
            await asyncio.sleep(delay)
        if rate and random.random() < rate:
            return _error(500, "injected fault (HELLO_FAULT_ERROR_RATE)", version=version)
        return await handler(request)

    return faulty


def _instrument(handler: Handler, route: str, lifecycle: Lifecycle, metrics: Metrics | None) -> Handler:
    """Count the request as in flight (for the drain) and, with metrics on, record it."""
    if metrics is None:

        @wraps(handler)
        async def counted(request: Request) -> HTTPResponse:
            lifecycle.inflight += 1
            try:
                return await handler(request)
            finally:
                lifecycle.inflight -= 1
                if lifecycle.draining and not lifecycle.inflight:
                    lifecycle.request_done()

        return counted

    record = metrics.recorder(route).record

    @wraps(handler)
    async def measured(request: Request) -> HTTPResponse:
        lifecycle.inflight += 1
        start = perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except SanicException as exc:
            status = exc.status_code
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer
            raise
        finally:
            lifecycle.inflight -= 1
            if lifecycle.draining and not lifecycle.inflight:
                lifecycle.request_done()
            record(request.method, status, perf_counter() - start)

    return measured


def create_app(settings: Settings) -> Sanic:
    """Build the service's Sanic app.

    Sanic refuses two apps named ``helloworld`` in one process unless ``Sanic.test_mode`` is True.
    In multiprocess metrics mode ``PROMETHEUS_MULTIPROC_DIR`` must be set before this module is
    first imported (``python -m helloworld`` takes care of it).
    """
    app = Sanic(APP_NAME, log_config=log_config(settings.version))
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = max(settings.drain_seconds, 0.5)
    lifecycle = Lifecycle(settings.drain_seconds, escalate=settings.workers == 1)
    lifecycle.install(app)
    metrics = Metrics(settings.version) if settings.metrics_enabled else None
    app.ctx.settings = settings
    app.ctx.lifecycle = lifecycle
    app.ctx.metrics = metrics

    version = settings.version
    pod = socket.gethostname()
    v1_body = json.dumps({"message": "Hello, world!", "version": version}, separators=(",", ":")).encode()

    async def hello_v1(request: Request) -> HTTPResponse:
        return HTTPResponse(v1_body, content_type="application/json")

    async def hello_v2(request: Request) -> HTTPResponse:
        name = request.args.get("name")
        if name is None or not name.strip():
            name = "world"
        elif len(name) > NAME_MAX_CHARS:
            return _error(400, f"name must be at most {NAME_MAX_CHARS} characters, got {len(name)}")
        elif _CONTROL_CHARS.search(name):
            return _error(400, "name must not contain control characters")
        return json_response(
            {"message": f"Hello, {name}!", "version": version, "api": "v2", "pod": pod, "time": _now_rfc3339()}
        )

    async def healthz(request: Request) -> HTTPResponse:
        return json_response({"status": "ok", "version": version})

    async def readyz(request: Request) -> HTTPResponse:
        # in_flight counts this process's requests, this probe included.
        if lifecycle.ready:
            return json_response({"status": "ready", "version": version, "in_flight": lifecycle.inflight})
        state = "draining" if lifecycle.draining else "starting"
        return json_response(
            {"status": state, "version": version, "in_flight": lifecycle.inflight}, status=503
        )

    routes: dict[str, Handler] = {
        "/v1/hello": _with_faults(hello_v1, settings),
        "/v2/hello": _with_faults(hello_v2, settings),
        "/healthz": healthz,
        "/readyz": readyz,
    }
    if metrics is not None:

        async def metrics_page(request: Request) -> HTTPResponse:
            return HTTPResponse(metrics.exposition(), content_type=metrics.content_type)

        routes["/metrics"] = metrics_page

        async def flush_metrics(app: Sanic) -> None:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                metrics.flush()

        async def start_flushing(app: Sanic) -> None:
            app.add_task(flush_metrics(app), name="helloworld-metrics-flush")

        async def final_flush(app: Sanic) -> None:
            metrics.flush()

        app.register_listener(start_flushing, "after_server_start")
        app.register_listener(final_flush, "after_server_stop")

    for path, handler in routes.items():
        app.add_route(_instrument(handler, path, lifecycle, metrics), path, methods=["GET"])

    count = metrics.recorder(ROUTE_UNMATCHED).count if metrics is not None else None

    async def on_error(request: Request, exc: Exception) -> HTTPResponse:
        if isinstance(exc, NotFound):
            response = _not_found(request.path)
        elif isinstance(exc, MethodNotAllowed):
            allowed = sorted(getattr(exc, "allowed_methods", None) or ())
            response = _error(405, f"method {request.method} not allowed", allowed=allowed)
            if allowed:
                response.headers["allow"] = ", ".join(allowed)
        elif isinstance(exc, SanicException):
            response = _error(exc.status_code, str(exc) or type(exc).__name__)
        else:
            log.exception("Unhandled error on %s %s", request.method, request.path[:_PATH_SHOWN])
            response = _error(500, "internal server error")
        if count is not None and getattr(request, "route", None) is None:
            count(request.method, response.status)
        return response

    app.error_handler.add(Exception, on_error)
    return app


def create_served_app(settings: Settings) -> Sanic:
    """:func:`create_app` for a server process (``python -m helloworld`` and its workers)."""
    app = create_app(settings)
    app.ctx.lifecycle.catch_early_signals()
    return app


def _not_found(path: str) -> HTTPResponse:
    shown = path[:_PATH_SHOWN]
    match = _API_PREFIX.match(path)
    if match and match.group(1) not in API_VERSIONS:
        return _error(404, f"unknown API version {match.group(1)}", known=list(API_VERSIONS), path=shown)
    return _error(404, "not found", path=shown)
