"""The bot's Slack client copes with Slack's limits: a 429 waits ``Retry-After`` (in every form) and tries again,
holding only the calls that share the limit, a 5xx page is retried and named by its status, a form is never opened
past its trigger's life, a limit that persists ends as a SlackError after a bounded number of tries, and every
failed answer is counted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.chat import metrics
from bot.chat.messenger import Messenger, SlackError, make_client, retry_after
from bot.core import config as config_module
from sandbox.slack import SlackEmulator
from sandbox.slack.limits import POST_MESSAGE, Limit


@pytest.fixture
def messenger(base_env: dict[str, str]) -> Messenger:
    return Messenger(make_client(config_module.load(base_env)))


def _statuses(slack: SlackEmulator, method: str) -> list[int]:
    return [call["status"] for call in slack.calls if call["method"] == method]


async def test_a_429_from_a_fault_rule_is_waited_out_and_the_message_posted_once(
        slack: SlackEmulator, messenger: Messenger) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    ts = await messenger.post("C1", "rolled out")
    assert [m.ts for m in slack.messages("C1")] == [ts]
    assert _statuses(slack, "chat.postMessage") == [429, 200]


async def test_a_flood_into_one_channel_passes_the_burst_and_is_then_paced_by_retry_after(
        slack: SlackEmulator, messenger: Messenger) -> None:
    # the burst goes through at once; the next message meets the per-channel limit, and the client
    # waits Retry-After and posts it (the emulator's clock stands still until the client waits, so a
    # slow machine cannot refill the bucket meanwhile)
    now = [0.0]
    slack.limits.follow(lambda: now[0])
    for n in range(POST_MESSAGE.burst):
        await messenger.post("C1", f"alert {n}")
    last = asyncio.ensure_future(messenger.post("C1", f"alert {POST_MESSAGE.burst}"))
    await _until(lambda: 429 in _statuses(slack, "chat.postMessage"))
    now[0] += 2.0  # the Retry-After passes for the emulator too
    await last
    assert [m.text for m in slack.messages("C1")] == [f"alert {n}" for n in range(POST_MESSAGE.burst + 1)]
    statuses = _statuses(slack, "chat.postMessage")
    assert statuses.count(200) == POST_MESSAGE.burst + 1
    assert 429 in statuses
    assert {entry["key"] for entry in slack.rate_limited} == {"C1"}
    assert slack.state()["rate_limited"]["count"] == statuses.count(429)


async def test_a_server_error_page_is_retried(slack: SlackEmulator, messenger: Messenger) -> None:
    ts = await messenger.post("C1", "first")
    slack.fail("chat.update", status=503)
    await messenger.update("C1", ts, "second")
    assert slack.messages("C1")[0].text == "second"
    assert _statuses(slack, "chat.update") == [503, 200]


async def test_a_limit_that_persists_ends_as_a_slack_error_after_bounded_tries(
        slack: SlackEmulator, messenger: Messenger) -> None:
    slack.add_fault("chat.postEphemeral", status=429, count=None, retry_after=1)
    with pytest.raises(SlackError) as err:
        await messenger.ephemeral("C1", "U1", "hello")
    assert err.value.error == "ratelimited"
    assert _statuses(slack, "chat.postEphemeral") == [429] * 4  # the call and three retries
    assert slack.ephemerals("C1") == []


def _errors(method: str, error: str) -> float:
    return metrics.SLACK_ERRORS.labels(method=method, error=error)._value.get()


@pytest.mark.parametrize("retry_after", ["1.5", "0.2", "date"])
async def test_retry_after_in_decimal_seconds_or_as_an_http_date_is_waited_out(
        slack: SlackEmulator, messenger: Messenger, retry_after: str) -> None:
    if retry_after == "date":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
    slack.add_fault("chat.postMessage", status=429, retry_after=retry_after)
    ts = await messenger.post("C1", "rolled out")
    assert [m.ts for m in slack.messages("C1")] == [ts]
    assert _statuses(slack, "chat.postMessage") == [429, 200]


def test_retry_after_is_read_in_every_form_and_bounded() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert retry_after("10", lambda: now) == 10.0
    assert retry_after("1.5", lambda: now) == 1.5
    assert retry_after("Mon, 07 Dec 2026 12:00:30 GMT", lambda: now) == 30.0
    assert retry_after("Mon, 07 Dec 2026 11:59:00 GMT", lambda: now) == 0.0  # already passed
    assert retry_after(None) == retry_after("soon") == retry_after("nan") == 1.0
    assert retry_after("99999") == 300.0 and retry_after("-3") == 0.0


async def test_a_502_page_is_retried_and_when_it_persists_is_named_by_its_status(
        slack: SlackEmulator, messenger: Messenger) -> None:
    ts = await messenger.post("C1", "first")
    slack.fail("chat.update", status=502)
    await messenger.update("C1", ts, "second")
    assert slack.messages("C1")[0].text == "second"
    assert _statuses(slack, "chat.update") == [502, 200]
    before = _errors("chat.update", "http_502")
    slack.add_fault("chat.update", status=502, count=None)
    with pytest.raises(SlackError) as err:
        await messenger.update("C1", ts, "third")
    assert err.value.error == "http_502"
    assert _errors("chat.update", "http_502") - before == 4  # every failed answer is counted
    assert messenger.edits_pending == 1  # the edit Slack did not take waits to be sent again
    slack.clear_faults()
    assert await messenger.resend() == 1 and messenger.edits_pending == 0
    assert slack.messages("C1")[0].text == "third"


async def test_a_429_that_was_waited_out_is_still_counted(slack: SlackEmulator, messenger: Messenger) -> None:
    before = _errors("chat.postMessage", "ratelimited")
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    await messenger.post("C1", "rolled out")
    assert _errors("chat.postMessage", "ratelimited") - before == 1


async def test_a_views_open_is_not_tried_past_its_triggers_life(slack: SlackEmulator, messenger: Messenger) -> None:
    before = _errors("views.open", "trigger_expired")
    slack.add_fault("views.open", status=429, retry_after=5)
    with pytest.raises(SlackError) as err:
        await messenger.open_view("1.2.3", {"type": "modal", "title": {"type": "plain_text", "text": "x"},
                                            "blocks": []})
    assert err.value.error == "trigger_expired"
    assert _statuses(slack, "views.open") == [429]  # not tried again after the 3 s
    assert _errors("views.open", "trigger_expired") - before == 1


async def test_one_channels_limit_holds_that_channel_only(slack: SlackEmulator, messenger: Messenger) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=4)
    held = asyncio.ensure_future(messenger.post("C1", "into a limited channel"))
    await _until(lambda: _statuses(slack, "chat.postMessage") == [429])
    other = await asyncio.wait_for(messenger.post("C2", "elsewhere"), timeout=2.5)  # Retry-After is 4 s
    assert not held.done() and [m.ts for m in slack.messages("C2")] == [other]
    await held
    assert [m.text for m in slack.messages("C1")] == ["into a limited channel"]


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_calls_held_by_one_limit_go_one_after_another_not_all_at_once(
        slack: SlackEmulator, messenger: Messenger) -> None:
    # a channel that takes one message a second and no burst: six posted at once are all posted, each waiting
    # its turn after the limit, instead of all trying again at the same moment and spending their tries
    slack.limits.limits["chat.postMessage"] = Limit("one a second", 60, 1, key="channel")
    slack.limits.reset()
    texts = [f"request {n}" for n in range(6)]
    await asyncio.gather(*(messenger.post("C1", text) for text in texts))
    assert sorted(m.text for m in slack.messages("C1")) == texts
