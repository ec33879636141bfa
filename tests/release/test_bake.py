"""The bake window: after a deploy the release stays open; a critical alert for the service supersedes it by a
rollback release of the bot's own (its own record, message and audit), made once however many replicas see it.

The real Alertmanager holds the alerts (posted to its API v2 the way Prometheus posts them); the bot
reads them through Alertmanager's API like it does in a cluster.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.observe.alertmanager import ActiveAlert
from bot.release import bake_rollback, driven
from bot.release.driver import Driver, Lost
from tests.harness.alerting import fire
from tests.harness.chat import Chat
from tests.harness.wait import until

pytestmark = pytest.mark.timeout(90)


async def _baking(chat: Chat, ts: str) -> Any:
    return await chat.wait(lambda m: m.ts == ts and ":hourglass_flowing_sand: Bake for" in
                           json.dumps(m.blocks, ensure_ascii=False))


async def test_a_critical_alert_in_the_bake_window_supersedes_the_deploy_by_a_rollback_release(
        release: Any, alertmanager: Any) -> None:
    env = {"HELLO_ALERTMANAGER_URL": alertmanager.url, "HELLO_BAKE_MINUTES": "0.3"}  # the rollback's bakes too
    async with release(env=env) as chat:
        first = chat.container()["image"]
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        assert "Bake for 0.3 min: a critical alert rolls it back" in json.dumps(request.blocks, ensure_ascii=False)
        await chat.click("U2", request, "approve")
        await _baking(chat, request.ts)
        assert chat.container()["image"] == chat.image("v2")
        await chat.send("U1", "/hello deploy v3")  # the release is still open: one change at a time
        await chat.private("U1", "One change at a time")
        fire(alertmanager.url, severity="warning")  # not critical: nothing happens
        fire(alertmanager.url)
        final = await chat.finished(request, timeout=60)
        rollback = await posted_rollback(chat)
        # the deploy's message: superseded by the rollback, which it names
        assert f"Superseded by rollback `{rollback.id}` to `v1`" in final.text, final.text
        assert "HelloworldErrorBudgetFastBurn" in final.text
        assert "&lt;!channel&gt;" in json.dumps(final.blocks)  # the alert's text is escaped
        # the rollback's own message, in the channel (not in the deploy's thread), run by the bot itself
        own = await chat.wait(lambda m: m.ts == rollback.ts and "Finished ·" in str(m.blocks), 60)
        assert own.thread_ts in (None, "", own.ts)
        said = json.dumps(own.blocks, ensure_ascii=False)
        assert "Run by <@UBOT> (no approval needed)" in said
        assert "critical alert HelloworldErrorBudgetFastBurn in the bake window" in said
        await chat.settle()
        assert chat.container()["image"] == first
        # one record each: the deploy superseded by the rollback, the rollback requested by the bot
        records = await chat.stack.services.approvals.store.load()
        deploy, rollback = records[records_of(records, "deploy")], records[rollback.id]
        assert deploy.state == "superseded" and deploy.outcome is not None
        assert deploy.outcome.facts["rollback"] == rollback.id
        assert (rollback.state, rollback.requester, rollback.approver) == ("succeeded", "UBOT", "UBOT")
        assert rollback.reason == "critical alert HelloworldErrorBudgetFastBurn in the bake window"
        assert rollback.channel == deploy.channel and rollback.key == deploy.key
        # the audit trail: the deploy superseded (not failed), the rollback's own records with its reason
        assert chat.audit_events("HelloDeployFailed") == []
        superseded = chat.audit_events("HelloDeploySuperseded")
        assert len(superseded) == 1 and rollback.id in superseded[0]["message"]
        for reason in ("HelloRollbackRequested", "HelloRollbackApproved", "HelloRollbackSucceeded"):
            events = chat.audit_events(reason)
            assert len(events) == 1, reason
            assert events[0]["message"].endswith(
                'because "critical alert HelloworldErrorBudgetFastBurn in the bake window"'), events[0]["message"]
            assert json.loads(events[0]["metadata"]["annotations"]["hello-chatops/audit"])["requester"] == "UBOT"
        # `/hello release <id>` and `/hello history` show it
        await chat.send("U3", f"/hello release {rollback.id}")
        shown = await chat.wait(lambda m: m.text.startswith("Rollback:") and "succeeded" in m.text)
        assert "requested by <@UBOT>" in json.dumps(shown.blocks, ensure_ascii=False)
        await chat.send("U3", "/hello history")
        history = await chat.message_saying("Release history")
        assert "HelloRollbackSucceeded" in history.text and "HelloDeploySuperseded" in history.text
        assert "critical alert HelloworldErrorBudgetFastBurn in the bake window" in history.text


async def posted_rollback(chat: Chat) -> Any:
    """The bot's rollback record, once its message is posted."""
    store = chat.stack.services.approvals.store

    async def posted() -> list[Any]:
        return [r for r in (await store.load()).values() if r.action == "rollback" and r.ts]

    return (await until(posted, "a posted rollback", 20))[0]


def records_of(records: dict[str, Any], action: str) -> str:
    """The id of the one record of ``action``."""
    (found,) = [r.id for r in records.values() if r.action == action]
    return found


async def test_two_replicas_seeing_the_same_alert_make_one_rollback(release: Any, alertmanager: Any) -> None:
    # nothing fires in Alertmanager: each replica's driver is handed the same alert, at the same moment
    env = {"HELLO_ALERTMANAGER_URL": alertmanager.url, "HELLO_BAKE_MINUTES": "10"}
    async with release(env=env, replicas=2) as chat:
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        await chat.click("U2", request, "approve")
        await _baking(chat, request.ts)
        alert = ActiveAlert("HelloworldDown", {"severity": "critical"}, "down", datetime.now(UTC))
        store = chat.stack.services.approvals.store
        (deploy,) = (await store.load()).values()
        drivers = []
        for replica in chat.stack.replicas:
            engine = replica.services.releases
            target = replica.services.target(deploy.service, deploy.environment)
            driver = Driver(engine, await store.get(deploy.id), target)
            drivers.append((driver, await target.cluster()))

        async def see(driver: Driver, cluster: Any) -> Any:
            step = driver.release.current
            return await driven.baked_badly(driver, step, cluster, alert, alert.starts_at)

        results = await asyncio.gather(*(see(d, c) for d, c in drivers), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["Lost", "StepResult"], results
        again, cluster = Driver(drivers[0][0].engine, await store.get(deploy.id), drivers[0][0].target), drivers[0][1]
        with pytest.raises(Lost):  # a later look finds the deploy superseded already
            await see(again, cluster)
        final = await chat.finished(request, timeout=30)
        await chat.wait(lambda m: m.ts not in ("", request.ts) and "Set `helloworld` back to" in str(m.blocks)
                        and ":white_check_mark: Rolling out" in str(m.blocks), 30)  # the rollback's, till its bake
        records = await store.load()
        rollbacks = [r for r in records.values() if r.action == "rollback"]
        assert len(rollbacks) == 1 and records[deploy.id].state == "superseded"
        assert f"rollback `{rollbacks[0].id}`" in final.text
        assert len(chat.audit_events("HelloDeploySuperseded")) == 1
        assert len(chat.audit_events("HelloRollbackRequested")) == 1
        assert chat.container()["image"] == chat.image("v1")


async def test_without_alerts_the_deploy_succeeds_after_its_bake_window(release: Any, alertmanager: Any) -> None:
    env = {"HELLO_ALERTMANAGER_URL": alertmanager.url, "HELLO_BAKE_MINUTES": "0.05"}
    async with release(env=env) as chat:
        final = await chat.approve("U1", "/hello deploy v2")
        assert "runs `v2`" in final.text
        assert "no critical alert in 0.05 min" in json.dumps(final.blocks, ensure_ascii=False)
        await chat.send("U1", "/hello rollback")
        request = await chat.approval(exclude=[final.ts])
        assert "no automatic rollback after a rollback" in json.dumps(request.blocks, ensure_ascii=False)
        await chat.click("U2", request, "approve")
        await _baking(chat, request.ts)
        fire(alertmanager.url)
        reported = await chat.finished(request, timeout=60)
        assert "a rollback's bake window does not roll back again" in reported.text
        assert chat.button(reported, "release_rollback") is not None


@pytest.mark.parametrize("stored", [False, True], ids=["before-its-record", "after-its-record"])
async def test_a_rollback_lost_between_the_supersede_and_its_admission_is_made_once_by_the_leaders_repair(
        release: Any, alertmanager: Any, monkeypatch: pytest.MonkeyPatch, stored: bool) -> None:
    env = {"HELLO_ALERTMANAGER_URL": alertmanager.url, "HELLO_BAKE_MINUTES": "10"}
    async with release(env=env, replicas=2) as chat:
        engines = [replica.services.releases for replica in chat.stack.replicas]
        for engine in engines:
            engine.repair_interval = 3600.0  # the repairs of this test are the ones it calls
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        await chat.click("U2", request, "approve")
        await _baking(chat, request.ts)
        lost: list[str] = []

        async def dies(driver: Driver, rollback: Any) -> None:  # the replica dies after the supersede, before this
            lost.append(rollback.id)
            if stored:  # ... or once it stored the rollback's record, before it took the lock
                await driver.engine.records.create(rollback)

        monkeypatch.setattr(bake_rollback, "submit", dies)
        fire(alertmanager.url)
        final = await chat.finished(request, timeout=60)
        store = chat.stack.services.approvals.store
        records = await store.load()
        deploy = records[records_of(records, "deploy")]  # superseded, naming a rollback never admitted
        assert deploy.state == "superseded" and lost == [deploy.outcome.facts["rollback"]]
        assert sorted(records) == sorted([deploy.id, *lost[:stored]])
        assert f"Superseded by rollback `{lost[0]}`" in final.text
        monkeypatch.undo()

        # two replicas repair at the same moment (a leader change): one rollback, the one the deploy names
        if stored:  # a stored rollback is taken as lost once it could have been admitted (30 s)
            await asyncio.gather(*(engine.repair() for engine in engines))
            assert (await store.get(lost[0])).state == "queued"  # not yet
            for engine in engines:
                monkeypatch.setattr(engine, "clock", lambda real=engine.clock: real() + timedelta(seconds=31))
        await asyncio.gather(*(engine.repair() for engine in engines))
        monkeypatch.undo()
        rollback = await posted_rollback(chat)
        assert rollback.id == lost[0] and rollback.requester == "UBOT"
        assert rollback.reason == "critical alert HelloworldErrorBudgetFastBurn in the bake window"
        await chat.wait(lambda m: m.ts == rollback.ts and ":white_check_mark: Rolling out" in str(m.blocks), 30)
        assert chat.container()["image"] == chat.image("v1")
        await asyncio.gather(*(engine.repair() for engine in engines))  # and again: nothing more
        records = await store.load()
        assert sorted(r.action for r in records.values()) == ["deploy", "rollback"]
        assert len(chat.audit_events("HelloRollbackRequested")) == 1
        assert len(chat.audit_events("HelloRollbackApproved")) == 1
