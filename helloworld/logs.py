"""Logging configuration: Sanic's defaults, with access lines written as JSON."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sanic.log import LOGGING_CONFIG_DEFAULTS


class JsonAccessFormatter(logging.Formatter):
    """Formats Sanic's access records (``sanic.access``) as one JSON object per line."""

    def __init__(self, version: str = "") -> None:
        super().__init__()
        self.version = version

    def format(self, record: logging.LogRecord) -> str:
        method, _, url = str(getattr(record, "request", "")).partition(" ")
        duration = str(getattr(record, "duration", "")).strip().removesuffix("ms")
        try:
            duration_ms: float | None = float(duration)
        except ValueError:
            duration_ms = None
        size = getattr(record, "byte", 0)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "remote": getattr(record, "host", ""),
            "method": method,
            "url": url,
            "status": getattr(record, "status", 0),
            "bytes": int(size) if str(size).isdigit() else size,
            "duration_ms": duration_ms,
            "version": self.version,
            "pid": record.process,
        }
        return json.dumps(line, separators=(",", ":"))


def log_config(version: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service, passed to ``Sanic(log_config=...)``."""
    config = {key: value for key, value in LOGGING_CONFIG_DEFAULTS.items()}
    config["loggers"] = {name: dict(spec) for name, spec in LOGGING_CONFIG_DEFAULTS["loggers"].items()}
    config["handlers"] = {name: dict(spec) for name, spec in LOGGING_CONFIG_DEFAULTS["handlers"].items()}
    config["formatters"] = {
        **LOGGING_CONFIG_DEFAULTS["formatters"],
        "access": {"()": JsonAccessFormatter, "version": version},
    }
    return config
