"""The bot's Slack client copes with Slack's limits: a 429 waits ``Retry-After`` and tries again, a 5xx
page is retried, and a limit that persists ends as a SlackError after a bounded number of tries."""

from __future__ import annotations

import pytest

from bot.chat.messenger import Messenger, SlackError, make_client
from bot.core import config as config_module
from sandbox.slack import SlackEmulator
from sandbox.slack.limits import POST_MESSAGE


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
    # waits Retry-After and posts it
    for n in range(POST_MESSAGE.burst + 1):
        await messenger.post("C1", f"alert {n}")
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
