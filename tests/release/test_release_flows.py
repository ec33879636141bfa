"""Each command's happy path, told as a chat in #ops (C1): U1 asks, U2 approves."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

Chat = Any


async def test_deploy_rolls_stable_to_the_version_after_approval(chat: Chat, caplog) -> None:
    before = chat.container()["image"]
    caplog.set_level(logging.INFO, logger="bot.release.audit")
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    assert "<@U1>" in str(request.blocks)
    assert f"{before.rsplit(':', 1)[1]} → v2" in request.text
    assert chat.button(request, "reject") is not None

    await chat.click("U2", request, "approve")
    final = await chat.finished(request)
    await chat.settle()

    container = chat.container()
    assert container["image"] == chat.image("v2")
    assert {"name": "HELLO_VERSION", "value": "v2"} in container["env"]
    assert "runs `v2`" in final.text
    assert "approved by <@U2>" in str(final.blocks)
    assert chat.button(final, "release_rollback") is not None
    assert len(final.edits) >= 2  # progress edits, then the final state
    assert "▰" in json.dumps(final.edits[0].blocks, ensure_ascii=False) + json.dumps(final.blocks, ensure_ascii=False)

    reasons = [e["reason"] for e in chat.audit_events()]
    for reason in ("HelloDeployRequested", "HelloDeployApproved", "HelloDeploySucceeded"):
        assert reason in reasons
    approved = chat.audit_events("HelloDeployApproved")[0]
    assert approved["involvedObject"]["kind"] == "Deployment"
    assert approved["involvedObject"]["name"] == "helloworld"
    assert approved["source"]["component"] == "hello-chatops"
    assert "U2" in approved["message"]
    lines = [r.audit for r in caplog.records if r.name == "bot.release.audit"]
    assert {"HelloDeployRequested", "HelloDeployApproved", "HelloDeploySucceeded"} <= {a["reason"] for a in lines}


async def test_canary_set_shift_promote(chat: Chat) -> None:
    final = await chat.approve("U1", "/hello canary v2 10%")
    assert chat.mapping()["spec"]["weight"] == 10
    canary = await chat.rolled_out("helloworld-canary")
    assert canary["spec"]["replicas"] == chat.config.canary_replicas
    assert chat.container("helloworld-canary")["image"] == chat.image("v2")
    assert "gets 10% of the traffic" in final.text
    assert chat.button(final, "release_promote") is not None and chat.button(final, "release_abort") is not None
    assert chat.mapping("helloworld")["spec"].get("weight") is None  # stable keeps the rest

    final = await chat.approve("U1", "/hello canary 25%", exclude=[final.ts])
    assert chat.mapping()["spec"]["weight"] == 25
    assert "25%" in final.text

    final = await chat.approve("U1", "/hello canary promote", exclude=[final.ts])
    assert chat.container()["image"] == chat.image("v2")
    assert chat.mapping()["spec"]["weight"] == 0
    assert chat.deployment("helloworld-canary")["spec"]["replicas"] == 0
    assert "runs `v2`" in final.text
    assert chat.audit_events("HelloPromoteSucceeded")


async def test_canary_abort_runs_at_once_without_approval(chat: Chat) -> None:
    await chat.approve("U1", "/hello canary v2 20%")
    assert chat.mapping()["spec"]["weight"] == 20
    await chat.send("U1", "/hello canary abort")
    final = await chat.message_saying("aborted")
    await chat.settle()
    assert chat.button(final, "approve") is None
    assert "Run by <@U1> (no approval needed)" in str(final.blocks)
    assert chat.mapping()["spec"]["weight"] == 0
    assert chat.deployment("helloworld-canary")["spec"]["replicas"] == 0
    assert chat.audit_events("HelloAbortSucceeded")


async def test_rollback_returns_to_the_previous_revision(chat: Chat) -> None:
    first = chat.container()["image"]
    deployed = await chat.approve("U1", "/hello deploy v2")
    final = await chat.approve("U1", "/hello rollback", exclude=[deployed.ts])
    assert chat.container()["image"] == first
    version = first.rsplit(":", 1)[1]
    assert f"back on `{version}`" in final.text
    await chat.rolled_out()
    assert chat.audit_events("HelloRollbackSucceeded")


async def test_rollback_puts_back_the_previous_pod_template_as_kubectl_rollout_undo_does(release, tmp_path) -> None:
    from tests.kubectl import run_kubectl

    # kubectl sends no credentials over plain HTTP, so this emulator runs without RBAC
    async with release(rbac=False) as chat:
        kubeconfig = chat.kube.write_kubeconfig(tmp_path / "kubeconfig")

        async def kubectl(*args: str) -> str:  # in a thread: the emulator answers from this event loop
            done = await asyncio.to_thread(run_kubectl, *args, "-n", "hello", kubeconfig=kubeconfig)
            return done.stdout

        async def history() -> dict[str, str]:
            lines = (await kubectl("rollout", "history", "deployment/helloworld")).splitlines()[2:]
            return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in lines if line.strip()}

        await chat.approve("U1", "/hello deploy v2")
        revision = chat.deployment()["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        cause = (await history())[revision]
        assert cause.startswith("hello-chatops deploy helloworld: ") and cause.endswith("by U1, approved by U2)")
        deployed = chat.deployment()["spec"]["template"]
        # a release made by hand changes more than the image; rolling it back must undo all of it
        container = {"name": "helloworld", "image": chat.image("v3"), "env": [{"name": "FEATURE", "value": "on"}]}
        await kubectl("patch", "deployment/helloworld", "-p", json.dumps({"spec": {"template": {"spec": {
            "containers": [container]}}}}))
        await kubectl("rollout", "status", "deployment/helloworld", "--timeout=60s")
        await chat.approve("U1", "/hello rollback")
        assert chat.deployment()["spec"]["template"] == deployed  # as `kubectl rollout undo` puts it back
        assert {"name": "FEATURE", "value": "on"} not in chat.container()["env"]
        causes = await history()
        assert causes[max(causes, key=int)].startswith("hello-chatops rollback helloworld: ")


async def test_rollback_button_after_a_deploy_asks_for_approval(chat: Chat) -> None:
    first = chat.container()["image"]
    deployed = await chat.approve("U1", "/hello deploy v2")
    await chat.click("U1", deployed, "release_rollback")
    request = await chat.approval(exclude=[deployed.ts])
    assert "Rollback" in request.text
    await chat.click("U2", request, "approve")
    await chat.finished(request)
    await chat.settle()
    assert chat.container()["image"] == first


async def test_cert_renew_issues_a_new_revision_and_reports_its_expiry(chat: Chat) -> None:
    await chat.rolled_out()
    await chat.issued()  # the first issuance is done: the renewal is the next revision
    status = chat.certificate().get("status") or {}
    revision = int(status.get("revision") or 0)
    final = await chat.approve("U1", "/hello cert renew")
    cert = chat.certificate()
    assert int(cert["status"]["revision"]) == revision + 1
    not_after = datetime.fromisoformat(cert["status"]["notAfter"].replace("Z", "+00:00"))
    assert not_after.strftime("%Y-%m-%d %H:%M UTC") in final.text
    assert f"revision {revision + 1}" in final.text
    events = chat.audit_events("HelloCertRenewSucceeded")
    assert events and events[0]["involvedObject"]["kind"] == "Certificate"


async def test_cert_shows_the_certificate_without_changing_it(chat: Chat) -> None:
    await chat.issued()  # the emulated cert-manager issues it first, after start: that write is not the bot's
    before = chat.certificate()["metadata"]["resourceVersion"]
    await chat.send("U3", "/hello cert")  # read-only: anyone may
    reply = await chat.message_saying("Certificate helloworld-tls")
    assert "Expires" in json.dumps(reply.blocks)
    assert chat.certificate()["metadata"]["resourceVersion"] == before


async def test_history_lists_the_trail_newest_first(chat: Chat) -> None:
    deployed = await chat.approve("U1", "/hello deploy v2")
    await chat.approve("U1", "/hello canary v3 5%", exclude=[deployed.ts])
    await chat.send("U3", "/hello history")
    reply = await chat.message_saying("Release history")
    text = reply.text
    assert text.index("HelloCanarySucceeded") < text.index("HelloDeploySucceeded") < text.index(
        "HelloDeployRequested")
    assert any(b["type"] == "rich_text" for b in reply.blocks)
    markers = await chat.stack.services.audit.markers(datetime.now(UTC) - timedelta(hours=1),
                                                      datetime.now(UTC) + timedelta(minutes=1))
    assert [(m.kind, m.label) for m in markers] == [("deploy", "deploy v2"), ("canary", "canary v3 5%")]


async def test_the_audit_channel_gets_a_line_per_record(release: Any) -> None:
    async with release(env={"HELLO_AUDIT_CHANNEL": "C1"}) as chat:
        await chat.approve("U1", "/hello deploy v2")
        line = await chat.message_saying("`HelloDeploySucceeded` by <@U2>")
        assert "v2" in line.text


async def test_configured_repository_replicas_and_abort_policy(release: Any) -> None:
    env = {"HELLO_IMAGE_REPOSITORY": "registry.example.com/team/helloworld", "HELLO_CANARY_REPLICAS": "2",
           "HELLO_ABORT_NEEDS_APPROVAL": "true", "HELLO_CANARY_PERCENT": "5",
           "HELLO_CANARY_ANALYSIS": "false"}
    async with release(env=env) as chat:
        started = await chat.approve("U1", "/hello canary v2")
        assert "gets 5% of the traffic" in started.text
        canary = chat.deployment("helloworld-canary")
        assert canary["spec"]["replicas"] == 2
        assert chat.container("helloworld-canary")["image"] == "registry.example.com/team/helloworld:v2"
        assert chat.mapping()["spec"]["weight"] == 5
        # with HELLO_ABORT_NEEDS_APPROVAL the safe direction waits for an approver too
        await chat.send("U1", "/hello canary abort")
        request = await chat.approval(exclude=[started.ts])
        assert chat.mapping()["spec"]["weight"] == 5
        await chat.click("U2", request, "approve")
        await chat.finished(request)
        await chat.settle()
        assert chat.mapping()["spec"]["weight"] == 0
        assert chat.deployment("helloworld-canary")["spec"]["replicas"] == 0
