"""``python -m sandbox.slack`` runs the emulator standalone and prints its API URL."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]


async def test_standalone_process_serves_the_api() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.slack",
        "--port",
        "0",
        "--bot-token",
        "xoxb-cli",
        "--signing-secret",
        "s",
        "--request-url",
        "http://127.0.0.1:9/slack/events",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            line = (await proc.stdout.readline()).decode().strip()
        assert line.startswith("http://127.0.0.1:") and line.endswith("/api/")
        resp = await AsyncWebClient(token="xoxb-cli", base_url=line).auth_test()
        assert resp["user_id"] == "UBOT"
    finally:
        proc.terminate()
        await proc.wait()


def test_rate_limits_flag() -> None:
    from sandbox.slack.__main__ import parse_args

    assert parse_args([]).rate_limits == "documented"
    assert parse_args(["--rate-limits", "off"]).rate_limits == "off"
