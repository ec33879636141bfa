"""Alerts with several services: a card in the channel of the service and environment the alert belongs to,
buttons that act on that pair only, a group that fits several pairs posted in the default channel and
acting on none, and a bake window that a staging alert cannot end in production.

The world of tests/harness/several.py (two emulated clusters, helloworld and greeter in each), the real
Alertmanager, and Alertmanager's webhook bodies (version "4") posted to the bot's ``/alertmanager``.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.errors import CommandError
from bot.observe.alert_group import group_id
from sandbox.alertmanager import AlertmanagerServer
from sandbox.slack.state import Message
from tests.catalogues import two_services
from tests.harness.several import GREETER, HELLOWORLD, World, two_clusters
from tests.harness.wait import until

pytestmark = pytest.mark.timeout(120)

TOKEN = "alert-token-for-several-5d1f"
ENV = {"HELLO_ALERT_TOKEN": TOKEN, "HELLO_ALERT_CHANNEL": "C1"}


def notification(alertname: str, labels: dict[str, str], *, status: str = "firing") -> tuple[str, dict]:
    """A webhook body of one alert group (grouped by alertname, namespace and cluster); returns its key too."""
    started = datetime.now(UTC) - timedelta(minutes=1)
    common = {"alertname": alertname, "severity": "critical", **labels}
    grouped = {k: common[k] for k in ("alertname", "namespace", "cluster") if k in common}
    key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in grouped.items()) + "}"
    alert = {"status": status, "labels": {**common, "instance": "10.0.0.7:8000"},
             "annotations": {"summary": f"{alertname} fires"}, "fingerprint": f"fp-{alertname}-{len(labels)}",
             "startsAt": started.isoformat().replace("+00:00", "Z"), "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": ""}
    return key, {"version": "4", "groupKey": key, "status": status, "receiver": "hello-chatops",
                 "groupLabels": grouped, "commonLabels": common, "commonAnnotations": {"summary": f"{alertname} fires"},
                 "externalURL": "http://alertmanager.example:9093", "truncatedAlerts": 0, "alerts": [alert]}


async def webhook(world: World, body: dict) -> tuple[int, str]:
    url = f"{world.stack.replicas[0].server.url}/alertmanager"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as answer:
        return answer.status, await answer.text()


async def card(world: World, channel: str, alertname: str, needle: str = "") -> Message:
    found = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == channel
                                       and m.thread_ts in (None, m.ts) and f"Firing: {alertname}" in m.text
                                       and needle in json.dumps(m.blocks), 15)
    assert isinstance(found, Message)
    return found


def buttons(message: Message) -> list[str]:
    return [e.get("action_id", "") for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


async def deployed(world: World, text: str, channel: str, needle: str, approvers: tuple[str, ...] = ("U2",)) -> None:
    await world.ask("U1", text, channel)
    request = await world.request(channel, needle)
    for approver in approvers:
        await world.stack.click(approver, request.ts, "approve", channel=channel)
    final = await world.finished(request)
    assert ":white_check_mark:" in str(final.blocks), final.text


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def fire(url: str, *alerts: tuple[str, dict[str, str]]) -> None:
    """What Prometheus does when rules fire: POST the alerts to Alertmanager's API v2."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = [{"labels": {"alertname": name, "severity": "critical", **labels}, "startsAt": now,
             "annotations": {"summary": f"{name} fires"}} for name, labels in alerts]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def listed(url: str, names: set[str]) -> None:
    """Wait until Alertmanager lists every one of the alerts it was sent."""
    async def all_listed() -> bool:
        return names <= {a["labels"]["alertname"] for a in await asyncio.to_thread(_get, f"{url}/api/v2/alerts")}

    await until(all_listed, f"Alertmanager to list {names}", 10)


async def test_a_greeter_production_alert_is_carded_in_greeter_s_channel_and_acts_on_greeter_production_only(
        tmp_path: Path) -> None:
    async with AlertmanagerServer() as am, \
            two_clusters(tmp_path, env={**ENV, "HELLO_ALERTMANAGER_URL": am.url}) as world:
        await deployed(world, "/hello deploy greeter staging v2", "CGREET", "greeter (staging)")
        await deployed(world, "/hello deploy greeter production v2", "CGREET", "greeter (production)", ("U2", "U3"))
        before = world.objects()

        key, body = notification("GreeterHighErrorRate", {"namespace": "greeter", "service": "greeter",
                                                          "cluster": "production"})
        assert (await webhook(world, body))[0] == 200
        shown = await card(world, "CGREET", "GreeterHighErrorRate", "deployed v2 by <@U1>")
        head = shown.blocks[0]["text"]["text"]
        assert "greeter (production)" in head and "greeter (production)" in shown.text, head
        text = json.dumps(shown.blocks)
        assert "stable `v2`" in text, "the card shows greeter's live version in production"
        assert {"alert_rollback", "alert_silence", "alert_ack"} <= set(buttons(shown))
        assert not [m for m in world.slack.messages("C1") if "GreeterHighErrorRate" in m.text]
        [group] = await world.stack.services.alerts.store.firing()
        assert (group.service, group.environment, group.channel) == ("greeter", "production", "CGREET")

        # Silence 1h: the group's labels and the pair's namespace and cluster
        await world.stack.click("U1", shown.ts, "alert_silence", channel="CGREET")
        await card(world, "CGREET", "GreeterHighErrorRate", "silenced by <@U1> until")
        silences = await asyncio.to_thread(_get, f"{am.url}/api/v2/silences")
        [silence] = [s for s in silences if s["status"]["state"] == "active"]
        assert sorted((m["name"], m["value"]) for m in silence["matchers"]) == [
            ("alertname", "GreeterHighErrorRate"), ("cluster", "production"), ("namespace", "greeter")]

        # Roll back: a rollback of greeter in production, asked in greeter's channel, like the typed command
        await world.stack.click("U1", shown.ts, "alert_rollback", channel="CGREET")
        request = await world.request("CGREET", "greeter (production)")
        wanted = "Rollback requested by <@U1>: greeter (production): v2 (revision 2) → v1"
        assert request.text.startswith(wanted), request.text
        records = [r for r in (await world.stack.services.approvals.store.load()).values()
                   if r.change.action == "rollback"]
        assert [(r.change.service, r.change.environment, r.channel) for r in records] == [
            ("greeter", "production", "CGREET")]
        for approver in ("U2", "U3"):  # production asks two approvers
            await world.stack.click(approver, request.ts, "approve", channel="CGREET")
        final = await world.finished(request)
        assert ":white_check_mark:" in str(final.blocks), final.text
        await world.stack.settle(30)
        assert world.image("production", "greeter", "greeter").endswith(":v1")
        assert world.image("staging", "greeter", "greeter").endswith(":v2")
        after = world.objects()
        assert {k for k in before if before[k] != after[k]} == {("production", "greeter", "deployments", "greeter")}
        assert group_id(key) == group.id


async def test_an_alert_that_fits_several_pairs_goes_to_the_default_channel_and_changes_nothing(
        tmp_path: Path) -> None:
    async with two_clusters(tmp_path, env=ENV) as world:
        # greeter's namespace is "greeter" in staging and in production: without a cluster label it is both
        _, body = notification("GreeterSlow", {"namespace": "greeter", "service": "greeter"})
        assert (await webhook(world, body))[0] == 200
        shown = await card(world, "C1", "GreeterSlow")
        assert "service and environment not known" in shown.blocks[0]["text"]["text"]
        assert "alert_rollback" not in buttons(shown) and "alert_abort" not in buttons(shown)
        assert {"alert_silence", "alert_ack"} <= set(buttons(shown))
        assert not [m for m in world.slack.messages("CGREET") if "GreeterSlow" in m.text]
        await world.stack.settle(30)
        # a Roll back action for the group (a button its card does not have) is refused, nothing is asked
        value = next(e["value"] for b in shown.blocks if b.get("type") == "actions" for e in b["elements"])
        with pytest.raises(CommandError, match="fits several services or environments") as refused:
            body = {"user": {"id": "U1"}, "channel": {"id": "C1"}, "container": {"message_ts": shown.ts}}
            await world.stack.services.approvals.handle_action(body, {"action_id": "alert_rollback", "value": value},
                                                               respond=None)
        assert "Nothing was changed" in str(refused.value)
        assert not await world.stack.services.approvals.store.load()

        # an alert of no service and environment of the catalogue is ignored
        status, answer = await webhook(world, notification("LedgerDown", {"namespace": "payments"})[1])
        assert status == 200 and "ignored" in answer
        # one in helloworld's staging namespace, saying so, is helloworld's in staging
        await webhook(world, notification("HelloworldDown", {"namespace": "hello", "cluster": "staging"})[1])
        hello = await card(world, "CHELLO", "HelloworldDown")
        assert "helloworld (staging)" in hello.blocks[0]["text"]["text"]
        await world.stack.settle(30)
        assert not [m for m in world.slack.messages("C1") if "LedgerDown" in m.text or "HelloworldDown" in m.text]
        firing = {g.alertname: (g.service, g.environment, g.channel)
                  for g in await world.stack.services.alerts.store.firing()}
        assert firing == {"GreeterSlow": ("", "", "C1"), "HelloworldDown": ("helloworld", "staging", "CHELLO")}

        # a service's status shows its own firing alerts, not another service's nor an ambiguous group
        await world.ask("U1", "/hello status helloworld staging", "C1")
        mine = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                          and m.text.startswith("helloworld status"), 30)
        assert "1 alert(s) firing" in mine.text and "HelloworldDown" in json.dumps(mine.blocks)
        assert "GreeterSlow" not in json.dumps(mine.blocks)
        await world.ask("U1", "/hello status greeter production", "C1")
        theirs = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                            and m.text.startswith("greeter status"), 30)
        assert "alert(s) firing" not in theirs.text and "HelloworldDown" not in json.dumps(theirs.blocks)


async def test_a_staging_alert_never_rolls_production_back_in_its_bake_window(tmp_path: Path) -> None:
    async with AlertmanagerServer() as am, two_clusters(
            tmp_path, env={**ENV, "HELLO_ALERTMANAGER_URL": am.url, "HELLO_BAKE_MINUTES": "0.5"}) as world:
        await world.ask("U1", "/hello deploy helloworld production v2", "CHELLO")
        request = await world.request("CHELLO", "helloworld (production)")
        await world.stack.click("U2", request.ts, "approve", channel="CHELLO")
        await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == request.ts
                                   and ":hourglass_flowing_sand: Bake for" in json.dumps(m.blocks), 30)
        assert world.image("production", "hello", "helloworld").endswith(":v2")
        # both clusters' helloworld lives in namespace "hello": staging's alert, and one that does not say where,
        # fire first (the window takes the earliest alert that counts)
        await asyncio.to_thread(fire, am.url, ("HelloStagingDown", {"namespace": "hello", "cluster": "staging"}),
                                ("HelloSomewhereDown", {"namespace": "hello", "service": "helloworld"}))
        await listed(am.url, {"HelloStagingDown", "HelloSomewhereDown"})
        await asyncio.to_thread(fire, am.url, ("HelloProductionDown", {"namespace": "hello",
                                                                       "cluster": "production"}))
        final = await world.finished(request)
        assert "Superseded by rollback `" in final.text and "to `v1`, requested by the bot" in final.text, final.text
        assert "HelloProductionDown" in final.text
        assert "HelloStagingDown" not in final.text and "HelloSomewhereDown" not in final.text
        # the bot's rollback, a release of its own, runs next
        await until(lambda: world.image("production", "hello", "helloworld").endswith(":v1"), "the rollback to v1", 30)
        assert world.image("staging", "hello", "helloworld").endswith(":v1")


async def test_an_action_on_an_ambiguous_card_needs_the_rights_of_every_pair_its_alerts_fit(tmp_path: Path) -> None:
    # U4 may deploy greeter in staging (HELLO_DEPLOYERS) but not in production (its own deployers: U1)
    catalogue = two_services(helloworld=HELLOWORLD,
                             greeter={**GREETER, "production": {**GREETER["production"], "deployers": ["U1"]}})
    async with two_clusters(tmp_path, catalogue=catalogue, env={**ENV, "HELLO_DEPLOYERS": "U1,U4"},
                            people=("U4",)) as world:
        _, body = notification("GreeterSlow", {"namespace": "greeter", "service": "greeter"})
        assert (await webhook(world, body))[0] == 200
        shown = await card(world, "C1", "GreeterSlow")
        await world.stack.settle(30)
        await world.stack.click("U4", shown.ts, "alert_silence", channel="C1")
        refused = await world.private("U4", "C1", "is not a deployer")
        assert "silence" in refused.text
        await world.stack.click("U1", shown.ts, "alert_silence", channel="C1")
        await world.private("U1", "C1", "HELLO_ALERTMANAGER_URL")  # past every check: only the address is missing
        [group] = await world.stack.services.alerts.store.firing()
        assert group.pairs == [["greeter", "production"], ["greeter", "staging"]]
