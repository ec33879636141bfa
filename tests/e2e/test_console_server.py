"""The console's JSON/SSE bridge, over the real bot and the Slack emulator (no browser)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.console.server import ConsoleServer, split_command, usage_hint
from sandbox.run import ROLES, SANDBOX_ENV
from sandbox.stack import BOT_TOKEN, Stack


@pytest.fixture
async def console() -> AsyncIterator[tuple[Stack, ConsoleServer, aiohttp.ClientSession]]:
    async with Stack(env=SANDBOX_ENV) as stack:
        server = await ConsoleServer(stack.slack, roles=ROLES, links=[{"label": "Prometheus", "url": ""}]).start()
        try:
            async with aiohttp.ClientSession(base_url=server.url) as http:
                yield stack, server, http
        finally:
            await server.stop()


async def post(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(path, json=body) as response:
        return response.status, await response.json()


def test_command_splitting_and_usage_hint() -> None:
    assert split_command(" /hello canary v2 10% ") == ("/hello", "canary v2 10%")
    assert split_command("/hello") == ("/hello", "")
    assert split_command("hello there") is None
    assert "status" in usage_hint() and "canary" in usage_hint()


async def test_page_and_config(console) -> None:  # type: ignore[no-untyped-def]
    _, _, http = console
    for path, kind in (("/", "text/html"), ("/console.js", "application/javascript"), ("/console.css", "text/css")):
        async with http.get(path) as response:
            assert response.status == 200 and response.content_type == kind
            assert len(await response.read()) > 500
    async with http.get("/api/config") as response:
        config = await response.json()
    assert config["usage_hint"] == usage_hint()
    assert config["channel"] == "C1"
    assert {u["name"]: u["role"] for u in config["users"]} == {"dana": "deployer", "avery": "approver",
                                                              "sam": "no rights"}


async def test_slash_command_reaches_the_bot_and_its_answer_shows(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    status, body = await post(http, "/api/command", {"user": "U3", "channel": "C1", "text": "/hello help"})
    assert (status, body["ok"]) == (200, True)
    await stack.slack.wait_for(lambda m: getattr(m, "user", None) == "U3" and "/hello status" in m.text, 10)
    async with http.get("/api/state") as response:
        state = await response.json()
    answers = [e for e in state["ephemerals"]["C1"] if e["user"] == "U3"]
    assert answers and "/hello status" in answers[-1]["text"]
    # Nothing was posted in the channel for everyone: help is private.
    assert state["messages"]["C1"] == []


async def test_refusals_are_explained(console) -> None:  # type: ignore[no-untyped-def]
    _, _, http = console
    status, body = await post(http, "/api/command", {"user": "U1", "text": "/deploy v2"})
    assert status == 400 and "/deploy is not a valid command" in body["error"]
    status, body = await post(http, "/api/command", {"user": "U9", "text": "/hello status"})
    assert status == 400
    status, body = await post(http, "/api/click", {"user": "U2", "message_ts": "1.000001", "action_id": "approve"})
    assert status == 404 and "no message" in body["error"]


async def test_events_stream_changes(console) -> None:  # type: ignore[no-untyped-def]
    _, _, http = console
    async with http.get("/api/events") as stream:
        assert stream.content_type == "text/event-stream"
        hello = await stream.content.readuntil(b"\n\n")
        assert hello.startswith(b"event: hello")
        status, _ = await post(http, "/api/message", {"user": "U1", "text": "shipping *v2* today"})
        assert status == 200
        async with asyncio.timeout(5):
            record = await stream.content.readuntil(b"\n\n")
    lines = dict(line.split(": ", 1) for line in record.decode().strip().splitlines())
    assert lines["event"] == "message_posted"
    event = json.loads(lines["data"])
    assert event["message"]["user"] == "U1" and event["message"]["text"] == "shipping *v2* today"


async def test_uploaded_files_are_served_for_img_tags(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    client = AsyncWebClient(token=BOT_TOKEN, base_url=stack.slack.api_url)
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    answer = await client.files_upload_v2(channel="C1", content=png, filename="chart.png", title="chart")
    file_id = answer["files"][0]["id"] if "files" in answer else answer["file"]["id"]
    async with http.get(f"/files/{file_id}/chart.png") as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == png
    async with http.get("/files/F404/none.png") as response:
        assert response.status == 404
