"""When Slack refuses the status message, the person who asked is told why, privately."""

from __future__ import annotations

from sandbox.slack import Ephemeral, Message, SlackEmulator
from tests.harness.bot import TOKEN, Bot


def private_note(user: str):  # type: ignore[no-untyped-def]
    return lambda m: isinstance(m, Ephemeral) and m.user == user


async def test_status_refused_by_slack_for_another_reason_is_explained(bot: Bot, slack: SlackEmulator) -> None:
    await bot.send("U3", "status")  # the bot signs in with its token once
    await slack.wait_for(lambda m: isinstance(m, Message) and "Cluster unavailable" in str(m.blocks), timeout=15)
    await bot.dispatcher.drain()
    slack.webapi.bot_token = "xoxb-rotated-token"  # the bot's token is revoked: every Web API call fails
    reply = await bot.send("U3", "status")
    assert reply.status == 200
    note = await slack.wait_for(private_note("U3"), timeout=15)
    assert "invalid_auth" in note.text
    assert TOKEN not in note.text and "xoxb" not in note.text
    assert len(note.text) < 300
    assert len(slack.messages("C1")) == 1  # the first status only
