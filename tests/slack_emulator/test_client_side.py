"""Slash commands and button clicks sent to an app that verifies signatures with slack_sdk."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator, sign

COMMAND_FIELDS = {
    "token",
    "team_id",
    "team_domain",
    "channel_id",
    "channel_name",
    "user_id",
    "user_name",
    "command",
    "text",
    "api_app_id",
    "is_enterprise_install",
    "response_url",
    "trigger_id",
}
APPROVAL_BLOCKS = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Deploy v2?"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "req-1",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": "req-1",
                "style": "danger",
            },
        ],
    },
]


def test_sign_matches_slacks_documented_example() -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
        "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
        "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


async def test_command_payload_is_signed_and_complete(emu: SlackEmulator, recorder) -> None:
    reply = await emu.send_command(user="U1", channel="C1", text="deploy v2", command="/hello")
    assert reply.status == 200
    [got] = recorder.received
    assert got.verified
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert set(got.form) == COMMAND_FIELDS
    assert got.form["command"] == "/hello" and got.form["text"] == "deploy v2"
    assert got.form["user_id"] == "U1" and got.form["user_name"] == "dana"
    assert got.form["channel_id"] == "C1" and got.form["channel_name"] == "ops"
    assert got.form["team_id"] == "T0001" and got.form["is_enterprise_install"] == "false"
    assert got.form["response_url"].startswith(emu.base_url + "/response/")
    assert emu.ephemerals("C1") == [] and emu.messages("C1") == []


@pytest.mark.parametrize("tamper", ["signature", "missing", "stale", "timestamp"])
async def test_tampered_requests_fail_verification(emu: SlackEmulator, recorder, tamper: str) -> None:
    reply = await emu.send_command(text="help", tamper=tamper)
    assert reply.status == 401
    assert recorder.received[-1].verified is False
    posted = await AsyncWebClient(token=emu.bot_token, base_url=emu.api_url).chat_postMessage(
        channel="C1", text="approve?", blocks=APPROVAL_BLOCKS
    )
    click = await emu.click(user="U2", message_ts=posted["ts"], action_id="approve", tamper=tamper)
    assert click.status == 401 and recorder.received[-1].verified is False


async def test_stale_timestamp_is_six_minutes_old(emu: SlackEmulator, recorder) -> None:
    await emu.send_command(text="x", tamper="stale")
    stamp = int(recorder.received[-1].headers["X-Slack-Request-Timestamp"])
    assert time.time() - stamp > 5 * 60


async def test_command_answer_bodies_are_shown_as_slack_shows_them(emu: SlackEmulator, recorder) -> None:
    recorder.answer = lambda r: web.json_response({"text": "working on it"})
    reply = await emu.send_command(user="U1", text="status")
    assert reply.json == {"text": "working on it"}
    [eph] = emu.ephemerals("C1", user="U1")
    assert eph.text == "working on it" and eph.source == "command_response"

    recorder.answer = lambda r: web.json_response({"response_type": "in_channel", "text": "deploy started"})
    await emu.send_command(user="U1", text="deploy")
    assert [m.text for m in emu.messages("C1")] == ["deploy started"]

    recorder.answer = lambda r: web.Response(text="plain words")
    await emu.send_command(user="U3", text="help")
    assert emu.ephemerals("C1", user="U3")[0].text == "plain words"


async def test_click_payload_shape(emu: SlackEmulator, client: AsyncWebClient, recorder) -> None:
    posted = await client.chat_postMessage(channel="C1", text="Deploy v2?", blocks=APPROVAL_BLOCKS)
    reply = await emu.click(user="U2", channel="C1", message_ts=posted["ts"], action_id="approve")
    assert reply.status == 200
    got = recorder.received[-1]
    assert got.verified and set(got.form) == {"payload"}
    p = got.payload
    assert p["type"] == "block_actions"
    assert p["user"] == {"id": "U2", "username": "avery", "name": "avery", "team_id": "T0001"}
    assert p["container"] == {"type": "message", "message_ts": posted["ts"], "channel_id": "C1", "is_ephemeral": False}
    assert p["channel"] == {"id": "C1", "name": "ops"} and p["team"]["id"] == "T0001"
    assert p["api_app_id"] and p["token"] and p["trigger_id"]
    assert p["message"]["ts"] == posted["ts"] and p["message"]["blocks"] == APPROVAL_BLOCKS
    [action] = p["actions"]
    assert action["action_id"] == "approve" and action["block_id"] == "decision"
    assert action["type"] == "button" and action["value"] == "req-1"
    assert action["text"] == {"type": "plain_text", "text": "Approve"}
    assert float(action["action_ts"]) > 0
    assert p["response_url"].startswith(emu.base_url + "/response/")


async def test_click_on_a_missing_action_is_a_clear_error(emu: SlackEmulator, client: AsyncWebClient, recorder) -> None:
    posted = await client.chat_postMessage(channel="C1", text="Deploy v2?", blocks=APPROVAL_BLOCKS)
    with pytest.raises(LookupError, match="approve"):
        await emu.click(message_ts=posted["ts"], action_id="nope")
    with pytest.raises(LookupError, match="no message"):
        await emu.click(message_ts="1.000001", action_id="approve")
    assert recorder.received == []


async def test_response_url_replace_original_and_in_channel(
    emu: SlackEmulator, client: AsyncWebClient, recorder
) -> None:
    posted = await client.chat_postMessage(channel="C1", text="Deploy v2?", blocks=APPROVAL_BLOCKS)
    reply = await emu.click(user="U2", message_ts=posted["ts"], action_id="approve")
    async with aiohttp.ClientSession() as session:
        async with session.post(reply.response_url, json={"replace_original": True, "text": "Approved by avery"}) as r:
            assert r.status == 200 and (await r.json())["ok"]
        async with session.post(reply.response_url, json={"text": "only for avery"}) as r:
            assert r.status == 200
        async with session.post(reply.response_url, json={"response_type": "in_channel", "text": "rolling"}) as r:
            assert r.status == 200
        async with session.post(reply.response_url, json={"response_type": "in_channel"}) as r:
            assert r.status == 400 and (await r.json())["error"] == "no_text"
        async with session.post(emu.base_url + "/response/unknown", json={"text": "x"}) as r:
            assert r.status == 404
    first, second = emu.messages("C1")
    assert first.ts == posted["ts"] and first.text == "Approved by avery" and first.blocks == []
    assert first.edits[0].blocks == APPROVAL_BLOCKS
    assert second.text == "rolling"
    assert [e.text for e in emu.ephemerals("C1", user="U2")] == ["only for avery"]


async def test_response_url_delete_original_and_ephemeral_click(
    emu: SlackEmulator, client: AsyncWebClient, recorder
) -> None:
    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="confirm?", blocks=APPROVAL_BLOCKS)
    with pytest.raises(LookupError, match="visible to U1"):
        await emu.click(user="U2", message_ts=eph["message_ts"], action_id="approve")
    reply = await emu.click(user="U1", message_ts=eph["message_ts"], action_id="reject")
    p = recorder.received[-1].payload
    assert p["container"]["is_ephemeral"] is True and "message" not in p
    async with aiohttp.ClientSession() as session:
        async with session.post(
            reply.response_url,
            data=json.dumps({"delete_original": "true"}),
            headers={"Content-Type": "application/json"},
        ) as r:
            assert r.status == 200
    assert emu.ephemerals("C1") == []
