"""Alert groups stored one object each: more than 1 MiB of firing groups at once, none refused.

The bot runs for real against the Kubernetes emulator, which refuses any object over 1 MiB as the API
server does. Every group here carries the most the bot keeps of a group (a long group key and group
labels, long annotations and link), so a few hundred of them weigh over 1 MiB.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from bot.observe.alert_group import AlertGroup, group_id
from bot.observe.alert_store import LEGACY_CONFIGMAP, AlertStore
from tests.harness.alerting import ENV, card_saying, notification, webhook
from tests.harness.chat import NS, Chat, release_stack
from tests.harness.wait import until

GROUPS = 240
OWN_CARDS = 4  # HELLO_ALERT_CARDS_PER_MINUTE: the rest are summarised on the flood card


def heavy(i: int, status: str = "firing") -> dict:
    """A notification of group ``i`` with every field the bot keeps near its bound."""
    name = f"Heavy{i:03d}"
    pad = "p" * 900
    body = notification(status, key=f'{{}}:{{alertname="{name}", pad="{pad}"}}', alertname=name,
                        summary="s" * 400, n=2, ended=datetime.now(UTC) if status == "resolved" else None)
    body["groupLabels"] = {"alertname": name, "namespace": NS, "team": "t" * 1900}
    for alert in body["alerts"]:
        alert["annotations"]["description"] = "d" * 400
        alert["generatorURL"] = "http://prometheus.example:9090/graph?g0.expr=" + "u" * 950
    return body


def own_cards(chat: Chat, word: str) -> list[Any]:
    return [m for m in chat.slack.messages("C1") if m.thread_ts in (None, m.ts) and f"{word}: Heavy" in m.text]


async def send_all(chat: Chat, bodies: list[dict]) -> list[int]:
    statuses: list[int] = []
    for start in range(0, len(bodies), 24):
        answers = await asyncio.gather(*(webhook(chat, b) for b in bodies[start:start + 24]))
        statuses += [status for status, _ in answers]
    return statuses




async def test_more_than_a_mebibyte_of_firing_groups_is_taken_and_every_resolution_shown() -> None:
    async with release_stack(env={**ENV, "HELLO_ALERT_CARDS_PER_MINUTE": str(OWN_CARDS)}) as chat:
        statuses = await send_all(chat, [heavy(i) for i in range(GROUPS)])
        assert statuses == [200] * GROUPS, "no webhook refused"
        flood = await card_saying(chat, f"Alert flood: {GROUPS - OWN_CARDS} more alert groups, "
                                  f"{GROUPS - OWN_CARDS} firing", timeout=90)
        await until(lambda: len(own_cards(chat, "Firing")) == OWN_CARDS, "every group's card", 60)
        store = chat.stack.services.alerts.store
        firing = await store.firing()
        assert len(firing) == GROUPS, "every firing group is kept"
        weight = sum(len(g.to_json()) for g in firing)
        assert weight > 1024 * 1024, f"the groups weigh {weight} bytes: not past one object's limit"

        statuses = await send_all(chat, [heavy(i, "resolved") for i in range(GROUPS)])
        assert statuses == [200] * GROUPS
        edited = await card_saying(chat, f"{GROUPS - OWN_CARDS} more alert groups, 0 firing", timeout=90)
        assert edited.ts == flood.ts
        await until(lambda: len(own_cards(chat, "Resolved")) == OWN_CARDS, "every resolution", 60)
        assert not [m for m in own_cards(chat, "Firing")], "a card of its own still says it fires"
        assert await store.firing() == []


async def test_the_groups_an_earlier_version_kept_in_one_configmap_are_moved_to_objects_of_their_own() -> None:
    async with release_stack(env=ENV) as chat:
        services = chat.stack.services
        cluster = await services.cluster()
        now = datetime.now(UTC)
        old = [AlertGroup(id=group_id(f"old-{i}"), key=f"old-{i}", status="firing", alertname=f"Old{i}",
                          severity="warning", starts_at=now, channel="C1", ts=f"17000000{i}.000100", received=now)
               for i in range(3)]
        await cluster.configmaps.create(LEGACY_CONFIGMAP, {f"group.{g.id}": g.to_json() for g in old})
        store = AlertStore(services.cluster)
        assert sorted(g.key for g in await store.firing()) == ["old-0", "old-1", "old-2"]
        assert await cluster.configmaps.get(LEGACY_CONFIGMAP) is None, "the shared ConfigMap is gone once moved"
        kept = await store.get("old-1")
        assert kept is not None and kept.ts == "170000001.000100"
        names = {cm["metadata"]["name"] for cm in await cluster.configmaps.list(store.selector)}
        assert names == {store.name_of(g.id) for g in old}
        assert json.loads((await cluster.configmaps.get(store.name_of(old[0].id)))["data"]["group.json"])["key"] \
            == "old-0"
