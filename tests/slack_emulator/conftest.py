"""Fixtures: a started emulator, an official AsyncWebClient pointed at it, and a signature-checking app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.api_url)


@dataclass
class Received:
    verified: bool
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.form["payload"])


@dataclass
class Recorder:
    """A tiny app that checks Slack signatures with slack_sdk's verifier and records what came in."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], web.Response] = lambda r: web.Response(status=200)


@pytest.fixture
async def recorder(emu: SlackEmulator) -> AsyncIterator[Recorder]:
    rec = Recorder()
    verifier = SignatureVerifier(SECRET)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        item = Received(
            verified=verifier.is_valid_request(body, dict(request.headers)),
            headers=dict(request.headers),
            body=body,
            form=dict(parse_qsl(body.decode(), keep_blank_values=True)),
        )
        rec.received.append(item)
        if not item.verified:
            return web.Response(status=401, text="invalid signature")
        return rec.answer(item)

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/slack/events"
    emu.request_url = rec.url
    yield rec
    await runner.cleanup()
