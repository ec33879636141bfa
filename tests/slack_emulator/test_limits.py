"""Slack's rate limits as the emulator enforces them (tiers, chat.postMessage per channel), switched off,
and fault rules that force a 429 or a 5xx page; counted on a clock the test advances, never timed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator
from sandbox.slack.limits import DOCUMENTED, POST_MESSAGE, TIER_2, TIER_3, RateLimits

TOKEN = "xoxb-test-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def emu(clock: Clock) -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(bot_token=TOKEN, rate_limits=RateLimits(clock=clock)) as emulator:
        yield emulator


async def call(emu: SlackEmulator, method: str, **args: Any) -> tuple[int, dict[str, str], Any]:
    """One raw Web API call: status, headers and the body (JSON, or the text of a page)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.api_url + method, json=args,
                                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, dict(resp.headers), body


async def test_a_tier_2_method_answers_429_with_retry_after_past_its_burst(emu: SlackEmulator, clock: Clock) -> None:
    assert DOCUMENTED["usergroups.users.list"] is TIER_2
    for _ in range(TIER_2.burst):
        status, _, body = await call(emu, "usergroups.users.list", usergroup="S1")
        assert status == 200 and body["ok"]
    status, headers, body = await call(emu, "usergroups.users.list", usergroup="S1")
    assert status == 429
    assert body == {"ok": False, "error": "ratelimited"}
    assert headers["Retry-After"] == "3"  # 20 a minute: one every 3 seconds
    clock.now += 2
    assert (await call(emu, "usergroups.users.list", usergroup="S1"))[0] == 429
    clock.now += 1
    assert (await call(emu, "usergroups.users.list", usergroup="S1"))[0] == 200
    # other methods have buckets of their own
    assert (await call(emu, "users.info", user="U1"))[0] == 200


async def test_slack_sdk_sees_ratelimited_with_the_header(emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    first = await client.chat_postMessage(channel="C1", text="edit me")
    for n in range(TIER_3.burst):
        await client.chat_update(channel="C1", ts=first["ts"], text=f"edit {n}")
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts=first["ts"], text="one too many")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "2"  # 50 a minute
    assert err.value.response["error"] == "ratelimited"
    assert emu.messages("C1")[0].text == f"edit {TIER_3.burst - 1}"


async def test_post_message_is_limited_per_channel_and_a_refused_post_stores_nothing(
        emu: SlackEmulator, clock: Clock) -> None:
    for n in range(POST_MESSAGE.burst):
        assert (await call(emu, "chat.postMessage", channel="C1", text=f"m{n}"))[0] == 200
    status, headers, _ = await call(emu, "chat.postMessage", channel="C1", text="flood")
    assert status == 429 and headers["Retry-After"] == "1"
    # the channel's name reaches the same bucket as its id
    assert (await call(emu, "chat.postMessage", channel="#ops", text="flood"))[0] == 429
    assert len(emu.messages("C1")) == POST_MESSAGE.burst
    assert "flood" not in [m.text for m in emu.messages("C1")]
    # another channel has its own allowance
    assert (await call(emu, "chat.postMessage", channel="C2", text="elsewhere"))[0] == 200
    # one message a second refills
    clock.now += 1
    assert (await call(emu, "chat.postMessage", channel="C1", text="later"))[0] == 200
    assert (await call(emu, "chat.postMessage", channel="C1", text="too soon"))[0] == 429
    assert [(e["method"], e["key"], e["source"]) for e in emu.rate_limited] == [
        ("chat.postMessage", "C1", "limit")] * 3


async def test_the_state_page_says_when_the_app_was_rate_limited(emu: SlackEmulator) -> None:
    assert emu.state()["rate_limited"] == {"count": 0, "recent": [],
                                           "line": "The app has not been rate-limited."}
    events: list[dict[str, Any]] = []
    emu.subscribe(events.append)
    emu.rate_limit("chat.postMessage", retry_after=4)
    assert (await call(emu, "chat.postMessage", channel="C1", text="x"))[0] == 429
    async with aiohttp.ClientSession() as session, session.get(emu.base_url + "/_emulator/state") as resp:
        state = await resp.json()
    assert state["rate_limited"]["count"] == 1
    assert state["rate_limited"]["line"].startswith("The app was rate-limited once; last: chat.postMessage at ")
    assert state["rate_limited"]["line"].endswith("Retry-After 4 s (fault rule)")
    assert [e["type"] for e in events] == ["rate_limited"]


async def test_limits_can_be_switched_off_and_on(emu: SlackEmulator) -> None:
    emu.limits.enabled = False
    for n in range(POST_MESSAGE.burst + 5):
        assert (await call(emu, "chat.postMessage", channel="C1", text=f"m{n}"))[0] == 200
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.base_url + "/_emulator/limits", json={"enabled": True, "reset": True}) as resp:
            described = await resp.json()
        assert described["enabled"] is True
        assert described["limits"]["chat.postMessage"] == {"label": POST_MESSAGE.label, "per_minute": 60,
                                                           "burst": POST_MESSAGE.burst, "per": "channel"}
        async with session.post(emu.base_url + "/_emulator/limits", json={"enabled": "maybe"}) as resp:
            assert resp.status == 400
    for n in range(POST_MESSAGE.burst):
        assert (await call(emu, "chat.postMessage", channel="C1", text=f"again {n}"))[0] == 200
    assert (await call(emu, "chat.postMessage", channel="C1", text="over"))[0] == 429


async def test_an_emulator_without_limits_never_answers_429() -> None:
    async with SlackEmulator(bot_token=TOKEN, rate_limits=False) as emu:
        for n in range(POST_MESSAGE.burst * 2):
            assert (await call(emu, "chat.postMessage", channel="C1", text=f"m{n}"))[0] == 200
        assert emu.state()["rate_limited"]["count"] == 0


async def test_fault_rule_forces_429_for_the_next_n_calls(emu: SlackEmulator) -> None:
    emu.add_fault("views.publish", status=429, count=2, retry_after=30)
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    for _ in range(2):
        status, headers, body = await call(emu, "views.publish", user_id="U1", view=view)
        assert (status, headers["Retry-After"], body) == (429, "30", {"ok": False, "error": "ratelimited"})
    assert emu.home("U1") is None
    assert (await call(emu, "views.publish", user_id="U1", view=view))[0] == 200
    assert emu.home("U1") is not None


async def test_fault_rule_forces_an_html_5xx_page(emu: SlackEmulator) -> None:
    emu.add_fault("chat.postMessage", status=503, count=1)
    status, headers, body = await call(emu, "chat.postMessage", channel="C1", text="x")
    assert status == 503
    assert headers["Content-Type"].startswith("text/html")
    assert "<h1>503 Service Unavailable</h1>" in body
    assert emu.messages("C1") == []
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    emu.add_fault("chat.postMessage", status=500, count=1)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 500
    # a JSON error instead of the page, when asked
    emu.add_fault("chat.postMessage", status=500, error="internal_error")
    assert (await call(emu, "chat.postMessage", channel="C1", text="x"))[2] == {"ok": False,
                                                                               "error": "internal_error"}


async def test_fault_rules_match_any_method_until_cleared_and_refuse_bad_rules(emu: SlackEmulator) -> None:
    emu.add_fault(None, status=502, count=None)
    assert (await call(emu, "auth.test"))[0] == 502
    assert (await call(emu, "users.info", user="U1"))[0] == 502
    emu.clear_faults()
    assert (await call(emu, "auth.test"))[0] == 200
    with pytest.raises(ValueError):
        emu.add_fault("auth.test", status=404)
    with pytest.raises(ValueError):
        emu.add_fault("auth.test", count=0)


async def test_fault_rules_over_http(emu: SlackEmulator) -> None:
    rules = [{"method": "chat.update", "status": 429, "count": 1, "retry_after": 9},
             {"method": "chat.delete", "status": 500}]
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.base_url + "/_emulator/faults", data=json.dumps(rules)) as resp:
            assert resp.status == 201
            assert [r["method"] for r in (await resp.json())["faults"]] == ["chat.update", "chat.delete"]
        async with session.post(emu.base_url + "/_emulator/faults", json={"status": 404}) as resp:
            assert resp.status == 400
        async with session.post(emu.base_url + "/_emulator/faults", json={"nonsense": 1}) as resp:
            assert resp.status == 400
    status, headers, _ = await call(emu, "chat.update", channel="C1", ts="1.0", text="x")
    assert (status, headers["Retry-After"]) == (429, "9")
    async with aiohttp.ClientSession() as session:
        async with session.get(emu.base_url + "/_emulator/faults") as resp:
            assert [r["method"] for r in (await resp.json())["faults"]] == ["chat.delete"]
        async with session.delete(emu.base_url + "/_emulator/faults") as resp:
            assert (await resp.json()) == {"faults": []}


def test_every_method_the_emulator_serves_has_its_documented_limit() -> None:
    emu = SlackEmulator()
    served = set(emu.webapi.methods) | set(emu.webapi.app_methods)
    assert served <= set(DOCUMENTED), served - set(DOCUMENTED)
    assert DOCUMENTED["apps.connections.open"].label == "Tier 1"
    assert DOCUMENTED["chat.update"] is TIER_3
    assert DOCUMENTED["views.publish"].label == "Tier 4"
