"""`/hello schedule add|list|remove` end to end: Slack emulator -> bot -> Kubernetes emulator."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.core.errors import CommandError
from bot.observe.schedule import CONFIGMAP
from sandbox.slack import Ephemeral
from sandbox.stack import Stack
from tests.harness.clock import (
    DAY,
    ENV,
    KUBE,
    SimClock,
    attach,
    digests,
    ephemeral_to,
    message_with,
    scheduler_for,
    slot_of,
)


def stored(stack: Stack) -> dict:
    cm = stack.kube.get("", "v1", "configmaps", "hello", CONFIGMAP)
    return json.loads(cm["data"]["schedules.json"]) if cm else {}


async def test_add_list_remove_through_chat(stack: Stack) -> None:
    await attach(stack.services, SimClock(DAY))
    await stack.command("U1", '/hello schedule add "*/15 * * * *" <#C2|general> 24h')
    added = await stack.wait_message(message_with("scheduled status posts `s"))
    sid = added.text.split("`")[1]
    assert added.channel == "C1" and "<#C2>" in added.text and "last 24h" in added.text
    assert (stored(stack)[sid]["cron"], stored(stack)[sid]["channel"], stored(stack)[sid]["range"]) == (
        "*/15 * * * *", "C2", "24h")
    assert stored(stack)[sid]["by"] == "U1"

    await stack.command("U1", "/hello schedule add 0 9 * * 1-5")  # unquoted, here, default range
    here = await stack.wait_message(message_with("`0 9 * * 1-5`"))
    other = here.text.split("`")[1]
    assert stored(stack)[other]["channel"] == "C1" and stored(stack)[other]["range"] == "1h"

    await stack.command("U3", "/hello schedule list")  # read-only: anyone may
    listing = await stack.wait_message(ephemeral_to("U3", "Scheduled status posts"))
    assert sid in listing.text and other in listing.text
    assert "<#C2>" in json.dumps(listing.blocks)

    await stack.command("U1", f"/hello schedule remove {sid}")
    await stack.wait_message(message_with(f"removed scheduled status posts `{sid}`"))
    assert set(stored(stack)) == {other}


async def test_channel_names_cannot_be_resolved_but_ids_can(stack: Stack) -> None:
    await attach(stack.services, SimClock(DAY))
    reply = await stack.command("U1", '/hello schedule add "0 * * * *" #general')
    assert "pick the channel from the autocomplete" in reply.json["text"]
    await stack.command("U1", '/hello schedule add "0 * * * *" C2 6h')
    await stack.wait_message(message_with("in <#C2>, last 6h"))
    assert [s["channel"] for s in stored(stack).values()] == ["C2"]


@pytest.mark.parametrize(("cron", "field"), [
    ("61 * * * *", "minute"), ("0 24 * * *", "hour"), ("0 0 32 * *", "day of month"),
    ("0 0 * 13 *", "month"), ("0 0 * * 8", "day of week"), ("0 0 * * mon-fry", "day of week"),
])
async def test_an_invalid_cron_names_its_field_and_stores_nothing(stack: Stack, cron: str, field: str) -> None:
    await attach(stack.services, SimClock(DAY))
    reply = await stack.command("U1", f'/hello schedule add "{cron}"')
    assert f"invalid {field} field" in reply.json["text"]
    assert "Usage: /hello schedule" in reply.json["text"]
    await stack.settle()
    assert stored(stack) == {}


async def test_a_non_deployer_may_not_add_or_remove(stack: Stack) -> None:
    await attach(stack.services, SimClock(DAY))
    await stack.command("U3", '/hello schedule add "0 9 * * *"')
    await stack.wait_message(ephemeral_to("U3", "not a deployer"))
    await stack.command("U3", "/hello schedule remove s12345")
    await stack.settle()
    refusals = [e for e in stack.slack.ephemerals("C1", "U3") if "not a deployer" in e.text]
    assert len(refusals) == 2
    assert stored(stack) == {}


async def test_a_channel_the_bot_is_not_in_is_reported_in_the_list() -> None:
    async with Stack(env=ENV, rbac=True, kube_options=KUBE, slack_options={"bot_channels": ["C1"]}) as stack:
        clock = SimClock(DAY)
        scheduler = await attach(stack.services, clock, chart=False)
        await stack.command("U1", '/hello schedule add "*/15 * * * *" <#C2|general> 15m')
        await stack.wait_message(message_with("scheduled status posts"))
        clock.advance(15 * 60)
        posted = await scheduler.tick()
        assert [p.error for p in posted] == ["not_in_channel"]
        assert stack.slack.messages("C2") == []
        await stack.command("U1", "/hello schedule list")
        listing = await stack.wait_message(ephemeral_to("U1", "last post failed"))
        assert isinstance(listing, Ephemeral)
        assert ":warning: last post failed: not_in_channel — invite the bot" in json.dumps(
            listing.blocks, ensure_ascii=False)
        clock.advance(15 * 60)
        assert [p.error for p in await scheduler.tick()] == ["not_in_channel"]  # later slots still tried


async def test_schedules_and_posted_slots_survive_a_restart(stack: Stack) -> None:
    clock = SimClock(DAY - timedelta(minutes=1))
    first = await attach(stack.services, clock, chart=False)
    entry = await first.add("0 * * * *", "C1", "15m", user="U1")
    clock.advance(60)
    assert [p.slot for p in await first.tick()] == [DAY]
    await first.stop()  # releases the lease
    lease = stack.kube.get("coordination.k8s.io", "v1", "leases", "hello", "hello-chatops-leader")
    assert lease["spec"]["holderIdentity"] == ""

    replica = await stack.start_replica(5)  # a new process: new Services, clients, identity bot-5
    stack.replicas.append(replica)
    second = scheduler_for(replica.services, clock, chart=False)
    listed = await second.list()
    assert [(item.entry.id, item.entry.cron, item.state.last) for item in listed] == [(entry.id, "0 * * * *", DAY)]
    assert await second.tick() == []  # the 00:00 slot is recorded: not posted again
    assert second.is_leader()
    clock.advance(3600)
    assert [p.slot for p in await second.tick()] == [DAY + timedelta(hours=1)]
    assert [slot_of(m) for m in digests(stack)] == ["2030-01-07 00:00", "2030-01-07 01:00"]


async def test_static_schedules_from_configuration_post_and_cannot_be_removed_from_chat(stack: Stack) -> None:
    replica = await stack.start_replica(7, {"HELLO_SCHEDULES": "30 9 * * 1-5|C1|6h", "HELLO_TIMEZONE":
                                            "Europe/Paris"})
    stack.replicas.append(replica)
    clock = SimClock(DAY + timedelta(hours=8, minutes=29))  # Monday 08:29 UTC = 09:29 in Paris
    scheduler = await attach(replica.services, clock, chart=False)
    (listed,) = await scheduler.list()
    assert (listed.entry.cron, listed.entry.channel, listed.entry.range) == ("30 9 * * 1-5", "C1", "6h")
    assert listed.entry.id.startswith("c")
    clock.advance(60)
    posted = await scheduler.tick()
    assert [p.slot for p in posted] == [DAY + timedelta(hours=8, minutes=30)]  # 09:30 Paris time
    with pytest.raises(CommandError, match="comes from the configuration"):
        await scheduler.remove(listed.entry.id)
