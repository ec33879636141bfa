"""Read side: ordering, edit history, wait_for, subscribe, /_emulator/state and the SSE stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator


async def test_messages_keep_order_with_increasing_unique_ts(emu: SlackEmulator, client: AsyncWebClient) -> None:
    sent = await asyncio.gather(*(client.chat_postMessage(channel="C1", text=f"m{i}") for i in range(20)))
    stored = emu.messages("C1")
    assert [m.ts for m in stored] == sorted(m.ts for m in stored)
    assert len({m.ts for m in stored}) == 20
    assert sorted(r["ts"] for r in sent) == [m.ts for m in stored]
    assert {m.text for m in stored} == {f"m{i}" for i in range(20)}


async def test_wait_for_sees_an_update(emu: SlackEmulator, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C1", text="rolling 0/3")

    async def progress() -> None:
        for i in range(1, 4):
            await client.chat_update(channel="C1", ts=first["ts"], text=f"rolling {i}/3")

    task = asyncio.create_task(progress())
    msg = await emu.wait_for(lambda m: m.text == "rolling 3/3", timeout=5)
    await task
    assert msg.ts == first["ts"]
    assert [e.text for e in msg.edits] == ["rolling 0/3", "rolling 1/3", "rolling 2/3"]
    with pytest.raises(TimeoutError):
        await emu.wait_for(lambda m: m.text == "never", timeout=0.05)


async def test_subscribe_and_state_endpoint(emu: SlackEmulator, client: AsyncWebClient) -> None:
    events: list[dict[str, Any]] = []
    unsubscribe = emu.subscribe(events.append)
    posted = await client.chat_postMessage(channel="C1", text="a")
    await client.chat_update(channel="C1", ts=posted["ts"], text="b")
    await client.chat_postEphemeral(channel="C1", user="U1", text="psst")
    unsubscribe()
    await client.chat_postMessage(channel="C1", text="unseen")
    assert [e["type"] for e in events] == ["message_posted", "message_updated", "ephemeral_posted"]
    assert events[1]["message"]["text"] == "b" and events[1]["message"]["edits"][0]["text"] == "a"

    async with aiohttp.ClientSession() as session, session.get(emu.base_url + "/_emulator/state") as resp:
        state = await resp.json()
    assert {u["id"] for u in state["users"]} == {"U1", "U2", "U3"}
    assert {c["id"]: c["name"] for c in state["channels"]} == {"C1": "ops", "C2": "general"}
    assert state["usergroups"] == {"S1": ["U2"]}
    assert [m["text"] for m in state["messages"]["C1"]] == ["b", "unseen"]
    assert state["ephemerals"]["C1"][0]["user"] == "U1"


async def read_sse(resp: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next (event, data) record of an SSE stream."""
    event, data = "message", ""
    while True:
        line = (await resp.content.readline()).decode().rstrip("\n")
        if line == "" and data:
            return event, json.loads(data)
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data += line[6:]


async def test_sse_stream_reports_changes(emu: SlackEmulator, client: AsyncWebClient) -> None:
    async with aiohttp.ClientSession() as session, session.get(emu.base_url + "/_emulator/events") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        async with asyncio.timeout(5):
            assert (await read_sse(resp))[0] == "hello"
            posted = await client.chat_postMessage(channel="C1", text="deploying")
            await client.chat_update(channel="C1", ts=posted["ts"], text="deployed")
            await client.files_upload_v2(channel="C1", content=b"png", filename="c.png")
            seen = [await read_sse(resp) for _ in range(5)]
    kinds = [k for k, _ in seen]
    assert kinds[:2] == ["message_posted", "message_updated"]
    assert set(kinds[2:]) == {"file_uploaded", "message_posted", "file_shared"}
    assert seen[0][1]["message"]["text"] == "deploying" and seen[1][1]["message"]["text"] == "deployed"
    assert seen[0][1]["seq"] < seen[1][1]["seq"]


async def test_stopping_the_emulator_ends_open_streams() -> None:
    emu = await SlackEmulator().start()
    async with aiohttp.ClientSession() as session, session.get(emu.base_url + "/_emulator/events") as resp:
        async with asyncio.timeout(5):
            assert (await read_sse(resp))[0] == "hello"
            await emu.stop()
            assert await resp.content.read() == b""
