"""Alertmanager -> ``POST /alertmanager`` -> one card per alert group in the channel, and its buttons.

The bot runs for real (its HTTP server, the Kubernetes emulator enforcing the bot's Role, the Slack
emulator); the webhooks are the bodies Alertmanager sends (version "4"), posted over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.observe.alert_group import AlertGroup, group_id
from bot.observe.alert_store import AlertStore
from sandbox.slack.state import Message
from tests.harness.alerting import ENV, KEY, TOKEN, card_saying, notification, webhook
from tests.harness.chat import NS, Chat, button


def cards(chat: Chat) -> list[Message]:
    return [m for m in chat.slack.messages("C1") if m.thread_ts in (None, m.ts) and "HelloworldHighErrorRate" in m.text]


def stored(chat: Chat) -> list[dict] | None:
    """The alert groups' ConfigMaps (None when there is none)."""
    store = chat.stack.services.alerts.store
    found = [cm for cm in chat.kube.list("", "v1", "configmaps", NS)
             if cm["metadata"]["name"].startswith(store.prefix + "-")]
    return found or None


async def test_refusals_change_nothing(release: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with release(env=ENV) as chat:
        body = notification()
        assert (await webhook(chat, body, token=None))[0] == 401
        assert (await webhook(chat, body, token="wrong-token"))[0] == 401
        assert (await webhook(chat, body, token=TOKEN + "x"))[0] == 401
        status, _ = await webhook(chat, body, raw=b"{" + b" " * (1024 * 1024 + 10) + b"}")
        assert status == 413
        assert (await webhook(chat, body, raw=b"{not json"))[0] == 400
        assert (await webhook(chat, body, raw=b"[1, 2]"))[0] == 400
        assert (await webhook(chat, {**body, "version": "3"}))[0] == 400
        assert (await webhook(chat, {**body, "alerts": "none"}))[0] == 400
        other = notification(labels={"namespace": "payments", "service": "ledger"}, alertname="LedgerDown")
        status, text = await webhook(chat, other)
        assert status == 200 and "ignored" in text
        await chat.settle()
        assert stored(chat) is None, "a refused or ignored notification stored something"
        assert not [m for m in chat.slack.messages("C1")]
        refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused POST /alertmanager")]
        assert len(refusals) == 8
        assert all(TOKEN not in line and "wrong-token" not in line and "fails 12%" not in line for line in refusals)
        assert any("ignoring 1 alert(s) not about helloworld" in r.getMessage() and "LedgerDown" in r.getMessage()
                   for r in caplog.records)
        url = f"{chat.stack.replicas[0].server.url}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as answer:
            exposed = await answer.text()
        for outcome in ("unauthorized", "too_large", "malformed", "ignored"):
            assert f'hello_chatops_alert_notifications_total{{outcome="{outcome}"}}' in exposed


async def test_without_a_token_the_route_says_alerting_is_not_configured(release: Any) -> None:
    async with release(env={"HELLO_OPS_CHANNELS": "C1"}) as chat:
        status, text = await webhook(chat, notification())
        assert status == 404 and "alerting not configured" in text
        assert stored(chat) is None


async def test_one_card_per_group_edited_by_repeats_and_green_when_resolved(release: Any) -> None:
    async with release(env=ENV) as chat:
        await chat.approve("U1", "/hello deploy v2")
        started = datetime.now(UTC) + timedelta(seconds=5)
        status, _ = await webhook(chat, notification(started=started))
        assert status == 200
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        text = json.dumps(card.blocks)
        assert "critical" in text and "helloworld fails 12% of requests" in text
        assert "stable `v2`" in text, "the card shows the live version"
        assert "deployed v2 by <@U1>, less than a minute before the alert" in text, text
        for action in ("alert_rollback", "alert_silence", "alert_ack"):
            assert button(card, action) is not None
        assert button(card, "alert_abort") is None, "no canary runs: no Abort canary button"

        await chat.stack.services.alerts.drain()
        [note] = [m for m in chat.slack.messages("C1", thread_ts=card.ts) if m.ts != card.ts]
        assert note.text.startswith("No chart: metrics unavailable"), note.text
        firing = await AlertStore(chat.stack.services.cluster).firing()
        assert [(g.key, g.status, g.severity, g.alertname, g.channel, g.ts) for g in firing] == [
            (KEY, "firing", "critical", "HelloworldHighErrorRate", "C1", card.ts)]
        assert abs((firing[0].starts_at - started).total_seconds()) < 1

        assert (await webhook(chat, notification(started=started, n=3)))[0] == 200
        await card_saying(chat, "3 of 3 alerts firing")
        assert (await webhook(chat, notification("resolved", started=started, ended=datetime.now(UTC))))[0] == 200
        green = await card_saying(chat, "Resolved: HelloworldHighErrorRate")
        assert green.ts == card.ts and ":large_green_circle:" in json.dumps(green.blocks)
        assert "after " in json.dumps(green.blocks)
        assert button(green, "alert_rollback") is None
        await chat.stack.services.alerts.drain()
        assert len(cards(chat)) == 1, [m.text for m in cards(chat)]
        assert await AlertStore(chat.stack.services.cluster).firing() == []
        print(f"\nwebhook arrived -> card posted: {chat.stack.services.alerts.posted_seconds[0] * 1000:.0f} ms")


async def test_two_replicas_receiving_the_same_notification_post_one_card(release: Any) -> None:
    async with release(env=ENV, replicas=2) as chat:
        body = notification()
        answers = await asyncio.gather(webhook(chat, body, replica=0), webhook(chat, body, replica=1))
        assert [a[0] for a in answers] == [200, 200]
        await card_saying(chat, "Firing: HelloworldHighErrorRate")
        for replica in chat.stack.replicas:
            await replica.services.alerts.drain()
        repeat = notification(n=2)
        answers = await asyncio.gather(webhook(chat, repeat, replica=1), webhook(chat, repeat, replica=0))
        await card_saying(chat, "2 of 2 alerts firing")
        for replica in chat.stack.replicas:
            await replica.services.alerts.drain()
        assert len(cards(chat)) == 1, [m.text for m in cards(chat)]
        posted = sum(len(r.services.alerts.posted_seconds) for r in chat.stack.replicas)
        assert posted == 1


async def test_roll_back_asks_for_approval_like_the_command(release: Any) -> None:
    async with release(env=ENV) as chat:
        await chat.approve("U1", "/hello deploy v2")
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await chat.click("U1", card, "alert_rollback")
        request = await chat.approval()
        assert "Rollback" in request.text or "rollback" in request.text.lower()
        await chat.click("U2", request, "approve")
        await chat.finished(request)
        await chat.settle()
        assert chat.container()["image"].endswith(":v1")


async def test_a_click_from_another_message_changes_nothing(release: Any) -> None:
    async with release(env=ENV) as chat:
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        other_key = '{}:{alertname="HelloworldTargetDown", namespace="hello", service="helloworld"}'
        await webhook(chat, notification(key=other_key, alertname="HelloworldTargetDown"))
        other = await card_saying(chat, "Firing: HelloworldTargetDown")
        await chat.stack.services.alerts.drain()
        await chat.stack.click("U1", other.ts, "alert_ack", value=button(card, "alert_ack")["value"])
        await chat.private("U1", "did not come from the alert's card")
        await chat.settle()
        assert "acknowledged" not in json.dumps(chat.message(card.ts).blocks)


async def test_acknowledge_shows_who_looks_at_it(release: Any) -> None:
    async with release(env=ENV) as chat:
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await chat.click("U2", card, "alert_ack")
        acked = await card_saying(chat, "acknowledged by <@U2>")
        assert acked.ts == card.ts
        await chat.settle()
        assert chat.audit_events("HelloAlertAcknowledged")


async def test_silence_without_an_alertmanager_url_says_what_is_missing(release: Any) -> None:
    async with release(env=ENV) as chat:
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await chat.click("U1", card, "alert_silence")
        await chat.private("U1", "HELLO_ALERTMANAGER_URL")


async def test_alert_text_is_escaped_on_the_card(release: Any) -> None:
    async with release(env=ENV) as chat:
        await webhook(chat, notification(summary="<!channel> look *here* & <http://evil|click>"))
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        text = json.dumps(card.blocks)
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "<http://evil" not in text


async def test_no_channel_configured_logs_and_posts_nothing(release: Any, caplog: pytest.LogCaptureFixture) -> None:
    async with release(env={"HELLO_ALERT_TOKEN": TOKEN}) as chat:
        status, _ = await webhook(chat, notification())
        assert status == 200
        assert any("no channel" in r.getMessage() for r in caplog.records)
        assert not chat.slack.messages("C1")


def test_group_ids_are_configmap_keys() -> None:
    import re

    assert re.fullmatch(r"[0-9a-f]{16}", group_id(KEY))


async def test_status_and_digests_list_the_firing_alerts(release: Any) -> None:
    from bot.observe import digest
    from bot.observe.schedule import Claim, Entry

    async with release(env=ENV) as chat:
        await webhook(chat, notification(summary="helloworld fails 12% of requests"))
        await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await chat.stack.services.alerts.drain()
        await chat.send("U1", "/hello status")
        status = await chat.message_saying("alert(s) firing")
        text = json.dumps(status.blocks)
        assert "Firing alerts" in text and "*HelloworldHighErrorRate* since" in text and "`critical`" in text

        now = datetime.now(UTC)
        entry = Entry(id="s1", cron="0 9 * * *", channel="C1", range="1h", source="config")
        claim = Claim(entry=entry, slot=now, previous=None, skipped=0, catch_up=False)
        services = chat.stack.services
        post = await digest.build(services.shared, services.audit, services.alerts, claim, now=now, chart=False)
        assert "1 alert(s) firing" in post.text and "*HelloworldHighErrorRate* since" in json.dumps(post.blocks)

        await webhook(chat, notification("resolved", ended=datetime.now(UTC)))
        await card_saying(chat, "Resolved: HelloworldHighErrorRate")
        post = await digest.build(services.shared, services.audit, services.alerts, claim, now=datetime.now(UTC),
                                  chart=False)
        assert "Firing alerts" not in json.dumps(post.blocks)


async def test_abort_canary_is_offered_while_a_canary_has_traffic(release: Any) -> None:
    async with release(env={**ENV, "HELLO_CANARY_ANALYSIS": "false"}) as chat:
        await chat.approve("U1", "/hello canary v2 20%")
        assert chat.mapping()["spec"]["weight"] == 20
        await webhook(chat, notification())
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        assert "canary `v2`" in json.dumps(card.blocks) and "20%" in json.dumps(card.blocks)
        await chat.click("U1", card, "alert_abort")  # no approval needed for an abort (HELLO_ABORT_NEEDS_APPROVAL)
        await chat.message_saying("Canary abort: helloworld-canary: v2 weight 20% → 0%")
        await chat.settle()
        deadline = asyncio.get_running_loop().time() + 20
        while chat.mapping()["spec"].get("weight", 0) != 0:
            assert asyncio.get_running_loop().time() < deadline, chat.mapping()["spec"]
            await asyncio.sleep(0.1)


async def test_a_claim_whose_card_never_appeared_is_taken_over(release: Any) -> None:
    async with release(env=ENV) as chat:
        services = chat.stack.services
        gone = datetime.now(UTC) - timedelta(minutes=5)

        def stale(_: AlertGroup | None) -> tuple[None, AlertGroup]:
            return None, AlertGroup(id=group_id(KEY), key=KEY, status="firing", alertname="HelloworldHighErrorRate",
                                    severity="critical", starts_at=gone, channel="C1", claim="dead-replica",
                                    claimed=gone, received=gone)

        await services.alerts.store.upsert(group_id(KEY), stale)
        assert (await webhook(chat, notification()))[0] == 200
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        await services.alerts.drain()
        [group] = await services.alerts.store.firing()
        assert group.ts == card.ts and group.claim != "dead-replica"


async def test_a_resolved_notification_for_a_group_never_seen_is_ignored(
        release: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with release(env=ENV) as chat:
        long_ago = datetime.now(UTC) - timedelta(days=700)
        status, _ = await webhook(chat, notification("resolved", started=long_ago, ended=datetime.now(UTC)))
        assert status == 200
        await chat.stack.services.alerts.drain()
        await chat.settle()
        assert not cards(chat), [m.text for m in cards(chat)]
        assert await AlertStore(chat.stack.services.cluster).groups() == []
        assert any("resolved notification for an alert group never seen" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stamp", ["2026-12-01T12:00:00", "2026-12-01 12:00:00Z", "yesterday", "2026-13-01T12:00:00Z"])
async def test_a_time_that_is_not_rfc_3339_is_refused(release: Any, stamp: str) -> None:
    async with release(env=ENV) as chat:
        body = notification()
        body["alerts"][0]["startsAt"] = stamp
        status, text = await webhook(chat, body)
        assert status == 400 and "RFC 3339" in text
        assert stored(chat) is None
        assert (await webhook(chat, notification()))[0] == 200, "the group's next notification is taken"


async def test_oversized_fields_are_cut_before_they_are_stored_or_posted(release: Any) -> None:
    huge = "x" * 150_000  # five copies in the body: under its 1 MiB limit
    async with release(env=ENV) as chat:
        body = notification(labels={"severity": "critical" + huge, "cluster": "eu-1" + huge})
        body["groupKey"] = KEY + huge
        status, _ = await webhook(chat, body)
        assert status == 200
        card = await card_saying(chat, "Firing: HelloworldHighErrorRate")
        assert len(card.text) <= 3000 and huge not in json.dumps(card.blocks)
        await chat.stack.services.alerts.drain()
        kept = stored(chat)
        assert kept is not None and sum(len(v) for cm in kept for v in cm["data"].values()) < 20_000, \
            "the store stays small"
        [group] = await AlertStore(chat.stack.services.cluster).firing()
        assert group.ts == card.ts and group.id == group_id(KEY + huge)
        assert len(group.key) <= 1024 and len(group.severity) <= 40 and "cluster" not in group.scope


async def test_a_flood_of_groups_is_summarised_on_one_card_and_no_firing_group_is_forgotten(release: Any) -> None:
    async with release(env={**ENV, "HELLO_ALERT_CARDS_PER_MINUTE": "3"}) as chat:
        bodies = [notification(key=f'{{}}:{{alertname="Flood{i}", namespace="hello"}}', alertname=f"Flood{i}")
                  for i in range(40)]
        answers = await asyncio.gather(*(webhook(chat, body) for body in bodies))
        assert [status for status, _ in answers] == [200] * 40, "no webhook refused for the store's contention"
        flood = await card_saying(chat, "Alert flood: 37 more alert groups, 37 firing", timeout=60)
        await chat.stack.services.alerts.drain()
        tops = [m for m in chat.slack.messages("C1") if m.thread_ts in (None, m.ts)]
        assert len(tops) == 4, [m.text for m in tops]  # three cards of their own, one flood card
        firing = await AlertStore(chat.stack.services.cluster).firing()
        assert len(firing) == 40, "every firing group is kept, past KEEP_GROUPS too"

        [quiet] = [b for b in bodies if any(g.digest and g.key == b["groupKey"] for g in firing)][:1]
        assert (await webhook(chat, notification("resolved", key=quiet["groupKey"], alertname=quiet["commonLabels"]
                                                  ["alertname"], ended=datetime.now(UTC))))[0] == 200
        edited = await card_saying(chat, "37 more alert groups, 36 firing", timeout=60)
        assert edited.ts == flood.ts
