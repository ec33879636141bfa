"""Settings from flags and environment; invalid values stop start-up with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helloworld.settings import Settings, SettingsError, load_settings

from .conftest import PROJECT_ROOT


def test_defaults() -> None:
    settings = load_settings([], {})
    assert settings == Settings()
    assert settings.version == "v1"
    assert settings.drain_seconds == 10
    assert settings.metrics_enabled is True
    assert settings.fault_error_rate == 0
    assert settings.fault_latency_ms == 0


def test_flags_and_environment() -> None:
    env = {
        "HELLO_VERSION": "v2.1.0",
        "HELLO_DRAIN_SECONDS": "3",
        "HELLO_METRICS": "off",
        "HELLO_FAULT_ERROR_RATE": "0.25",
        "HELLO_FAULT_LATENCY_MS": "40",
    }
    settings = load_settings(["--host", "0.0.0.0", "--port", "9000", "--workers", "3", "--access-log"], env)
    assert settings == Settings(
        version="v2.1.0",
        host="0.0.0.0",
        port=9000,
        workers=3,
        access_log=True,
        drain_seconds=3,
        metrics_enabled=False,
        fault_error_rate=0.25,
        fault_latency_ms=40,
    )


def test_drain_flag_wins_over_environment() -> None:
    assert load_settings(["--drain", "1.5"], {"HELLO_DRAIN_SECONDS": "7"}).drain_seconds == 1.5


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("HELLO_FAULT_ERROR_RATE", "1.5"),
        ("HELLO_FAULT_ERROR_RATE", "abc"),
        ("HELLO_FAULT_ERROR_RATE", "-1"),
        ("HELLO_FAULT_ERROR_RATE", "nan"),
        ("HELLO_FAULT_LATENCY_MS", "-1"),
        ("HELLO_FAULT_LATENCY_MS", "abc"),
        ("HELLO_FAULT_LATENCY_MS", "inf"),
        ("HELLO_DRAIN_SECONDS", "-2"),
        ("HELLO_METRICS", "maybe"),
        ("HELLO_VERSION", "v2 beta"),
    ],
)
def test_invalid_environment_is_refused_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings([], {variable: raw})


def _run_service(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "helloworld", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=PROJECT_ROOT,
    )


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("HELLO_FAULT_ERROR_RATE", "1.5"), ("HELLO_FAULT_ERROR_RATE", "abc"), ("HELLO_FAULT_LATENCY_MS", "-1")],
)
def test_start_up_refused_with_exit_code_2_and_no_traceback(variable: str, raw: str) -> None:
    result = _run_service({variable: raw})
    assert result.returncode == 2
    assert variable in result.stderr
    assert raw in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_flag_is_refused_with_exit_code_2() -> None:
    result = _run_service({}, "--workers", "zero")
    assert result.returncode == 2
    assert "--workers" in result.stderr
