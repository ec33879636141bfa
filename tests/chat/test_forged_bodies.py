"""`/slack/events` checks the signature on the raw bytes before anything reads the body.

Unsigned bodies are refused with 401 whatever they hold, signed bodies that cannot be decoded get
400, bodies over the limit get 413; each refusal is one short log line, never the body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import quote

import aiohttp
import pytest

from bot.chat.app import build_app
from bot.chat.server import MAX_BODY_BYTES
from bot.core import config as config_module
from bot.wiring import build_services
from sandbox.slack.client import sign
from tests.harness.bot import SECRET, Bot, start_bot, stop_bot

MARK = "zz-body-marker-zz"  # appears in every body below: it must never appear in the log
FORM = "application/x-www-form-urlencoded"

BODIES: dict[str, tuple[bytes, str]] = {
    "non-utf8": (b"command=%2Fhello&text=" + MARK.encode() + b"\xff\xfe\xc3(", FORM),
    "broken-payload-json": (b"payload=" + quote('{"type": "block_actions", "' + MARK).encode(), FORM),
    "deeply-nested-json": (b'{"m": "' + MARK.encode() + b'", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
                           "application/json"),
    "plain-command": (b"command=%2Fhello&text=help&user_id=U3&channel_id=C1&token=tok-"
                      + MARK.encode() + b"&response_url=http%3A%2F%2F127.0.0.1%3A9%2F" + MARK.encode(), FORM),
}


def headers_for(body: bytes, content_type: str, *, secret: str = "not-the-secret") -> dict[str, str]:
    ts = str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(secret, ts, body)}


async def post(bot: Bot, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(f"{bot.server.url}/slack/events", data=body,
                                                          headers=headers) as r:
        return r.status, await r.text()


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name != "asyncio"]


def assert_one_short_line(records: list[logging.LogRecord], status: int) -> None:
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info], \
        [r.getMessage()[:200] for r in records]
    everything = "\n".join(r.getMessage() for r in records)
    assert MARK not in everything, everything[:300]
    refusals = [r for r in records if r.name == "bot.chat.server"]
    assert len(refusals) == 1, [r.getMessage() for r in records]
    line = refusals[0].getMessage()
    assert "\n" not in line and len(line) < 200 and str(status) in line and "/slack/events" in line


@pytest.fixture
async def verbose_bot(slack, base_env: dict[str, str], caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    """A bot started with logging at DEBUG, as an operator chasing a problem would run it."""
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="slack_bolt"):
        bot = await start_bot(slack, base_env)
        try:
            caplog.clear()
            yield bot
        finally:
            await stop_bot(bot)


@pytest.mark.parametrize("kind", list(BODIES))
async def test_unsigned_bodies_are_refused_before_anything_reads_them(
    verbose_bot: Bot, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    body, content_type = BODIES[kind]
    status, text = await post(verbose_bot, body, headers_for(body, content_type))
    assert status == 401
    assert MARK not in text
    assert_one_short_line(logged(caplog), 401)
    assert not verbose_bot.dispatcher.tasks


@pytest.mark.parametrize("kind", ["non-utf8", "broken-payload-json", "deeply-nested-json"])
async def test_signed_but_undecodable_bodies_get_400_without_a_traceback(
    verbose_bot: Bot, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    body, content_type = BODIES[kind]
    status, text = await post(verbose_bot, body, headers_for(body, content_type, secret=SECRET))
    assert status == 400
    assert MARK not in text
    assert_one_short_line(logged(caplog), 400)
    assert not verbose_bot.dispatcher.tasks


@pytest.mark.parametrize("signed", [True, False])
async def test_a_body_over_the_limit_gets_413(verbose_bot: Bot, caplog: pytest.LogCaptureFixture,
                                              signed: bool) -> None:
    body = b"command=%2Fhello&text=" + MARK.encode() + b"x" * MAX_BODY_BYTES
    headers = headers_for(body, FORM, secret=SECRET if signed else "not-the-secret")
    status, _ = await post(verbose_bot, body, headers)
    assert status == 413
    assert_one_short_line(logged(caplog), 413)
    # just under the limit is still read (and refused only for its signature)
    small = b"command=%2Fhello&text=" + b"x" * (MAX_BODY_BYTES - 40)
    status, _ = await post(verbose_bot, small, headers_for(small, FORM))
    assert status == 401


async def test_a_chunked_body_over_the_limit_gets_413(verbose_bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b"command=%2Fhello&text=" + MARK.encode()
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"x" * 4096

    headers = headers_for(b"", FORM)
    try:
        status, _ = await post(verbose_bot, chunks(), headers)  # type: ignore[arg-type]
    except aiohttp.ClientError:
        status = 413  # the server may close before the client finished sending; the log says why
    assert status == 413
    assert_one_short_line(logged(caplog), 413)


async def test_a_declared_length_over_the_limit_is_refused_unread(
    verbose_bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection(verbose_bot.server.host, verbose_bot.server.port)
    try:
        ts = str(int(time.time()))
        writer.write((f"POST /slack/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: {FORM}\r\n"
                      f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: v0=00\r\n"
                      "Content-Length: 10000000\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413"
    assert_one_short_line(logged(caplog), 413)


async def test_signed_requests_still_work(verbose_bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    reply = await verbose_bot.send("U3", "help")
    assert reply.status == 200 and "/hello status" in reply.json["text"]
    reply = await verbose_bot.send("U3", "status 1h")  # goes through Bolt
    assert reply.status == 200
    await verbose_bot.dispatcher.drain()
    assert not [r for r in caplog.records if r.name == "bot.chat.server"]


async def test_bolt_itself_never_logs_a_refused_body(slack, base_env: dict[str, str],  # type: ignore[no-untyped-def]
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Even a request that reaches Bolt unsigned (not through our route) leaves no body in the log."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    body, content_type = BODIES["plain-command"]
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="slack_bolt"):
        services = build_services(config_module.load(base_env))
        try:
            bolt = build_app(services)
            response = await bolt.async_dispatch(AsyncBoltRequest(body=body.decode(),
                                                                  headers=headers_for(body, content_type)))
        finally:
            await services.close()
    assert response.status == 401
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert MARK not in everything
    assert json.dumps(MARK) not in everything
