"""/hello promote: what runs in staging goes to production, the exact image by digest, once it has soaked.

Two emulated clusters (tests/harness/several.py): helloworld soaks 60 minutes (so a promotion is refused, with
the time it becomes possible), greeter 0.03 minutes (so it becomes promotable during the test).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.release import promotion
from bot.release.audit import Entry
from sandbox.alertmanager import AlertmanagerServer
from sandbox.kube.controllers import image_id
from sandbox.slack.state import Message
from sandbox.stack import ROLE
from tests.catalogues import two_services
from tests.harness.several import APPROVE, GREETER, HELLOWORLD, World, two_clusters

SOAKING = two_services(helloworld=HELLOWORLD, greeter={**GREETER, "soak_minutes": 0.03})


def ready_digests(world: World, cluster: str, namespace: str, name: str) -> set[str]:
    """The imageIDs the ready pods of the Deployment's current ReplicaSet report (what the kubelet runs)."""
    kube = world.clusters[cluster]
    deploy = kube.get("apps", "v1", "deployments", namespace, name)
    revision = deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    (rs,) = [r for r in kube.list("apps", "v1", "replicasets", namespace)
             if r["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
             and r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision]
    pods = kube.list("", "v1", "pods", namespace,
                     label_selector=f"pod-template-hash={rs['metadata']['labels']['pod-template-hash']}")
    return {s["imageID"] for p in pods for s in p["status"].get("containerStatuses", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])}


def audited(world: World, cluster: str, namespace: str, reason: str) -> list[dict[str, Any]]:
    """The audit records (the JSON the bot keeps on its Events) with this reason, oldest first."""
    events = world.clusters[cluster].list("", "v1", "events", namespace)
    return sorted((json.loads(e["metadata"]["annotations"]["hello-chatops/audit"]) for e in events
                   if e["reason"] == reason), key=lambda r: r["at"])


async def deployed(world: World, text: str, channel: str, where: str) -> None:
    """Ask for a change, approve it as U2, wait until it is finished and succeeded."""
    await world.ask("U1", text, channel)
    request = await world.request(channel, where)
    await world.stack.click("U2", request.ts, "approve", channel=channel)
    final = await world.finished(request)
    assert ":white_check_mark:" in str(final.blocks), final.text
    await world.stack.settle(30)  # its outcome audited too


async def soaked(world: World, namespace: str, minutes: float) -> None:
    """Wait until the staging deploy's soak has passed (its HelloDeploySucceeded record + ``minutes``)."""
    at = datetime.fromisoformat(audited(world, "staging", namespace, "HelloDeploySucceeded")[-1]["at"])
    await asyncio.sleep(max(0.0, (at + timedelta(minutes=minutes) - datetime.now(UTC)).total_seconds()))


def rounded_up(moment: datetime) -> str:
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment.strftime("%H:%M UTC" if moment.date() == datetime.now(UTC).date() else "%Y-%m-%d %H:%M UTC")


def granted() -> set[tuple[str, str, str]]:
    rules = yaml.safe_load(ROLE.read_text())["rules"]
    return {(verb, group, resource) for rule in rules for verb in rule["verbs"] for group in rule["apiGroups"]
            for resource in rule["resources"]}


async def test_a_soaked_version_is_promoted_by_digest_and_nothing_else_changes(tmp_path: Path) -> None:
    async with two_clusters(tmp_path, catalogue=SOAKING, rbac=True) as world:
        await deployed(world, "/hello deploy greeter staging v2", "CGREET", "greeter (staging)")
        (source,) = ready_digests(world, "staging", "greeter", "greeter")
        digest = source.rpartition("@")[2]
        assert source == image_id("ghcr.io/example/greeter:v2") and digest.startswith("sha256:")
        await soaked(world, "greeter", 0.03)
        before = world.objects()

        await world.ask("U1", '/hello promote greeter staging production "soaked in staging"', "CGREET")
        request = await world.request("CGREET", "greeter (production)")
        shown = json.dumps(request.blocks, ensure_ascii=False)
        assert "Promotion between environments" in shown and "v1 → v2 (from staging)" in shown
        assert f"ghcr.io/example/greeter:v2@{digest}" in shown and "pinned to the digest" in shown
        assert "has run in staging for" in shown and "critical alerts not checked" in shown
        await world.stack.click("U2", request.ts, "approve", channel="CGREET")  # production needs two approvers
        await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == request.ts
                                   and "1 of 2 approvals" in str(m.blocks), 15)
        await world.stack.click("U3", request.ts, "approve", channel="CGREET")
        final = await world.finished(request)
        await world.stack.settle(30)
        assert ":white_check_mark:" in str(final.blocks), final.text

        # production runs exactly the digest staging runs, and only greeter's Deployment there changed
        assert world.image("production", "greeter", "greeter") == f"ghcr.io/example/greeter:v2@{digest}"
        assert ready_digests(world, "production", "greeter", "greeter") == {source}
        after = world.objects()
        assert {key for key in before if before[key] != after[key]} == {("production", "greeter", "deployments",
                                                                         "greeter")}
        (record,) = audited(world, "production", "greeter", "HelloEnvPromoteSucceeded")
        assert (record["facts"]["version"], record["change_reason"]) == ("v2", "soaked in staging")

        # the same again is pointless
        await world.ask("U1", "/hello promote greeter staging production", "CGREET")
        again = await world.private("U1", "CGREET", "already runs")
        assert digest in again.text

        # the Role (enforced in both clusters) allowed it, and listing pods is what promotion needs of it
        used = {(verb, group, f"{resource}/{sub}" if sub else resource) for emulator in world.clusters.values()
                for verb, group, resource, sub in emulator.rbac_usage(emulator.rbac_token)}
        assert ("list", "", "pods") in used and used <= granted(), sorted(used - granted())


async def test_promotion_waits_for_the_soak_and_names_what_exists(tmp_path: Path) -> None:
    # the bot's own HELLO_OPS_CHANNELS is another channel (as in the sandbox): the target's channels decide
    async with two_clusters(tmp_path, catalogue=SOAKING, env={"HELLO_OPS_CHANNELS": "C1"}) as world:
        await deployed(world, "/hello deploy helloworld staging v2", "CHELLO", "helloworld (staging)")
        at = datetime.fromisoformat(audited(world, "staging", "hello", "HelloDeploySucceeded")[-1]["at"])
        await world.ask("U1", "/hello promote helloworld staging production", "CHELLO")
        refused = await world.private("U1", "CHELLO", "Not promoted")
        assert (f"`v2` has run in staging for 0 min of 60; promotable at {rounded_up(at + timedelta(minutes=60))}"
                in refused.text), refused.text

        await world.ask("U1", "/hello promote helloworld staging production", "C1")
        elsewhere = await world.private("U1", "C1", "Changes can only be requested in")
        assert "<#CHELLO>" in elsewhere.text

        await world.ask("U1", "/hello promote helloworld staging qa", "CHELLO")
        unknown = await world.private("U1", "CHELLO", "no environment")
        assert "its environments: staging, production" in unknown.text
        await world.ask("U1", "/hello promote payroll staging production", "CHELLO")
        nobody = await world.private("U1", "CHELLO", "there is no service")
        assert "services: helloworld, greeter" in nobody.text
        await world.ask("U1", "/hello promote helloworld staging staging", "CHELLO")
        await world.private("U1", "CHELLO", "not from `staging` to itself")
        await world.stack.settle(30)
        assert not [m for m in world.slack.messages("CHELLO") if APPROVE in str(m.blocks)
                    and "production" in m.text]
        assert world.image("production", "hello", "helloworld").endswith(":v1")


def fire(url: str, namespace: str, cluster: str) -> None:
    """What Prometheus does when a rule fires: POST a critical alert to Alertmanager's API v2. ``cluster`` is
    the external label each environment's Prometheus adds (staging and production share namespace names)."""
    labels = {"alertname": "GreeterErrorBudgetFastBurn", "severity": "critical", "namespace": namespace,
              "cluster": cluster}
    body = [{"labels": labels, "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def listed(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true", timeout=5) as response:
        return bool(json.loads(response.read()))


async def firing(url: str, deadline: float = 10.0) -> None:
    """Wait until Alertmanager lists the alert it was sent."""
    until = asyncio.get_running_loop().time() + deadline
    while not await asyncio.to_thread(listed, url):
        if asyncio.get_running_loop().time() > until:
            raise TimeoutError("Alertmanager never listed the alert")
        await asyncio.sleep(0.05)


async def test_an_aborted_canary_or_a_critical_alert_in_the_source_refuses_promotion(tmp_path: Path) -> None:
    alertmanager = await AlertmanagerServer().start()
    try:
        env = {"HELLO_ALERTMANAGER_URL": alertmanager.url}
        async with two_clusters(tmp_path, catalogue=SOAKING, env=env) as world:
            await deployed(world, "/hello deploy greeter staging v2", "CGREET", "greeter (staging)")
            await deployed(world, "/hello canary greeter staging v2 10%", "CGREET", "greeter (staging)")
            await world.ask("U1", "/hello canary greeter staging abort", "CGREET")
            await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "CGREET"
                                       and "aborted" in m.text, 15)
            await soaked(world, "greeter", 0.03)
            await asyncio.to_thread(fire, alertmanager.url, "greeter", "staging")
            await firing(alertmanager.url)
            await world.ask("U1", "/hello promote greeter staging production", "CGREET")
            refused = await world.private("U1", "CGREET", "Not promoted")
            assert "a canary of `v2` was aborted in staging at" in refused.text, refused.text
            assert "critical alert(s) firing for greeter in staging: `GreeterErrorBudgetFastBurn`" in refused.text

            # Alertmanager gone: nobody can say that no alert fires, so no promotion either
            alertmanager.stop()
            await world.ask("U1", "/hello promote greeter staging production", "CGREET")
            unreachable = await world.private("U1", "CGREET", "cannot tell whether a critical alert fires")
            assert "in staging" in unreachable.text, unreachable.text
            await world.stack.settle(30)
            assert world.image("production", "greeter", "greeter").endswith(":v1")
    finally:
        alertmanager.stop()


async def test_a_critical_alert_of_the_other_environment_sharing_the_namespace_does_not_refuse_promotion(
        tmp_path: Path) -> None:
    # production burns its error budget on v1 while the fix, v2, has soaked in staging; both environments name
    # their namespace greeter, and the alert says where it fired: it is production's, not staging's
    alertmanager = await AlertmanagerServer().start()
    try:
        env = {"HELLO_ALERTMANAGER_URL": alertmanager.url}
        async with two_clusters(tmp_path, catalogue=SOAKING, env=env) as world:
            await deployed(world, "/hello deploy greeter staging v2", "CGREET", "greeter (staging)")
            await soaked(world, "greeter", 0.03)
            await asyncio.to_thread(fire, alertmanager.url, "greeter", "production")
            await firing(alertmanager.url)
            await world.ask("U1", "/hello promote greeter staging production", "CGREET")
            request = await world.request("CGREET", "greeter (production)")
            shown = json.dumps(request.blocks, ensure_ascii=False)
            assert "v1 → v2 (from staging)" in shown and "no critical alert fires for it in staging" in shown
    finally:
        alertmanager.stop()


# ------------------------------------------------------------------------------------------- pure parts


def entry(at: datetime, verb: str, phase: str, version: str, request_id: str = "r1") -> Entry:
    return Entry(at=at, reason=f"Hello{verb}{phase}", verb=verb, phase=phase, user="U1", summary="",
                 request_id=request_id, facts={"version": version})


def judge(entries: Iterable[Entry], now: datetime, created: datetime) -> promotion.Soak:
    source = promotion.Running(deployment="greeter", image="ghcr.io/example/greeter:v2", version="v2", digest="",
                             digest_note="", replicaset="greeter-abc", created=created, rolled_out=True, ready=1,
                             desired=1)
    return promotion.soak(source, entries, minutes=60, now=now, environment="staging")


def test_the_soak_counts_from_the_change_that_put_the_version_in_place_and_sees_failures_since() -> None:
    t0 = datetime(2026, 12, 1, 14, 0, 30, tzinfo=UTC)
    created = t0 - timedelta(hours=5)
    old_failure = entry(t0 - timedelta(hours=2), "Canary", "Failed", "v2", "before")
    deploy = entry(t0, "Deploy", "Succeeded", "v2")
    verdict = judge([old_failure, deploy], t0 + timedelta(minutes=12), created)
    assert not verdict.soaked and verdict.problems == ()  # a failure before the version was in place does not count
    assert verdict.line() == "`v2` has run in staging for 12 min of 60; promotable at 15:01 UTC"
    assert judge([deploy], t0 + timedelta(minutes=61), created).soaked

    failed = entry(t0 + timedelta(minutes=20), "Canary", "Failed", "v2", "c1")
    aborted = entry(t0 + timedelta(minutes=30), "Abort", "Succeeded", "v2", "a1")
    other = entry(t0 + timedelta(minutes=31), "Canary", "Failed", "v3", "c2")
    verdict = judge([deploy, failed, aborted, other], t0 + timedelta(hours=2), created)
    assert verdict.soaked and len(verdict.problems) == 2
    assert verdict.problems[0].startswith("a canary of `v2` failed in staging at 14:21 UTC (request `c1`)")
    assert verdict.problems[1] == "a canary of `v2` was aborted in staging at 14:31 UTC (request `a1`)"

    # the newest change put another version in place (v2 came back some other way): the ReplicaSet's age counts
    rolled = entry(t0 + timedelta(minutes=5), "Rollback", "Succeeded", "v1")
    verdict = judge([deploy, rolled], t0 + timedelta(minutes=10), created=t0 + timedelta(minutes=8))
    assert verdict.start == t0 + timedelta(minutes=8) and "ReplicaSet `greeter-abc`" in verdict.since


def test_a_digest_is_read_from_what_the_kubelet_reports() -> None:
    hex64 = "ab" * 32
    assert promotion.digest_of(f"docker-pullable://ghcr.io/example/greeter@sha256:{hex64}") == f"sha256:{hex64}"
    assert promotion.digest_of(f"ghcr.io/example/greeter@sha256:{hex64}") == f"sha256:{hex64}"
    assert promotion.digest_of(f"sha256:{hex64}") == ""  # an image id, not a registry digest
    assert promotion.digest_of("") == ""
    # the emulator's kubelet: a tag is one digest everywhere, and an image pinned by digest reports that digest
    assert image_id("ghcr.io/example/greeter:v2").startswith("ghcr.io/example/greeter@sha256:")
    assert image_id(f"ghcr.io/example/greeter:v2@sha256:{hex64}") == f"ghcr.io/example/greeter@sha256:{hex64}"
