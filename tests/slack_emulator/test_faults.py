"""Injected rate limits and server errors, and slack_sdk's retry handlers coping with them."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator


async def test_rate_limit_answers_429_with_retry_after(emu: SlackEmulator) -> None:
    emu.rate_limit("chat.postMessage", times=1, retry_after=7)
    async with aiohttp.ClientSession() as session:
        url = emu.api_url + "chat.postMessage"
        headers = {"Authorization": f"Bearer {emu.bot_token}"}
        async with session.post(url, json={"channel": "C1", "text": "x"}, headers=headers) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "7"
            assert await resp.json() == {"ok": False, "error": "ratelimited"}
        async with session.post(url, json={"channel": "C1", "text": "x"}, headers=headers) as resp:
            assert resp.status == 200


async def test_without_retry_handler_the_client_sees_ratelimited(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.rate_limit("chat.postMessage")
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert emu.messages("C1") == []


async def test_retry_handler_delivers_once(emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    emu.rate_limit("chat.postMessage", times=1, retry_after=0)
    resp = await client.chat_postMessage(channel="C1", text="rolled out")
    assert resp["ok"]
    assert [m.text for m in emu.messages("C1")] == ["rolled out"]
    assert [c["status"] for c in emu.calls if c["method"] == "chat.postMessage"] == [429, 200]


async def test_server_errors_and_their_retry_handler(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.fail("chat.update", status=503)
    first = await client.chat_postMessage(channel="C1", text="a")
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C1", ts=first["ts"], text="b")
    assert info.value.response.status_code == 503

    retrying = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    retrying.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=1))
    emu.fail("chat.update", status=500)
    await retrying.chat_update(channel="C1", ts=first["ts"], text="b")
    [msg] = emu.messages("C1")
    assert msg.text == "b" and len(msg.edits) == 1
    with pytest.raises(ValueError):
        emu.fail("chat.update", status=404)
