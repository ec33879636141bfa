"""`python -m bot serve` as the Procfile runs it, and its start-up errors."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bot.chat.server import free_port
from sandbox.slack import SlackEmulator

ROOT = Path(__file__).resolve().parents[2]


def run_bot(args: list[str], env: dict[str, str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_", "PROMETHEUS", "GRAFANA"))}
    env.update(extra)
    return env


def test_serve_refuses_to_start_without_the_token() -> None:
    result = run_bot(["serve"], clean_env(SLACK_SIGNING_SECRET="s"))
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_names_a_malformed_value() -> None:
    result = run_bot(["serve"], clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s",
                                          HELLO_APPROVAL_TTL="half an hour"))
    assert result.returncode == 2
    assert "HELLO_APPROVAL_TTL" in result.stderr


def test_socket_mode_needs_an_app_token() -> None:
    result = run_bot(["serve", "--socket-mode"], clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s"))
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr


async def test_procfile_command_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    (line,) = (ROOT / "Procfile").read_text().splitlines()
    kind, command = line.split(":", 1)
    assert kind == "web"
    port = free_port()
    argv = [sys.executable if a == "python" else a for a in shlex.split(command.replace("$PORT", str(port)))]
    async with SlackEmulator(signing_secret="s", bot_token="xoxb-1") as slack:
        env = clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_API_URL=slack.api_url,
                        KUBECONFIG=str(tmp_path / "none"), PORT="1")
        proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            status = None
            deadline = time.monotonic() + 20
            async with aiohttp.ClientSession() as http:
                while status is None:
                    assert time.monotonic() < deadline, "the bot did not become ready"
                    assert proc.returncode is None, await proc.stderr.read() if proc.stderr else ""
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                            status = r.status if r.status == 200 else None  # 503 while starting
                    except aiohttp.ClientConnectionError:
                        pass
                    if status is None:
                        await asyncio.sleep(0.1)
                assert status == 200
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    assert "hello_chatops_commands_total" in await r.text()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), timeout=20)
        assert code == 0
