"""files_upload_v2 end to end: getUploadURLExternal, the upload URL, completeUploadExternal."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def test_upload_v2_round_trips_bytes_into_a_thread(emu: SlackEmulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C1", text="canary at 10%")
    resp = await client.files_upload_v2(
        channel="C1",
        thread_ts=parent["ts"],
        content=PNG,
        filename="latency.png",
        title="p99 latency",
        initial_comment="last hour",
    )
    file = resp["file"]
    assert file["name"] == "latency.png" and file["title"] == "p99 latency"
    assert file["mimetype"] == "image/png" and file["size"] == len(PNG)
    assert file["url_private"].startswith(emu.base_url) and file["permalink"]
    assert emu.file_bytes(file["id"]) == PNG
    assert list(emu.files) == [file["id"]]

    shared = emu.messages("C1", thread_ts=parent["ts"])[-1]
    assert shared.thread_ts == parent["ts"]
    assert shared.text == "last hour"
    assert [f["id"] for f in shared.files] == [file["id"]]

    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {emu.bot_token}"}
        async with session.get(file["url_private"], headers=headers) as got:
            assert got.status == 200
            assert await got.read() == PNG
        async with session.get(file["url_private"]) as anonymous:
            assert anonymous.status == 403


async def test_upload_without_channel_stays_private(emu: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.files_upload_v2(content="plain text", filename="notes.txt")
    assert resp["file"]["channels"] == []
    assert emu.messages("C1") == [] and emu.file_bytes(resp["file"]["id"]) == b"plain text"


async def test_multipart_upload_and_query_string_completion(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {emu.bot_token}"}
        async with session.post(
            emu.api_url + "files.getUploadURLExternal", data={"filename": "a.csv", "length": "3"}, headers=auth
        ) as r:
            got = await r.json()
        form = aiohttp.FormData()
        form.add_field("file", b"a,b", filename="a.csv")
        async with session.post(got["upload_url"], data=form) as up:
            assert up.status == 200
        params = {"files": f'[{{"id": "{got["file_id"]}", "title": "table"}}]', "channel_id": "C2"}
        async with session.post(emu.api_url + "files.completeUploadExternal", params=params, headers=auth) as r:
            done = await r.json()
    assert done["ok"] and done["files"][0]["title"] == "table"
    assert emu.file_bytes(got["file_id"]) == b"a,b"
    assert emu.messages("C2")[0].files[0]["id"] == got["file_id"]


async def test_upload_errors(emu: SlackEmulator, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.files_getUploadURLExternal(filename="x.txt", length=0)
    assert info.value.response["error"] == "missing_argument"
    with pytest.raises(SlackApiError) as info:
        await client.files_completeUploadExternal(files=[{"id": "F404"}])
    assert info.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as info:
        await client.files_upload_v2(content=b"x", filename="x.bin", channel="C404")
    assert info.value.response["error"] == "channel_not_found"
