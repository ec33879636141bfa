"""The Web API through slack_sdk's own AsyncWebClient: happy paths and Slack's errors."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import Message, SlackEmulator


async def api_error(coro) -> str:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value.response["error"]


async def test_auth_test_answers_with_the_bot_identity(emu: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.auth_test()
    assert resp["ok"] is True
    assert resp["user_id"] == "UBOT"
    assert resp["team_id"] == "T0001"
    assert resp["bot_id"].startswith("B")


async def test_tokens_are_checked(emu: SlackEmulator) -> None:
    assert await api_error(AsyncWebClient(base_url=emu.api_url).auth_test()) == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url)
    assert await api_error(wrong.chat_postMessage(channel="C1", text="x")) == "invalid_auth"
    assert emu.messages("C1") == []


async def test_token_as_form_argument_and_http_200_for_api_errors(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            emu.api_url + "chat.postMessage", data={"token": emu.bot_token, "channel": "C1", "text": "form"}
        ) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["ok"] is True and body["message"]["text"] == "form"
        async with session.post(emu.api_url + "chat.postMessage", data={"channel": "C1", "text": "x"}) as resp:
            assert resp.status == 200
            assert await resp.json() == {"ok": False, "error": "not_authed"}


async def test_post_message_returns_the_stored_message(emu: SlackEmulator, client: AsyncWebClient) -> None:
    blocks = [SectionBlock(text="*deploy* v2"), ActionsBlock(elements=[ButtonElement(text="Go", action_id="go")])]
    resp = await client.chat_postMessage(channel="C1", text="deploy v2", blocks=blocks)
    assert resp["channel"] == "C1"
    sec, frac = resp["ts"].split(".")
    assert len(frac) == 6 and sec.isdigit()
    message = resp["message"]
    assert message["user"] == "UBOT" and message["bot_id"] == "B0001"
    assert message["text"] == "deploy v2"
    assert message["blocks"][1]["elements"][0]["action_id"] == "go"
    [stored] = emu.messages("C1")
    assert stored.ts == resp["ts"] and stored.blocks == message["blocks"]


async def test_post_message_by_channel_name(emu: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="#general", text="hi")
    assert resp["channel"] == "C2"
    assert [m.text for m in emu.messages("C2")] == ["hi"]


async def test_post_message_errors(emu: SlackEmulator, client: AsyncWebClient) -> None:
    assert await api_error(client.chat_postMessage(channel="C404", text="x")) == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):
        assert await api_error(client.chat_postMessage(channel="C1")) == "no_text"
    assert await api_error(client.chat_postMessage(channel="C1", text="x" * 40_001)) == "msg_too_long"
    too_many = [{"type": "divider"}] * 51
    assert await api_error(client.chat_postMessage(channel="C1", text="x", blocks=too_many)) == "invalid_blocks"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C1", text="x", blocks=long_section)
    assert info.value.response["error"] == "invalid_blocks"
    assert any("3000" in e for e in info.value.response["errors"])
    unknown = [{"type": "no-such-block"}]
    assert await api_error(client.chat_postMessage(channel="C1", text="x", blocks=unknown)) == "invalid_blocks"
    assert emu.messages("C1") == []


async def test_bot_not_in_channel() -> None:
    async with SlackEmulator(bot_token="xoxb-t", bot_channels=["C1"]) as emu:
        c = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        assert await api_error(c.chat_postMessage(channel="C2", text="x")) == "not_in_channel"
        assert (await c.chat_postMessage(channel="C1", text="x"))["ok"]
        info = await c.conversations_info(channel="C2")
        assert info["channel"]["is_member"] is False and info["channel"]["name"] == "general"


async def test_update_keeps_history_and_checks_rules(emu: SlackEmulator, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C1", text="rolling out 0/3")
    resp = await client.chat_update(channel="C1", ts=first["ts"], text="rolling out 1/3")
    assert resp["ts"] == first["ts"] and resp["text"] == "rolling out 1/3"
    assert resp["message"]["edited"]["user"] == "UBOT"
    await client.chat_update(
        channel="C1",
        ts=first["ts"],
        text="done",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}],
    )
    [msg] = emu.messages("C1")
    assert msg.text == "done" and msg.blocks[0]["text"]["text"] == "ok"
    assert [e.text for e in msg.edits] == ["rolling out 0/3", "rolling out 1/3"]
    assert msg.edits[0].edited_ts < msg.edits[1].edited_ts
    # blocks omitted from an update are kept, as Slack keeps them
    await client.chat_update(channel="C1", ts=first["ts"], text="done!")
    assert emu.messages("C1")[0].blocks[0]["text"]["text"] == "ok"

    assert await api_error(client.chat_update(channel="C1", ts="1.000001", text="x")) == "message_not_found"
    assert await api_error(client.chat_update(channel="C9", ts=first["ts"], text="x")) == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):
        assert await api_error(client.chat_update(channel="C1", ts=first["ts"])) == "no_text"
    bad = [{"type": "section", "text": {"type": "mrkdwn", "text": "z" * 3001}}]
    assert await api_error(client.chat_update(channel="C1", ts=first["ts"], text="x", blocks=bad)) == "invalid_blocks"


async def test_cannot_update_or_delete_a_human_message(emu: SlackEmulator, client: AsyncWebClient) -> None:
    human = emu.workspace.add_message(Message(channel="C1", ts=emu.workspace.clock.next(), user="U1", text="mine"))
    assert await api_error(client.chat_update(channel="C1", ts=human.ts, text="x")) == "cant_update_message"
    assert await api_error(client.chat_delete(channel="C1", ts=human.ts)) == "cant_delete_message"


async def test_delete(emu: SlackEmulator, client: AsyncWebClient) -> None:
    a = await client.chat_postMessage(channel="C1", text="a")
    b = await client.chat_postMessage(channel="C1", text="b")
    resp = await client.chat_delete(channel="C1", ts=a["ts"])
    assert resp["ts"] == a["ts"]
    assert [m.ts for m in emu.messages("C1")] == [b["ts"]]
    assert await api_error(client.chat_delete(channel="C1", ts=a["ts"])) == "message_not_found"


async def test_post_ephemeral(emu: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postEphemeral(channel="C1", user="U3", text="only you")
    assert resp["message_ts"]
    [eph] = emu.ephemerals("C1", user="U3")
    assert eph.text == "only you" and eph.ts == resp["message_ts"]
    assert emu.ephemerals("C1", user="U1") == [] and emu.messages("C1") == []
    assert await api_error(client.chat_postEphemeral(channel="C1", user="U404", text="x")) == "user_not_found"
    with pytest.warns(UserWarning, match="text"):
        assert await api_error(client.chat_postEphemeral(channel="C1", user="U1")) == "no_text"


async def test_ephemeral_needs_the_user_in_the_channel() -> None:
    async with SlackEmulator(bot_token="xoxb-t", channel_members={"C2": ["U1"]}) as emu:
        c = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        assert await api_error(c.chat_postEphemeral(channel="C2", user="U3", text="x")) == "user_not_in_channel"
        assert (await c.chat_postEphemeral(channel="C2", user="U1", text="x"))["ok"]


async def test_threads(emu: SlackEmulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C1", text="deploy started")
    r1 = await client.chat_postMessage(channel="C1", text="step 1", thread_ts=parent["ts"])
    await client.chat_postMessage(channel="C1", text="step 2", thread_ts=parent["ts"])
    assert r1["message"]["thread_ts"] == parent["ts"]
    assert [m.text for m in emu.messages("C1", thread_ts=parent["ts"])] == ["deploy started", "step 1", "step 2"]
    head = emu.messages("C1")[0]
    assert head.reply_count == 2 and head.to_api()["reply_users"] == ["UBOT"]


async def test_users_usergroups_conversations(client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U1"))["user"]
    assert user["name"] == "dana" and user["real_name"] == "Dana Deployer"
    assert user["profile"]["real_name"] == "Dana Deployer"
    assert await api_error(client.users_info(user="U404")) == "user_not_found"
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U2"]
    assert await api_error(client.usergroups_users_list(usergroup="S404")) == "no_such_subteam"
    assert (await client.conversations_info(channel="C1"))["channel"]["name"] == "ops"
    assert await api_error(client.conversations_info(channel="C404")) == "channel_not_found"


async def test_unknown_method(client: AsyncWebClient) -> None:
    assert await api_error(client.api_call("chat.noSuchThing")) == "unknown_method"
