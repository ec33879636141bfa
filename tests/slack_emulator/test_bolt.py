"""A real slack_bolt AsyncApp, served by Bolt's aiohttp adapter, driven through the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

SECRET = "bolt-signing-secret"
TOKEN = "xoxb-bolt-token"


def build_app(api_url: str) -> AsyncApp:
    # With ``client=`` Bolt takes the token from the client (a ``token=`` beside it is ignored).
    app = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=api_url))

    @app.command("/hello")
    async def hello(ack, client, command) -> None:
        await ack("hi")
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<@{command['user_id']}> asks: {command['text']}"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "approve",
                        "value": "r1",
                        "text": {"type": "plain_text", "text": "Approve"},
                    }
                ],
            },
        ]
        await client.chat_postMessage(channel=command["channel_id"], text="approval needed", blocks=blocks)

    @app.action("approve")
    async def approve(ack, body, respond) -> None:
        await ack()
        await respond(replace_original=True, text=f"approved by <@{body['user']['id']}>")

    return app


@pytest.fixture
async def emu_with_bolt() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN) as emu:
        bolt = build_app(emu.api_url)

        async def events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

        web_app = web.Application()
        web_app.router.add_post("/slack/events", events)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        emu.request_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        yield emu
        await runner.cleanup()


async def test_bolt_command_ack_and_post_then_click(emu_with_bolt: SlackEmulator) -> None:
    emu = emu_with_bolt
    reply = await emu.send_command(user="U1", channel="C1", text="deploy v2")
    assert reply.status == 200
    assert [e.text for e in emu.ephemerals("C1", user="U1")] == ["hi"]
    msg = await emu.wait_for(lambda m: m.text == "approval needed", timeout=5)
    assert msg.user == "UBOT" and "deploy v2" in msg.blocks[0]["text"]["text"]
    assert [c["method"] for c in emu.calls][:1] == ["auth.test"]

    click = await emu.click(user="U2", channel="C1", message_ts=msg.ts, action_id="approve")
    assert click.status == 200
    done = await emu.wait_for(lambda m: m.ts == msg.ts and m.text.startswith("approved"), timeout=5)
    assert done.text == "approved by <@U2>" and len(done.edits) == 1


async def test_bolt_rejects_tampered_requests(emu_with_bolt: SlackEmulator) -> None:
    for tamper in ("signature", "missing", "stale"):
        reply = await emu_with_bolt.send_command(text="deploy", tamper=tamper)
        assert reply.status == 401
    assert emu_with_bolt.ephemerals("C1") == [] and emu_with_bolt.messages("C1") == []
