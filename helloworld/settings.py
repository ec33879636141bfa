"""Start-up settings: one frozen dataclass, read once from the command line and the environment."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_VERSION = "v1"
DEFAULT_DRAIN_SECONDS = 10.0
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}

ENV_HELP = """\
environment:
  HELLO_VERSION             release reported by every route and metric (default v1), e.g. v2 or v2.1.0
  HELLO_DRAIN_SECONDS       grace for in-flight requests after SIGTERM (default 10); --drain wins
  HELLO_METRICS             on|off: serve /metrics and record request metrics (default on)
  HELLO_FAULT_ERROR_RATE    0..1: share of hello requests answered 500 (default 0, off)
  HELLO_FAULT_LATENCY_MS    >= 0: latency added to every hello request (default 0, off)
  PROMETHEUS_MULTIPROC_DIR  metrics directory shared by the workers; with --workers > 1 and none
                            given, a temporary one is created and removed on exit

An invalid value stops start-up with exit code 2 and a message naming the variable.
"""


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the flag or variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service needs to start; build with :func:`load_settings` or directly."""

    version: str = DEFAULT_VERSION
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    access_log: bool = False
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    metrics_enabled: bool = True
    fault_error_rate: float = 0.0
    fault_latency_ms: float = 0.0

    def __post_init__(self) -> None:
        if not _VERSION_RE.match(self.version):
            raise SettingsError(
                f"HELLO_VERSION must be 1-64 characters of letters, digits and . _ + -, got {self.version!r}"
            )
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"--port must be between 0 and 65535, got {self.port}")
        if self.workers < 1:
            raise SettingsError(f"--workers must be at least 1, got {self.workers}")
        if not (math.isfinite(self.drain_seconds) and self.drain_seconds >= 0):
            raise SettingsError(f"HELLO_DRAIN_SECONDS / --drain must be >= 0, got {self.drain_seconds}")
        if not (math.isfinite(self.fault_error_rate) and 0 <= self.fault_error_rate <= 1):
            raise SettingsError(
                f"HELLO_FAULT_ERROR_RATE must be a number from 0 to 1, got {self.fault_error_rate}"
            )
        if not (math.isfinite(self.fault_latency_ms) and self.fault_latency_ms >= 0):
            raise SettingsError(f"HELLO_FAULT_LATENCY_MS must be a number >= 0, got {self.fault_latency_ms}")


def _env_float(env: Mapping[str, str], name: str, default: float, rule: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {rule}, got {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be {rule}, got {raw!r}")
    return value


def _env_switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise SettingsError(f"{name} must be on or off, got {env[name]!r}")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m helloworld``."""
    parser = argparse.ArgumentParser(
        prog="python -m helloworld",
        description="Hello-world HTTP service: /v1/hello, /v2/hello, /healthz, /readyz, /metrics.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on (default 8080)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; > 1 shares metrics on disk)"
    )
    parser.add_argument(
        "--access-log", action="store_true", help="write one JSON line per request to stdout (default off)"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=None,
        metavar="SECONDS",
        help="after SIGTERM, how long in-flight requests may take before the process exits "
        "(default: HELLO_DRAIN_SECONDS or 10)",
    )
    return parser


def load_settings(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """Parse ``argv`` and ``env`` into :class:`Settings`.

    Raises :class:`SettingsError` for an invalid environment value; argparse itself exits with
    code 2 for a bad flag.
    """
    args = build_parser().parse_args(argv)
    drain = args.drain
    if drain is None:
        drain = _env_float(env, "HELLO_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS, "a number of seconds >= 0")
    return Settings(
        version=env.get("HELLO_VERSION", "").strip() or DEFAULT_VERSION,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
        drain_seconds=drain,
        metrics_enabled=_env_switch(env, "HELLO_METRICS", True),
        fault_error_rate=_env_float(env, "HELLO_FAULT_ERROR_RATE", 0.0, "a number from 0 to 1"),
        fault_latency_ms=_env_float(env, "HELLO_FAULT_LATENCY_MS", 0.0, "a number >= 0"),
    )
