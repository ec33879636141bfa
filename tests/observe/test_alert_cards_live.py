"""Alert cards against the real Alertmanager (and, end to end, the real Prometheus and a real helloworld).

The bot is the real one (its HTTP server, the Kubernetes emulator, the Slack emulator); Alertmanager
posts to the bot's ``/alertmanager`` with the bearer token, and "Silence 1h" creates the silence in
the real Alertmanager through its API v2.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.observe.prom import Prometheus
from helloworld.runner import start
from sandbox.alertmanager import AlertmanagerNotInstalled, AlertmanagerServer, find_binary
from sandbox.prometheus import SERVICE_TARGET_LABELS, PrometheusServer, shortened_rules
from sandbox.slack.state import Message
from tests.harness.alerting import TOKEN, card_saying, notification, webhook
from tests.harness.chat import release_stack

ENV = {"HELLO_ALERT_TOKEN": TOKEN, "HELLO_OPS_CHANNELS": "C1"}


def _needs_alertmanager() -> None:
    try:
        find_binary()
    except AlertmanagerNotInstalled as exc:
        pytest.skip(str(exc))


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


@pytest.mark.prometheus
async def test_silence_1h_creates_a_silence_in_alertmanager_and_says_so_on_the_card() -> None:
    _needs_alertmanager()
    async with AlertmanagerServer() as am, release_stack(env={**ENV, "HELLO_ALERTMANAGER_URL": am.url}) as chat:
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await chat.stack.services.alerts.drain()
        clicked = datetime.now(UTC)
        await chat.click("U1", card, "alert_silence")
        silenced = await card_saying(chat, "silenced by <@U1> until")
        assert silenced.ts == card.ts
        assert chat.button(silenced, "alert_silence") is None, "one silence per card"

        silences = await asyncio.to_thread(_get, f"{am.url}/api/v2/silences")
        [silence] = [s for s in silences if s["status"]["state"] == "active"]
        assert sorted((m["name"], m["value"], m["isEqual"]) for m in silence["matchers"]) == [
            ("alertname", "HelloworldHighErrorRate", True), ("namespace", "hello", True),
            ("service", "helloworld", True)]
        assert silence["createdBy"].startswith("U1")
        ends = datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
        assert 59 * 60 <= (ends - clicked).total_seconds() <= 61 * 60
        await chat.settle()
        [event] = chat.audit_events("HelloAlertSilenced")
        assert "U1" in event["message"]


@pytest.mark.prometheus
async def test_a_silence_alertmanager_does_not_create_changes_nothing_and_says_why() -> None:
    async with release_stack(env={**ENV, "HELLO_ALERTMANAGER_URL": "http://127.0.0.1:9"}) as chat:
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await chat.stack.services.alerts.drain()
        await chat.click("U1", card, "alert_silence")
        await chat.private("U1", "Alertmanager did not create the silence")
        assert "silenced" not in json.dumps(chat.message(card.ts).blocks)


def _up(prom_url: str) -> bool:
    query = urllib.parse.urlencode({"query": 'up{app="helloworld"} == 1'})
    return bool(_get(f"{prom_url}/api/v1/query?{query}")["data"]["result"])


async def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds}s")
        await asyncio.sleep(0.2)


def _traffic(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as answer:
            answer.read()
        time.sleep(0.05)


@pytest.mark.prometheus
async def test_end_to_end_a_target_down_becomes_a_card_then_turns_green(tmp_path: Path) -> None:
    """helloworld stops -> the real Prometheus fires HelloworldTargetDown (rules with `for` cut to 1 s) ->
    the real Alertmanager posts to the bot -> a card in the channel; helloworld back -> resolved -> green."""
    _needs_alertmanager()
    rules = shortened_rules(tmp_path / "rules.yaml", max_for="1s")
    hello = await asyncio.to_thread(start, "v1", drain_seconds=0)
    port = hello.port
    try:
        async with release_stack(env=ENV) as chat:
            bot = chat.stack.replicas[0]
            async with AlertmanagerServer(webhook_url=f"{bot.server.url}/alertmanager", token=TOKEN) as am, \
                    PrometheusServer(scrape_interval="1s", evaluation_interval="1s", rule_files=[rules],
                                     alertmanagers=[am.url], target_labels=SERVICE_TARGET_LABELS,
                                     targets=[(f"127.0.0.1:{port}", {"track": "stable"})]) as prom:
                config = bot.services.config
                bot.services.shared.prometheus = Prometheus(prom.url, timeout=2, names=config.metrics)
                await _until(lambda: _up(prom.url), 20, "helloworld scraped")
                await asyncio.to_thread(_traffic, f"http://127.0.0.1:{port}/v1/hello", 4.0)  # something to chart
                await asyncio.to_thread(hello.stop)
                stopped = time.monotonic()

                card = await card_saying(chat, "Firing: HelloworldTargetDown", timeout=40)
                posted = time.monotonic()
                text = json.dumps(card.blocks)
                assert "critical" in text and "cannot be scraped" in text and "stable `v1`" in text
                await bot.services.alerts.drain()
                thread = [m for m in chat.slack.messages("C1", thread_ts=card.ts) if m.ts != card.ts]
                assert len(thread) == 1 and thread[0].files, [m.text for m in thread]  # the chart

                hello = await asyncio.to_thread(start, "v1", port=port, drain_seconds=0)
                green = await card_saying(chat, "Resolved: HelloworldTargetDown", timeout=40)
                assert green.ts == card.ts
                await bot.services.alerts.drain()
                cards = [m for m in chat.slack.messages("C1") if isinstance(m, Message)
                         and m.thread_ts in (None, m.ts) and "HelloworldTargetDown" in m.text]
                assert len(cards) == 1
                print(f"\ntarget stopped -> card posted: {posted - stopped:.1f} s; webhook arrived -> card posted: "
                      f"{bot.services.alerts.posted_seconds[0] * 1000:.0f} ms; "
                      f"chart uploaded in the card's thread")
    finally:
        await asyncio.to_thread(hello.stop)


@pytest.mark.prometheus
async def test_an_alert_said_to_start_far_in_the_future_still_gets_its_chart_window() -> None:
    async with release_stack(env=ENV) as chat, PrometheusServer(scrape_interval="1s") as prom:
        bot = chat.stack.replicas[0]
        bot.services.shared.prometheus = Prometheus(prom.url, timeout=2, names=bot.services.config.metrics)
        far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        assert (await webhook(chat, notification(started=far)))[0] == 200
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await bot.services.alerts.drain()
        [note] = [m for m in chat.slack.messages("C1", thread_ts=card.ts) if m.ts != card.ts]
        assert note.text == "No traffic around the alert's start: no chart.", note.text
