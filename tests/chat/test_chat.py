"""The bot in a channel: help, errors, security, rate limits, ack-first — through the Slack emulator."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
import pytest

from bot.core.errors import UsageError
from commands import MODULES, Command, Registry, default_registry
from sandbox.slack import Ephemeral, Message, SlackEmulator
from tests.harness.bot import Bot, start_bot, stop_bot


def ephemeral_to(user: str, needle: str):  # type: ignore[no-untyped-def]
    return lambda m: isinstance(m, Ephemeral) and m.user == user and needle in m.text


async def test_help_lists_every_command_privately(bot: Bot) -> None:
    reply = await bot.send("U3", "help")
    assert reply.status == 200
    body = reply.json
    assert body["response_type"] == "ephemeral"
    for command in bot.services.registry:
        assert command.usage in body["text"]
    assert len(list(bot.services.registry)) >= 2
    note = await bot.slack.wait_for(ephemeral_to("U3", "/hello status"))
    assert note.channel == "C1"
    assert bot.slack.messages("C1") == []  # nothing posted for everyone


async def test_bare_hello_is_help(bot: Bot) -> None:
    reply = await bot.send("U3", "")
    assert "/hello help" in reply.json["text"]


async def test_help_for_one_command_shows_its_docstring(bot: Bot) -> None:
    reply = await bot.send("U3", "help status")
    assert "15m, 1h, 6h, 24h, 7d" in reply.json["text"]
    # commands for one service say how to name it; the others do not
    assert "name the service and environment first, e.g. `/hello status greeter production" in reply.json["text"]
    assert "name the service and environment" not in (await bot.send("U3", "help schedule")).json["text"]


async def test_unknown_command_gets_usage_privately(bot: Bot) -> None:
    reply = await bot.send("U3", "frobnicate now")
    body = reply.json
    assert body["response_type"] == "ephemeral"
    assert "Unknown command `frobnicate`" in body["text"]
    assert "/hello status" in body["text"]
    await asyncio.sleep(0)
    assert bot.slack.messages("C1") == []


async def test_bad_arguments_get_the_usage_line(bot: Bot) -> None:
    reply = await bot.send("U1", "status 2d")
    assert "unknown range `2d`" in reply.json["text"]
    assert "Usage: /hello status" in reply.json["text"]


async def test_unbalanced_quotes_are_a_clear_error(bot: Bot) -> None:
    reply = await bot.send("U1", 'status "1h')
    assert "cannot read the arguments" in reply.json["text"]


async def test_status_without_a_cluster_says_why_and_still_posts(bot: Bot) -> None:
    reply = await bot.send("U3", "status")
    assert reply.status == 200 and reply.text == ""
    message = await bot.slack.wait_for(lambda m: isinstance(m, Message) and "Cluster unavailable" in str(m.blocks),
                                       timeout=15)
    assert "no-such-kubeconfig" in str(message.blocks) or "configuration" in str(message.blocks)
    assert "metrics unavailable" in str(message.blocks)


@pytest.mark.parametrize("tamper", ["signature", "missing", "stale"])
async def test_forged_requests_are_refused_and_nothing_runs(bot: Bot, tamper: str) -> None:
    reply = await bot.send("U1", "help", tamper=tamper)
    assert reply.status == 401
    # work is spawned before the HTTP answer leaves, so nothing can still be on its way
    assert not bot.dispatcher.tasks
    assert bot.slack.ephemerals("C1") == []
    assert bot.slack.messages("C1") == []
    assert not bot.dispatcher.tasks


async def test_health_ready_and_metrics_endpoints(bot: Bot) -> None:
    await bot.send("U3", "help")
    await bot.send("U3", "nope")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{bot.server.url}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{bot.server.url}/readyz") as r:
            assert r.status == 200
        async with http.get(f"{bot.server.url}/metrics") as r:
            text = await r.text()
    assert 'hello_chatops_commands_total{command="help",outcome="ok"}' in text
    assert "hello_chatops_handler_seconds" in text
    bot.server.app.ctx.ready["ok"] = False
    async with aiohttp.ClientSession() as http, http.get(f"{bot.server.url}/readyz") as r:
        assert r.status == 503


# ----------------------------------------------------------------- custom registries


@dataclass(frozen=True)
class _Req:
    mutating: bool
    arg: str = ""


def _module(name: str, *, mutating: bool, run) -> Command:  # type: ignore[no-untyped-def]
    usage = f"/hello {name} [arg]"

    def parse(args, config):  # type: ignore[no-untyped-def]
        if len(args) > 1:
            raise UsageError("one argument at most", usage)
        return _Req(mutating=mutating, arg=args[0] if args else "")

    return Command(name=name, usage=usage, doc=f"Test command {name}.", parse=parse, run=run)


async def _bot_with(slack: SlackEmulator, env: dict[str, str], *commands: Command) -> Bot:
    import bot.wiring as wiring

    registry = Registry()
    from commands import help as help_module

    registry.register(help_module.COMMAND)
    for command in commands:
        registry.register(command)
    original = wiring.default_registry
    wiring.default_registry = lambda: registry
    try:
        return await start_bot(slack, env)
    finally:
        wiring.default_registry = original


async def test_mutating_command_refused_for_non_deployer_and_runs_for_deployer(
    slack: SlackEmulator, base_env: dict[str, str]
) -> None:
    ran: list[str] = []

    async def run(request, ctx):  # type: ignore[no-untyped-def]
        from commands import Reply

        ran.append(ctx.invocation.user_id)
        return Reply(text=f"changed by {ctx.invocation.user_id}")

    b = await _bot_with(slack, base_env, _module("change", mutating=True, run=run))
    try:
        await b.send("U3", "change")
        await b.slack.wait_for(ephemeral_to("U3", "not a deployer"))
        assert ran == []
        await b.send("U1", "change")
        await b.slack.wait_for(lambda m: isinstance(m, Message) and m.text == "changed by U1")
        assert ran == ["U1"]
    finally:
        await stop_bot(b)


async def test_no_deployers_configured_refuses_with_how_to(slack: SlackEmulator, base_env: dict[str, str]) -> None:
    async def run(request, ctx):  # type: ignore[no-untyped-def]
        raise AssertionError("must not run")

    env = {k: v for k, v in base_env.items() if k != "HELLO_DEPLOYERS"}
    b = await _bot_with(slack, env, _module("change", mutating=True, run=run))
    try:
        await b.send("U1", "change")
        note = await b.slack.wait_for(ephemeral_to("U1", "HELLO_DEPLOYERS"))
        assert "Nobody may" in note.text
    finally:
        await stop_bot(b)


async def test_ack_leaves_before_the_work_finishes(slack: SlackEmulator, base_env: dict[str, str]) -> None:
    gate = asyncio.Event()

    async def run(request, ctx):  # type: ignore[no-untyped-def]
        from commands import Reply

        await gate.wait()
        return Reply(text="slow work done")

    b = await _bot_with(slack, base_env, _module("slow", mutating=False, run=run))
    try:
        reply = await asyncio.wait_for(b.send("U3", "slow"), timeout=5)
        assert reply.status == 200
        assert len(b.dispatcher.tasks) == 1  # the work is still waiting
        gate.set()
        await b.slack.wait_for(lambda m: isinstance(m, Message) and m.text == "slow work done")
    finally:
        gate.set()
        await stop_bot(b)


async def test_unexpected_error_gives_reference_and_logs_traceback(
    slack: SlackEmulator, base_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async def run(request, ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("internal detail xoxb-secret-token")

    b = await _bot_with(slack, base_env, _module("boom", mutating=False, run=run))
    try:
        with caplog.at_level(logging.ERROR):
            await b.send("U3", "boom")
            note = await b.slack.wait_for(ephemeral_to("U3", "Reference"))
        ref = note.text.split("Reference: ")[1].strip()
        assert "xoxb" not in note.text and "internal detail" not in note.text
        assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)
    finally:
        await stop_bot(b)


async def test_rate_limited_post_is_retried_and_delivered_once(
    slack: SlackEmulator, base_env: dict[str, str]
) -> None:
    from commands import Reply

    async def run(request, ctx):  # type: ignore[no-untyped-def]
        return Reply(text="posted despite 429")

    b = await _bot_with(slack, base_env, _module("post", mutating=False, run=run))
    try:
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)
        await b.send("U3", "post")
        await b.slack.wait_for(lambda m: isinstance(m, Message) and m.text == "posted despite 429", timeout=10)
        await b.dispatcher.drain()
        assert [m.text for m in slack.messages("C1")] == ["posted despite 429"]
        statuses = [c.get("status") for c in slack.calls if c.get("method") == "chat.postMessage"]
        assert 429 in statuses, statuses
    finally:
        await stop_bot(b)


def test_default_registry_has_one_module_per_command() -> None:
    registry = default_registry()
    assert "help" in registry and "status" in registry
    for command in registry:
        assert command.name in MODULES
        assert command.usage.startswith(f"/hello {command.name}")
        assert command.summary and command.help


async def test_tokens_never_reach_logs_or_messages(
    bot: Bot, base_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await bot.send("U3", "status")
        await bot.slack.wait_for(lambda m: isinstance(m, Message) and "Cluster unavailable" in str(m.blocks),
                                 timeout=15)
        await bot.send("U3", "help")
        await bot.send("U3", "nope", tamper="signature")
        await bot.dispatcher.drain()
    secrets = [base_env["SLACK_BOT_TOKEN"], base_env["SLACK_SIGNING_SECRET"]]
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records, "expected some logging at DEBUG"
    posted = str(bot.slack.state())
    for secret in secrets:
        assert secret not in logged
        assert secret not in posted


async def test_garbage_timestamp_is_refused(bot: Bot) -> None:
    import time as _time

    from sandbox.slack.client import sign

    body = "command=%2Fhello&text=help&user_id=U3&channel_id=C1&team_id=T0001"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": "soon",
               "X-Slack-Signature": sign("test-signing-secret", str(int(_time.time())), body)}
    async with aiohttp.ClientSession() as http, http.post(f"{bot.server.url}/slack/events", data=body,
                                                          headers=headers) as r:
        assert r.status in (400, 401)
    assert bot.slack.ephemerals("C1") == []
