"""The bake window: after a deploy the release stays open; a critical alert for the service rolls it back.

The real Alertmanager holds the alerts (posted to its API v2 the way Prometheus posts them); the bot
reads them through Alertmanager's API like it does in a cluster.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.alertmanager import AlertmanagerNotInstalled, AlertmanagerServer, find_binary
from tests.harness.chat import Chat

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def alertmanager() -> AsyncIterator[AlertmanagerServer]:
    try:
        find_binary()
    except AlertmanagerNotInstalled as exc:
        pytest.skip(str(exc))
    async with AlertmanagerServer() as server:
        yield server


def fire(url: str, name: str = "HelloworldErrorBudgetFastBurn", severity: str = "critical") -> None:
    """What Prometheus does when a rule fires: POST the alert to Alertmanager's API v2."""
    body = [{"labels": {"alertname": name, "severity": severity, "namespace": "hello", "service": "helloworld"},
             "annotations": {"summary": "helloworld fails 38% of its requests <!channel>"},
             "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def _baking(chat: Chat, ts: str) -> Any:
    return await chat.wait(lambda m: m.ts == ts and ":hourglass_flowing_sand: Bake for" in
                           json.dumps(m.blocks, ensure_ascii=False))


async def test_a_critical_alert_in_the_bake_window_rolls_the_deploy_back(release: Any, alertmanager: Any) -> None:
    env = {"HELLO_ALERTMANAGER_URL": alertmanager.url, "HELLO_BAKE_MINUTES": "1"}
    async with release(env=env) as chat:
        first = chat.container()["image"]
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        assert "Bake for 1 min: a critical alert rolls it back" in json.dumps(request.blocks, ensure_ascii=False)
        await chat.click("U2", request, "approve")
        await _baking(chat, request.ts)
        assert chat.container()["image"] == chat.image("v2")
        await chat.send("U1", "/hello deploy v3")  # the release is still open: one change at a time
        await chat.private("U1", "One change at a time")
        fire(alertmanager.url, severity="warning")  # not critical: nothing happens
        fire(alertmanager.url)
        final = await chat.finished(request, timeout=60)
        assert "Rolled back to `v1` automatically" in final.text
        assert "HelloworldErrorBudgetFastBurn" in final.text
        assert "&lt;!channel&gt;" in json.dumps(final.blocks)  # the alert's text is escaped
        await chat.settle()
        assert chat.container()["image"] == first
        assert len(chat.audit_events("HelloDeployFailed")) == 1


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
