"""The real Alertmanager: its generated configuration, a webhook from a real alert of the real rules
(real Prometheus scraping a real helloworld that stops and comes back), silences through API v2."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from helloworld.runner import start
from sandbox.alertmanager import (
    AlertmanagerNotInstalled,
    AlertmanagerServer,
    create_silence,
    find_binary,
)
from sandbox.prometheus import SERVICE_TARGET_LABELS, PrometheusServer, shortened_rules

TOKEN = "test-alert-token-6d1f"


def _needs_alertmanager() -> None:
    try:
        find_binary()
    except AlertmanagerNotInstalled as exc:
        pytest.skip(str(exc))


def test_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(AlertmanagerNotInstalled, match=r"apt-get install prometheus-alertmanager"):
        AlertmanagerServer().start_blocking()


def test_generated_configuration_posts_to_the_webhook_with_the_token() -> None:
    server = AlertmanagerServer(webhook_url="http://127.0.0.1:9/alertmanager", token=TOKEN, group_wait="2s")
    try:
        config = server.config()
        assert config["route"]["group_wait"] == "2s" and config["route"]["group_interval"] == "1s"
        [webhook] = config["receivers"][0]["webhook_configs"]
        assert webhook["url"] == "http://127.0.0.1:9/alertmanager" and webhook["send_resolved"] is True
        assert webhook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": str(server.token_file)}
        server.prepare()
        assert server.token_file.read_text() == TOKEN
        for path in (server.token_file, server.config_file):
            assert (path.stat().st_mode & 0o777) == 0o600
        if shutil.which("amtool"):
            done = subprocess.run(["amtool", "check-config", str(server.config_file)],
                                  capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "webhook_configs" not in AlertmanagerServer().config()["receivers"][0]
        assert "http_config" not in AlertmanagerServer(webhook_url="http://x/").config()["receivers"][0][
            "webhook_configs"][0]
    finally:
        server.stop()


@dataclass
class Receiver:
    """A tiny webhook receiver: every POST's Authorization header and JSON body, in order."""

    url: str
    posts: list[tuple[str | None, dict, float]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Callable[[dict], bool], deadline_seconds: float) -> tuple[str | None, dict,
                                                                                                   float]:
        deadline = time.monotonic() + deadline_seconds
        while True:
            for post in self.posts:
                if predicate(post[1]):
                    return post
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such webhook within {deadline_seconds}s; received: {self.posts}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout=remaining)
            except TimeoutError:
                pass


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    posts: list[tuple[str | None, dict, float]] = []
    arrived = asyncio.Event()

    async def alertmanager(request: web.Request) -> web.Response:
        posts.append((request.headers.get("Authorization"), await request.json(), time.monotonic()))
        arrived.set()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/alertmanager", alertmanager)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Receiver(url=f"http://127.0.0.1:{port}/alertmanager", posts=posts, arrived=arrived)
    finally:
        await runner.cleanup()


def _query(prom_url: str, expr: str) -> list[dict]:
    url = f"{prom_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)["data"]["result"]


async def _until(condition: Callable[[], object], deadline_seconds: float, what: str) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {deadline_seconds}s")
        await asyncio.sleep(0.1)


def _is(status: str, alertname: str) -> Callable[[dict], bool]:
    return lambda body: body.get("status") == status and body.get("commonLabels", {}).get("alertname") == alertname


@pytest.mark.prometheus
async def test_a_helloworld_going_down_reaches_the_webhook_then_resolves(
    receiver: Receiver, tmp_path: Path
) -> None:
    """Real rules (only `for` cut to 1 s), evaluated every second by the real Prometheus, sent to the
    real Alertmanager, posted to a local receiver: firing when helloworld stops, resolved when it is back."""
    _needs_alertmanager()
    rules = shortened_rules(tmp_path / "rules.yaml", max_for="1s")
    hello = await asyncio.to_thread(start, "v2", drain_seconds=0)
    port = hello.port
    try:
        async with AlertmanagerServer(webhook_url=receiver.url, token=TOKEN) as am, PrometheusServer(
            scrape_interval="1s", evaluation_interval="1s", rule_files=[rules], alertmanagers=[am.url],
            target_labels=SERVICE_TARGET_LABELS, targets=[(f"127.0.0.1:{port}", {"track": "stable"})],
        ) as prom:
            await _until(lambda: _query(prom.url, 'up{app="helloworld"} == 1'), 20, "helloworld scraped")
            await asyncio.to_thread(hello.stop)
            stopped = time.monotonic()

            authorization, firing, fired_at = await receiver.wait_for(_is("firing", "HelloworldTargetDown"), 30)
            assert authorization == f"Bearer {TOKEN}"
            assert firing["version"] == "4" and firing["receiver"] == "hello-chatops"
            assert isinstance(firing["groupKey"], str) and "HelloworldTargetDown" in firing["groupKey"]
            assert firing["groupLabels"] == {"alertname": "HelloworldTargetDown", "namespace": "hello",
                                             "service": "helloworld"}
            [alert] = firing["alerts"]
            assert alert["status"] == "firing" and alert["fingerprint"] and alert["startsAt"]
            assert alert["labels"] == {
                "alertname": "HelloworldTargetDown", "severity": "critical", "namespace": "hello",
                "service": "helloworld", "app": "helloworld", "job": "helloworld", "track": "stable",
                "instance": f"127.0.0.1:{port}",
            }
            assert alert["annotations"]["summary"] == "a helloworld instance cannot be scraped"
            assert f"127.0.0.1:{port} (stable track)" in alert["annotations"]["description"]
            assert alert["generatorURL"].startswith(f"{prom.url}/graph?")
            assert firing["externalURL"] == am.url

            hello = await asyncio.to_thread(start, "v2", port=port, drain_seconds=0)
            back = time.monotonic()
            authorization, resolved, resolved_at = await receiver.wait_for(
                _is("resolved", "HelloworldTargetDown"), 30)
            assert authorization == f"Bearer {TOKEN}"
            assert resolved["groupKey"] == firing["groupKey"]
            [alert_resolved] = resolved["alerts"]
            assert alert_resolved["status"] == "resolved"
            assert alert_resolved["fingerprint"] == alert["fingerprint"]
            assert alert_resolved["endsAt"] > alert_resolved["startsAt"]
            print(f"\ntarget stopped -> firing webhook: {fired_at - stopped:.1f} s; "
                  f"target back -> resolved webhook: {resolved_at - back:.1f} s")
    finally:
        await asyncio.to_thread(hello.stop)


def _api(url: str, path: str, body: object | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{url}{path}", data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.mark.prometheus
def test_a_silence_through_api_v2_silences_the_services_alerts() -> None:
    """What the bot's "Silence 1h" button does: POST /api/v2/silences; the matching alert is
    suppressed, another one is not; a silence without matchers or ending before it starts is refused."""
    _needs_alertmanager()
    with AlertmanagerServer() as am:
        silence_id = create_silence(am.url, {"namespace": "hello", "service": "helloworld"}, 60, "U2 (dana)",
                                    "looking at it, from Slack")
        status, silence = _api(am.url, f"/api/v2/silence/{silence_id}")
        assert status == 200 and silence["status"]["state"] == "active"
        assert silence["createdBy"] == "U2 (dana)" and silence["comment"] == "looking at it, from Slack"
        assert sorted((m["name"], m["value"], m["isRegex"]) for m in silence["matchers"]) == [
            ("namespace", "hello", False), ("service", "helloworld", False)]

        ours = {"alertname": "HelloworldTargetDown", "namespace": "hello", "service": "helloworld",
                "severity": "critical"}
        theirs = {"alertname": "SomethingElse", "namespace": "other", "severity": "critical"}
        status, _ = _api(am.url, "/api/v2/alerts", [{"labels": ours}, {"labels": theirs}])
        assert status == 200
        _, alerts = _api(am.url, "/api/v2/alerts")
        states = {a["labels"]["alertname"]: a["status"] for a in alerts}
        assert states["HelloworldTargetDown"]["state"] == "suppressed"
        assert states["HelloworldTargetDown"]["silencedBy"] == [silence_id]
        assert states["SomethingElse"]["state"] == "active"

        with pytest.raises(urllib.error.HTTPError) as refused:
            create_silence(am.url, {}, 60, "U2", "no matchers")
        assert refused.value.code == 422
        with pytest.raises(urllib.error.HTTPError) as refused:
            create_silence(am.url, {"namespace": "hello"}, -5, "U2", "ends before it starts")
        assert refused.value.code == 400


def test_the_token_never_appears_in_the_generated_configuration_file(tmp_path: Path) -> None:
    server = AlertmanagerServer(webhook_url="http://127.0.0.1:9/alertmanager", token=TOKEN)
    try:
        server.prepare()
        assert TOKEN not in server.config_file.read_text()
        assert os.path.dirname(server.token_file) == str(server.directory)
    finally:
        server.stop()
