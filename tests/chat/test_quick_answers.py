"""Pure answers (help, usage errors) leave before Bolt's dispatch, only for correctly signed requests."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from bot.chat.server import WANTED, fields
from sandbox.slack.client import sign
from tests.harness.bot import SECRET, Bot, start_bot, stop_bot


def test_fields_decodes_only_what_it_needs() -> None:
    body = b"token=x&command=%2Fhello&text=help+status&user_id=U1&text2=%E2%9C%93&ssl_check="
    assert fields(body, WANTED) == {"command": "/hello", "text": "help status", "ssl_check": ""}
    assert fields(b"text=d%C3%A9ploy", WANTED) == {"text": "déploy"}


@pytest.fixture
async def offline_bot(slack, base_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """A bot whose Slack Web API is unreachable: Bolt cannot even authorize a request."""
    env = {**base_env, "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    bot = await start_bot(slack, env)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def post(bot: Bot, text: str, *, secret: str = SECRET) -> tuple[int, dict | str]:
    body = f"command=%2Fhello&text={text}&user_id=U3&channel_id=C1&team_id=T0001"
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": sign(secret, ts, body)}
    async with aiohttp.ClientSession() as http, http.post(f"{bot.server.url}/slack/events", data=body,
                                                          headers=headers) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def test_help_and_usage_errors_answer_without_bolt(offline_bot: Bot) -> None:
    status, body = await post(offline_bot, "help")
    assert status == 200 and isinstance(body, dict)
    assert body["response_type"] == "ephemeral" and "/hello status" in body["text"]
    assert body["blocks"][0]["type"] == "header"
    status, again = await post(offline_bot, "help")
    assert again == body  # the same text, the same answer
    status, usage = await post(offline_bot, "status+2d")
    assert status == 200 and isinstance(usage, dict) and "unknown range `2d`" in usage["text"]


async def test_commands_that_work_still_go_through_bolt(offline_bot: Bot) -> None:
    status, body = await post(offline_bot, "status")
    # Bolt cannot authorize (auth.test is unreachable): the error handler answers, nothing runs
    assert status == 200 and "Sorry, something went wrong (reference" in str(body)
    assert not offline_bot.dispatcher.tasks


async def test_a_wrong_signature_is_never_answered_here(offline_bot: Bot) -> None:
    status, body = await post(offline_bot, "help", secret="not-the-secret")
    assert status == 401
    assert "/hello status" not in str(body)


async def test_a_command_that_works_is_parsed_once_on_its_way_to_bolt(bot: Bot) -> None:
    # the quick path parses every command before Bolt does; what it parsed is handed to the listener, so the
    # command is parsed (and its target resolved) once
    parsed: list[str] = []
    prepare = bot.dispatcher._prepare

    def counting(invocation):  # type: ignore[no-untyped-def]
        parsed.append(invocation.text)
        return prepare(invocation)

    bot.dispatcher._prepare = counting  # type: ignore[method-assign]
    status, _ = await post(bot, "history+3")
    assert status == 200
    await bot.dispatcher.drain(timeout=10)
    assert parsed == ["history 3"] and not bot.dispatcher._kept
    status, usage = await post(bot, "status+2d")  # an immediate answer is not kept
    assert "unknown range `2d`" in str(usage) and not bot.dispatcher._kept
