"""`/metrics` labels stay bounded whatever a click carries."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import aiohttp

from bot.chat import metrics
from bot.chat.views import approval
from bot.observe import alert_card
from bot.release.buttons import ALERT_ACTIONS, FOLLOW_UPS
from bot.release.messages import BUTTONS
from sandbox.slack import Ephemeral
from tests.harness.bot import Bot

ROOT = Path(__file__).resolve().parents[2]


async def test_an_unknown_action_id_is_counted_as_unknown(bot: Bot) -> None:
    invented = f"x{uuid.uuid4().hex}"
    button = {"type": "actions", "block_id": "b1", "elements": [
        {"type": "button", "action_id": invented, "text": {"type": "plain_text", "text": "Press"}, "value": "1"}]}
    ts = await bot.services.messenger.post("C1", "a button from elsewhere", [button])
    reply = await bot.slack.click(user="U3", channel="C1", message_ts=ts, action_id=invented)
    assert reply.status == 200
    await bot.slack.wait_for(lambda m: isinstance(m, Ephemeral) and "not handled" in m.text)
    await bot.dispatcher.drain()
    async with aiohttp.ClientSession() as http, http.get(f"{bot.server.url}/metrics") as r:
        text = await r.text()
    assert invented not in text
    assert re.search(r'hello_chatops_button_actions_total\{action="unknown",outcome="refused"\} [1-9]', text), text


def test_every_button_the_bot_renders_is_a_known_action() -> None:
    rendered = {approval.APPROVE, approval.REJECT}
    rendered |= {b["action_id"] for b in BUTTONS.values()} | set(FOLLOW_UPS) | set(ALERT_ACTIONS)
    rendered |= {alert_card.ROLLBACK, alert_card.ABORT, alert_card.SILENCE, alert_card.ACK}
    assert {"approve", "reject", "release_promote", "alert_ack"} <= rendered
    assert rendered <= metrics.ACTION_IDS
    assert metrics.action_label("approve") == "approve"
    assert metrics.action_label(json.dumps({"a": 1})) == "unknown"
