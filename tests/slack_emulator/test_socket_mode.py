"""Socket Mode: ``apps.connections.open``, the WebSocket, envelopes and their acks — driven by raw
WebSockets, by slack_sdk's own aiohttp Socket Mode client, and by the bot itself (``serve --socket-mode``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import Ephemeral, Message, SlackEmulator
from sandbox.slack.socket_mode import NOT_CONNECTED_STATUS, TIMEOUT_STATUS

ROOT = Path(__file__).resolve().parents[2]
SECRET = "socket-signing-secret"
BOT_TOKEN = "xoxb-socket-bot"
APP_TOKEN = "xapp-1-A0001-socket"


@pytest.fixture
async def semu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(signing_secret=SECRET, bot_token=BOT_TOKEN, app_token=APP_TOKEN) as emulator:
        yield emulator


async def open_url(emu: SlackEmulator) -> str:
    resp = await AsyncWebClient(base_url=emu.api_url).apps_connections_open(app_token=APP_TOKEN)
    return str(resp["url"])


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


# ---- apps.connections.open -------------------------------------------------------------------
async def test_connections_open_needs_the_app_level_token(semu: SlackEmulator) -> None:
    api = AsyncWebClient(base_url=semu.api_url)
    url = await open_url(semu)
    assert url.startswith(f"ws://127.0.0.1:{semu.port}/socket/")

    with pytest.raises(SlackApiError) as bot_token:
        await api.apps_connections_open(app_token=BOT_TOKEN)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as unknown:
        await api.apps_connections_open(app_token="xapp-1-someone-else")
    assert unknown.value.response["error"] == "invalid_auth"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{semu.api_url}apps.connections.open") as resp:
            assert (await resp.json()) == {"ok": False, "error": "not_authed"}
        async with http.post(f"{semu.api_url}apps.connections.open", data={"token": APP_TOKEN}) as resp:
            assert (await resp.json())["error"] == "invalid_auth"  # only the Authorization header counts


async def test_app_level_token_is_refused_for_bot_methods(semu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token=APP_TOKEN, base_url=semu.api_url).chat_postMessage(channel="C1", text="hi")
    assert err.value.response["error"] == "not_allowed_token_type"
    assert semu.messages("C1") == []


async def test_unknown_socket_url_is_refused(semu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"ws://127.0.0.1:{semu.port}/socket/not-a-ticket")
    assert err.value.status == 404
    assert not semu.socket_connected


# ---- the WebSocket, raw ------------------------------------------------------------------------
async def test_hello_then_command_envelope_acked_with_in_channel_payload(semu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(await open_url(semu)) as ws:
        hello = await receive_json(ws)
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": "A0001"}
        await semu.wait_socket_connected(timeout=5)
        assert semu.socket_connected

        sending = asyncio.create_task(semu.send_command(user="U1", channel="C1", text="status 1h", via="socket"))
        envelope = await receive_json(ws)
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
        payload = envelope["payload"]
        assert payload["command"] == "/hello" and payload["text"] == "status 1h"
        assert payload["user_id"] == "U1" and payload["user_name"] == "dana"
        assert payload["channel_id"] == "C1" and payload["channel_name"] == "ops"
        assert payload["response_url"].startswith(semu.base_url + "/response/")
        # Same request parsed by slack_sdk's own model, as Bolt's Socket Mode adapter does.
        parsed = SocketModeRequest.from_dict(envelope)
        assert parsed is not None and parsed.envelope_id == envelope["envelope_id"]

        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"],
                                      "payload": {"text": "on it", "response_type": "in_channel"}}))
        reply = await asyncio.wait_for(sending, 5)
    assert reply.status == 200 and reply.json == {"text": "on it", "response_type": "in_channel"}
    assert reply.payload["text"] == "status 1h" and reply.response_url == payload["response_url"]
    [msg] = semu.messages("C1")
    assert msg.text == "on it" and msg.source == "command_response"
    assert semu.socket.acks[-1].envelope_id == envelope["envelope_id"] and not semu.socket.acks[-1].late
    await semu.socket.wait_disconnected(timeout=5)
    assert [h["event"] for h in semu.socket.history] == ["connected", "disconnected"]


async def test_ack_payload_is_ephemeral_by_default_and_empty_ack_shows_nothing(semu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(await open_url(semu)) as ws:
        await receive_json(ws)
        first = asyncio.create_task(semu.send_command(user="U3", channel="C2", text="help", via="socket"))
        env = await receive_json(ws)
        await ws.send_str(json.dumps({"envelope_id": env["envelope_id"], "payload": {"text": "just for you"}}))
        assert (await asyncio.wait_for(first, 5)).status == 200

        second = asyncio.create_task(semu.send_command(user="U3", channel="C2", text="deploy v2", via="socket"))
        env = await receive_json(ws)
        await ws.send_str(json.dumps({"envelope_id": env["envelope_id"]}))
        empty = await asyncio.wait_for(second, 5)
    assert empty.status == 200 and empty.text == ""
    [eph] = semu.ephemerals("C2", "U3")
    assert eph.text == "just for you"
    assert semu.messages("C2") == []


async def test_unacked_envelope_is_reported_as_timeout_and_late_ack_ignored(semu: SlackEmulator) -> None:
    semu.socket.ack_timeout = 0.3
    async with aiohttp.ClientSession() as http, http.ws_connect(await open_url(semu)) as ws:
        await receive_json(ws)
        sending = asyncio.create_task(semu.send_command(user="U1", channel="C1", text="status", via="socket"))
        envelope = await receive_json(ws)
        reply = await asyncio.wait_for(sending, 5)
        assert reply.status == TIMEOUT_STATUS and reply.text == "operation_timeout"

        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "too late"}}))
        await ws.send_str(json.dumps({"envelope_id": "never-sent"}))
        await semu.socket.wait_until(lambda sm: bool(sm.unmatched), timeout=5)
    [late] = semu.socket.acks
    assert late.late and late.payload == {"text": "too late"} and late.seconds >= 0.3
    assert semu.socket.unmatched == ['{"envelope_id": "never-sent"}']
    assert semu.ephemerals("C1") == [] and semu.messages("C1") == []


async def test_command_without_a_connection_fails_like_slack(semu: SlackEmulator) -> None:
    reply = await semu.send_command(text="help", via="socket")
    assert reply.status == NOT_CONNECTED_STATUS and reply.text == "dispatch_failed"
    with pytest.raises(ValueError, match="HTTP"):
        await semu.send_command(text="help", via="socket", tamper="signature")


async def test_client_ping_is_answered_with_pong(semu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(await open_url(semu), autoping=False) as ws:
        await receive_json(ws)
        await ws.ping(b"sdk-ping-pong:1700000000.5")
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.PONG and msg.data == b"sdk-ping-pong:1700000000.5"
        [conn] = semu.socket.connections.values()
        assert conn.pings == 1


# ---- slack_sdk's aiohttp Socket Mode client ----------------------------------------------------
async def test_slack_sdk_client_acks_clicks_and_reconnects_after_disconnect(semu: SlackEmulator) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=semu.api_url)
    seen: list[SocketModeRequest] = []

    async def listener(client: Any, req: SocketModeRequest) -> None:
        seen.append(req)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client = SocketModeClient(app_token=APP_TOKEN, web_client=web, ping_interval=0.5)
    client.socket_mode_request_listeners.append(listener)
    try:
        await client.connect()
        await semu.wait_socket_connected(timeout=5)
        posted = await web.chat_postMessage(
            channel="C1",
            text="approve?",
            blocks=[{"type": "actions", "block_id": "b1", "elements": [
                {"type": "button", "action_id": "approve", "value": "r1",
                 "text": {"type": "plain_text", "text": "Approve"}}]}],
        )
        reply = await semu.click(user="U2", channel="C1", message_ts=posted["ts"], action_id="approve", via="socket")
        assert reply.status == 200
        assert seen[-1].type == "interactive" and seen[-1].accepts_response_payload is False
        assert seen[-1].payload["type"] == "block_actions"
        assert seen[-1].payload["actions"][0]["value"] == "r1" and seen[-1].payload["user"]["id"] == "U2"

        assert await semu.socket.disconnect("refresh_requested") == 1
        # The client opens a new URL, then drops the old connection.
        await semu.socket.wait_until(
            lambda sm: sum(h["event"] == "connected" for h in sm.history) == 2 and len(sm.connections) == 1,
            timeout=10,
        )
        reply = await semu.send_command(user="U1", text="help", via="socket")
        assert reply.status == 200 and seen[-1].type == "slash_commands"
        assert [c["method"] for c in semu.calls].count("apps.connections.open") == 2
    finally:
        await client.close()
    await semu.socket.wait_disconnected(timeout=5)


# ---- the bot: python -m bot serve --socket-mode ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bot_env(emu: SlackEmulator, tmp_path: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=emu.api_url,
        KUBECONFIG=str(tmp_path / "no-such-kubeconfig"),
        PROMETHEUS_URL="http://127.0.0.1:9",
        MPLCONFIGDIR=str(tmp_path / "mpl"),
    )
    return env


async def test_bot_serves_commands_over_socket_mode_and_stops_on_sigterm(semu: SlackEmulator, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--socket-mode", "--port", str(_free_port()), "--host", "127.0.0.1",
        cwd=ROOT,
        env=_bot_env(semu, tmp_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    log: list[str] = []

    async def drain() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            log.append(line.decode(errors="replace").rstrip())

    reader = asyncio.create_task(drain())
    try:
        connected = asyncio.create_task(semu.wait_socket_connected(timeout=20))
        exited = asyncio.create_task(proc.wait())
        await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not connected.done():
            connected.cancel()
            pytest.fail(f"the bot exited ({proc.returncode}) before connecting:\n" + "\n".join(log[-30:]))
        exited.cancel()
        connected.result()

        help_reply = await semu.send_command(user="U3", channel="C1", text="help", via="socket")
        assert help_reply.status == 200, help_reply.text
        [eph] = semu.ephemerals("C1", "U3")
        assert "/hello status" in eph.text and eph.source == "command_response"

        status_reply = await semu.send_command(user="U3", channel="C1", text="status", via="socket")
        assert status_reply.status == 200, status_reply.text

        def is_status(m: Message | Ephemeral) -> bool:
            return isinstance(m, Message) and m.text.startswith("helloworld status") and "cluster unavailable" in m.text

        msg = await semu.wait_for(is_status, timeout=15)
        assert msg.channel == "C1"

        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            rc = await proc.wait()
        assert rc == 0, "\n".join(log[-30:])
        await semu.socket.wait_disconnected(timeout=5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(reader, 5)


async def test_bot_refuses_a_wrong_app_token_at_start(tmp_path: Path) -> None:
    async with SlackEmulator() as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_"))}
        env.update(SLACK_BOT_TOKEN=emu.bot_token, SLACK_SIGNING_SECRET="s", SLACK_APP_TOKEN="xapp-1-wrong",
                   SLACK_API_URL=emu.api_url, KUBECONFIG=str(tmp_path / "none"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--socket-mode", "--host", "127.0.0.1", "--port", "0",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert "SLACK_APP_TOKEN refused by Slack (invalid_auth)" in err.decode()
