"""The chat harness without a cluster: the Slack emulator and one bot replica, for answers that need no cluster."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sanic import Sanic

from bot.chat.app import Dispatcher, build_app
from bot.chat.server import RunningServer, build_server, start_in_loop
from bot.core import config as config_module
from bot.core.services import Services
from bot.wiring import build_services
from sandbox.slack import SlackEmulator

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
_n = itertools.count()


@dataclass
class Bot:
    slack: SlackEmulator
    services: Services
    dispatcher: Dispatcher
    server: RunningServer

    async def send(self, user: str, text: str, channel: str = "C1", **kw):  # type: ignore[no-untyped-def]
        return await self.slack.send_command(user=user, channel=channel, text=text, **kw)


async def start_bot(slack: SlackEmulator, env: dict[str, str]) -> Bot:
    config = config_module.load(env)
    services = build_services(config)
    bolt = build_app(services)
    app = build_server(bolt, name=f"core_test_{next(_n)}")
    server = await start_in_loop(app)
    slack.request_url = f"{server.url}/slack/events"
    return Bot(slack=slack, services=services, dispatcher=bolt.dispatcher, server=server)  # type: ignore[attr-defined]


async def stop_bot(bot: Bot) -> None:
    await bot.dispatcher.drain()
    await bot.server.stop()
    Sanic._app_registry.pop(bot.server.app.name, None)


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN) as emu:
        yield emu


@pytest.fixture
def base_env(slack: SlackEmulator, tmp_path: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "PROMETHEUS_URL": "http://127.0.0.1:9",
        "PROMETHEUS_TIMEOUT": "1",
        "HELLO_DEPLOYERS": "U1",
        "HELLO_APPROVERS": "S1",
    }


@pytest.fixture
async def bot(slack: SlackEmulator, base_env: dict[str, str]) -> AsyncIterator[Bot]:
    b = await start_bot(slack, base_env)
    try:
        yield b
    finally:
        await stop_bot(b)
