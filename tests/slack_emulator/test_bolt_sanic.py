"""The same Bolt flow served by Sanic through Bolt's Sanic adapter, as the bot serves it."""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator

import pytest
from sanic import Sanic
from sanic.request import Request
from slack_bolt.adapter.sanic import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

SECRET = "sanic-signing-secret"
TOKEN = "xoxb-sanic-token"
_names = itertools.count()


@pytest.fixture
async def emu_with_sanic() -> AsyncIterator[SlackEmulator]:
    Sanic.test_mode = True
    async with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN) as emu:
        bolt = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=emu.api_url))

        @bolt.command("/hello")
        async def hello(ack, client, command) -> None:
            await ack("hi")
            await client.chat_postMessage(channel=command["channel_id"], text=f"hello <@{command['user_id']}>")

        handler = AsyncSlackRequestHandler(bolt)
        web = Sanic(f"slack_emulator_test_{next(_names)}")

        @web.post("/slack/events")
        async def events(request: Request):
            return await handler.handle(request)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = await web.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        assert server is not None
        await server.startup()
        await server.start_serving()
        emu.request_url = f"http://127.0.0.1:{port}/slack/events"
        try:
            yield emu
        finally:
            await server.close()
            await server.wait_closed()
            sock.close()


async def test_sanic_served_bolt_app(emu_with_sanic: SlackEmulator) -> None:
    emu = emu_with_sanic
    reply = await emu.send_command(user="U1", channel="C2", text="")
    assert reply.status == 200
    assert [e.text for e in emu.ephemerals("C2", user="U1")] == ["hi"]
    msg = await emu.wait_for(lambda m: m.text == "hello <@U1>", timeout=5)
    assert msg.channel == "C2" and msg.bot_id == "B0001"
    assert (await emu.send_command(user="U1", channel="C2", text="", tamper="signature")).status == 401
