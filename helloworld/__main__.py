"""``python -m helloworld``: parse flags and environment, prepare metrics storage, serve."""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from functools import partial

from helloworld.settings import Settings, SettingsError, load_settings

EXIT_USAGE = 2
EXIT_NOT_STARTED = 1


def _prepare_metrics_dir(settings: Settings) -> str | None:
    """Set up ``PROMETHEUS_MULTIPROC_DIR``; return a directory this process created (to remove at exit).

    A given directory is created if missing and emptied of stale ``*.db`` files. With several
    workers and none given, a temporary directory is created. One worker with none given keeps its
    metrics in memory.
    """
    if not settings.metrics_enabled:
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        return None
    if settings.workers == 1:
        return None
    created = tempfile.mkdtemp(prefix="helloworld-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    return created


def serve(settings: Settings) -> bool:
    """Run the server until it is stopped; return whether it ever became ready (single process)."""
    # Imported here: prometheus_client must see PROMETHEUS_MULTIPROC_DIR at its first import.
    from prometheus_client import disable_created_metrics
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from helloworld.app import create_served_app

    disable_created_metrics()
    if settings.workers == 1:
        app = create_served_app(settings)
        app.prepare(
            host=settings.host,
            port=settings.port,
            access_log=settings.access_log,
            single_process=True,
            motd=False,
        )
        Sanic.serve_single(app)
        return bool(app.ctx.lifecycle.started)
    loader = AppLoader(factory=partial(create_served_app, settings))
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=settings.access_log,
        motd=False,
    )
    Sanic.serve(primary=app, app_loader=loader)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    try:
        settings = load_settings(argv, os.environ)
    except SettingsError as exc:
        print(f"helloworld: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    created = _prepare_metrics_dir(settings)
    try:
        started = serve(settings)
    except OSError as exc:
        print(f"helloworld: error: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return EXIT_NOT_STARTED
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
    if not started:
        print(f"helloworld: error: could not serve on {settings.host}:{settings.port}", file=sys.stderr)
        return EXIT_NOT_STARTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
