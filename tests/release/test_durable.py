"""Releases survive a dying replica: bot replicas as real processes, killed with SIGKILL mid-release.

Two `python -m bot serve` processes share the emulated cluster and workspace (the Lease lasts 2 s).
The replica that drives a release is killed during a rollout, a weight change or a certificate
issuance; the other one takes over, finishes the release exactly once and reports it in the same
Slack message. A lone replica that is killed and started again resumes its release.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.kube import KubeEmulator
from sandbox.slack import SlackEmulator
from sandbox.slack.state import Message
from sandbox.stack import BOT_TOKEN, MANIFESTS, ROLE, SIGNING_SECRET
from tests.harness.alerting import fire

ROOT = Path(__file__).resolve().parents[2]
NS = "hello"
LEASE = "hello-chatops-leader"
pytestmark = pytest.mark.timeout(150)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    def __init__(self, identity: str, proc: asyncio.subprocess.Process, port: int) -> None:
        self.identity, self.proc, self.port = identity, proc, port
        self.log: list[str] = []
        self.reader = asyncio.create_task(self._drain())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.reader, 5)


# the bots of these tests are processes of their own: this process's loop only runs the emulators, which
# asyncio's debug mode slows enough that a restarted replica can miss its readiness deadline on a busy host
SUBPROCESS_BOTS = pytest.mark.asyncio_debug_off


class Cluster:
    """The emulated cluster and workspace, and the bot replicas started against them."""

    def __init__(self, kube: KubeEmulator, slack: SlackEmulator, workdir: Path) -> None:
        self.kube, self.slack, self.workdir = kube, slack, workdir
        self.kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig", token="bot-token")
        self.replicas: list[Replica] = []

    async def start(self, identity: str, extra: dict[str, str] | None = None) -> Replica:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_", "KUBECONFIG"))}
        env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=self.slack.api_url,
                   KUBECONFIG=str(self.kubeconfig), PROMETHEUS_URL="http://127.0.0.1:9", HELLO_DEPLOYERS="U1",
                   HELLO_APPROVERS="S1", HELLO_IDENTITY=identity, HELLO_LEASE_SECONDS="2",
                   HELLO_ROLLOUT_TIMEOUT="90", HELLO_ROLLOUT_STALL="60", HELLO_CERT_TIMEOUT="60",
                   MPLCONFIGDIR=str(self.workdir / "mpl"))
        env.update(extra or {})
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        replica = Replica(identity, proc, port)
        self.replicas.append(replica)
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while True:
                if proc.returncode is not None:
                    pytest.fail(f"{identity} exited ({proc.returncode}):\n" + "\n".join(replica.log[-20:]))
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        return replica
                assert time.monotonic() < deadline, f"{identity} never became ready"
                await asyncio.sleep(0.1)

    def lease_holder(self) -> str:
        lease = self.kube.get("coordination.k8s.io", "v1", "leases", NS, LEASE)
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def release(self, request_id: str) -> dict | None:
        """The release's record (its request, plan, progress and outcome in one object)."""
        cm = self.kube.get("", "v1", "configmaps", NS, f"hello-chatops-state-request-{request_id}")
        return json.loads(cm["data"]["record.json"]) if cm else None

    async def until(self, what: str, check: Callable[[], Any], timeout: float = 40.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                logs = "\n".join(f"{r.identity}: {line}" for r in self.replicas for line in r.log[-15:])
                raise AssertionError(f"never: {what}\n{logs}")
            await asyncio.sleep(0.05)

    async def ask_and_approve(self, text: str, via: Replica) -> Message:
        await self.slack.send_command(user="U1", channel="C1", text=text, url=via.url)
        request = await self.slack.wait_for(
            lambda m: isinstance(m, Message) and m.channel == "C1" and "decision-" in json.dumps(m.blocks), 20)
        await self.slack.click(user="U2", channel="C1", message_ts=request.ts, action_id="approve",
                               value=_request_id(request), url=via.url)
        return request

    def step_running(self, request_id: str, kind: str) -> bool:
        release = self.release(request_id)
        return bool(release) and any(s["kind"] == kind and s["state"] == "running" for s in release["steps"])

    def finished(self, ts: str) -> Message | None:
        message = next((m for m in self.slack.messages("C1") if m.ts == ts), None)
        done = message is not None and "Finished ·" in json.dumps(message.blocks, ensure_ascii=False)
        return message if done else None

    def audit(self, reason: str) -> list[dict]:
        return [e for e in self.kube.list("", "v1", "events", NS) if e.get("reason") == reason]


def _request_id(message: Message) -> str:
    for block in message.blocks or []:
        if block.get("type") == "actions":
            return str(block["elements"][0]["value"])
    raise AssertionError("no buttons")


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, **kube: Any) -> AsyncIterator[Cluster]:
    options: dict[str, Any] = {"tick": 0.05, "pod_ready_seconds": 1.0, "cert_issue_delay": 0.1,
                               "rbac_files": (ROLE,), **kube}
    emulator = KubeEmulator(**options)
    await emulator.start(host="127.0.0.1", port=0)
    emulator.seed(MANIFESTS)
    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    await slack.start()
    stage = Cluster(emulator, slack, tmp_path)
    try:
        yield stage
    finally:
        for replica in stage.replicas:
            await replica.stop()
        await slack.stop()
        await emulator.stop()


async def _leading(stage: Cluster, name: str, *, then: str = "", env: dict[str, str] | None = None) -> Replica:
    """Start replica ``name`` and wait until it holds the Lease; then start replica ``then``, if named (both with
    ``env`` besides the usual settings)."""
    replica = await stage.start(name, env)
    await stage.until(f"{name} leads", lambda: stage.lease_holder() == name)
    if then:
        await stage.start(then, env)
    return replica


async def _deploying(stage: Cluster, via: Replica) -> tuple[Any, str]:
    """Ask for and approve ``deploy v2`` through ``via``; its request's message and id, once its rollout is
    followed."""
    request = await stage.ask_and_approve("deploy v2", via=via)
    rid = _request_id(request)
    await stage.until("the rollout is being followed", lambda: stage.step_running(rid, "wait_ready"))
    return request, rid


async def _kill_driver(stage: Cluster, request_id: str) -> tuple[Replica, Replica, float]:
    """SIGKILL the replica driving the release; returns (killed, survivor, seconds until take-over)."""
    driver = stage.release(request_id)["driver"]
    killed = next(r for r in stage.replicas if r.identity == driver)
    survivor = next(r for r in stage.replicas if r.identity != driver)
    killed.proc.send_signal(signal.SIGKILL)
    await killed.proc.wait()
    began = time.monotonic()
    await stage.until("the other replica takes the release over",
                      lambda: (stage.release(request_id) or {}).get("driver") == survivor.identity, 30)
    return killed, survivor, time.monotonic() - began


@SUBPROCESS_BOTS
async def test_killing_the_driver_mid_rollout_the_other_replica_finishes_the_deploy(tmp_path: Path) -> None:
    async with cluster(tmp_path) as stage:
        a = await _leading(stage, "bot-a", then="bot-b")
        request, rid = await _deploying(stage, a)
        _, survivor, took = await _kill_driver(stage, rid)
        print(f"take-over after the kill: {took:.1f} s (lease 2 s)")
        final = await stage.until("the same message reports the end", lambda: stage.finished(request.ts), 60)
        assert "runs `v2`" in final.text and ":white_check_mark:" in json.dumps(final.blocks)
        deploy = stage.kube.get("apps", "v1", "deployments", NS, "helloworld")
        assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"  # set once
        assert len(await stage.until("the outcome is audited", lambda: stage.audit("HelloDeploySucceeded"))) == 1
        bot_messages = [m for m in stage.slack.messages("C1") if m.user == "UBOT" and not m.thread_ts]
        assert [m.ts for m in bot_messages] == [request.ts]  # no second message
        release = stage.release(rid)
        assert release["state"] == "succeeded" and release["driver"] == survivor.identity
        assert [s["runs"] for s in release["steps"]][-1] == 2  # the rollout step was begun again


@SUBPROCESS_BOTS
async def test_killing_the_driver_during_a_weight_change(tmp_path: Path) -> None:
    async with cluster(tmp_path, pod_ready_seconds=0.2) as stage:
        a = await _leading(stage, "bot-a", then="bot-b")
        stage.kube.add_fault(verb="patch", resource="mappings", status=None, delay=3.0, count=1)
        request = await stage.ask_and_approve("canary v2 20%", via=a)
        rid = _request_id(request)
        await stage.until("the weight is being set", lambda: stage.step_running(rid, "set_weight"))
        await _kill_driver(stage, rid)
        final = await stage.until("the same message reports the end", lambda: stage.finished(request.ts), 60)
        assert "gets 20% of the traffic" in final.text
        assert stage.kube.get("getambassador.io", "v3alpha1", "mappings", NS, "helloworld-canary")["spec"]["weight"] \
            == 20
        assert len(await stage.until("the outcome is audited", lambda: stage.audit("HelloCanarySucceeded"))) == 1


@SUBPROCESS_BOTS
async def test_killing_the_driver_during_a_certificate_issuance(tmp_path: Path) -> None:
    async with cluster(tmp_path, cert_issue_delay=4.0) as stage:
        a = await _leading(stage, "bot-a", then="bot-b")
        def issued() -> dict | None:
            cert = stage.kube.get("cert-manager.io", "v1", "certificates", NS, "helloworld-tls") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (cert.get("status") or {}).get("conditions") or [])
            return cert if ready else None

        cert = await stage.until("the certificate is issued", issued)
        revision = int((cert.get("status") or {}).get("revision") or 0)
        request = await stage.ask_and_approve("cert renew", via=a)
        rid = _request_id(request)
        await stage.until("the issuance is being followed", lambda: stage.step_running(rid, "wait_issued"))
        await _kill_driver(stage, rid)
        final = await stage.until("the same message reports the end", lambda: stage.finished(request.ts), 60)
        assert "re-issued" in final.text
        cert = stage.kube.get("cert-manager.io", "v1", "certificates", NS, "helloworld-tls")
        assert int(cert["status"]["revision"]) == revision + 1  # issued once
        assert len(await stage.until("the outcome is audited", lambda: stage.audit("HelloCertRenewSucceeded"))) == 1


@SUBPROCESS_BOTS
async def test_a_lone_replica_killed_and_started_again_resumes_its_release(tmp_path: Path) -> None:
    async with cluster(tmp_path) as stage:
        a = await _leading(stage, "bot-a")
        request, _ = await _deploying(stage, a)
        await a.stop(signal.SIGKILL)
        await stage.start("bot-a")  # the same pod name, as after a container restart
        final = await stage.until("the same message reports the end", lambda: stage.finished(request.ts), 60)
        assert "runs `v2`" in final.text
        assert len(await stage.until("the outcome is audited", lambda: stage.audit("HelloDeploySucceeded"))) == 1


async def test_the_kubernetes_api_failing_for_20_seconds_mid_release_the_release_resumes(release: Any) -> None:
    async with release(env={"HELLO_CLUSTER_PATIENCE": "120"}, kube={"pod_ready_seconds": 1.0}) as chat:
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        await chat.click("U2", request, "approve")
        await chat.wait(lambda m: m.ts == request.ts and "approved by" in json.dumps(m.blocks)
                        and ":hourglass_flowing_sand: Rolling out" in json.dumps(m.blocks, ensure_ascii=False), 20)
        chat.kube.add_fault(status=503, count=None, message="etcdserver: leader changed")
        await asyncio.sleep(20)  # the outage itself: the API answers 503 to everything for 20 s
        said = chat.message(request.ts)
        assert "Finished ·" not in json.dumps(said.blocks, ensure_ascii=False)  # no success it did not see
        assert "cannot reach the cluster" in json.dumps(said.blocks), [json.dumps(e)[:300] for e in said.edits][-3:]
        chat.kube.clear_faults()
        final = await chat.finished(request, timeout=60)
        assert "runs `v2`" in final.text
        await chat.settle()
        assert len(chat.audit_events("HelloDeploySucceeded")) == 1


@SUBPROCESS_BOTS
async def test_the_driver_killed_while_writing_the_outcomes_audit_event_the_outcome_is_recorded_once(
        tmp_path: Path) -> None:
    async with cluster(tmp_path) as stage:
        a = await _leading(stage, "bot-a", then="bot-b")
        request, rid = await _deploying(stage, a)
        stage.kube.add_fault(verb="create", resource="events", status=None, delay=2.5, count=1)
        await stage.until("the outcome's Event is being written", lambda: not stage.kube.faults.describe())
        await _kill_driver(stage, rid)
        final = await stage.until("the same message reports the end", lambda: stage.finished(request.ts), 60)
        assert "runs `v2`" in final.text
        await stage.until("the request is finished", lambda: (stage.release(rid) or {}).get("reported"))
        assert len(stage.audit("HelloDeploySucceeded")) == 1
        logged = [line for r in stage.replicas for line in r.log
                  if '"audit"' in line and "HelloDeploySucceeded" in line]
        assert len(logged) <= 1, logged  # the JSON audit line: never twice
        message = next(m for m in stage.slack.messages("C1") if m.ts == request.ts)
        assert not [e for e in message.edits if "Finished ·" in json.dumps(e.blocks, ensure_ascii=False)]  # once


@SUBPROCESS_BOTS
async def test_the_driver_killed_between_superseding_the_baking_deploy_and_admitting_its_rollback(
        tmp_path: Path, alertmanager: Any) -> None:
    bake = {"HELLO_ALERTMANAGER_URL": alertmanager.url, "HELLO_BAKE_MINUTES": "10"}
    async with cluster(tmp_path) as stage:
        a = await _leading(stage, "bot-a", then="bot-b", env=bake)
        request = await stage.ask_and_approve("deploy v2", via=a)
        rid = _request_id(request)
        await stage.until("the deploy bakes", lambda: stage.step_running(rid, "bake"), 60)
        # the rollback's record is stored slowly, then refused: its driver dies after the supersede, before it
        stage.kube.add_fault(verb="create", resource="configmaps", status=503, delay=5.0, count=1)
        fire(alertmanager.url)
        await stage.until("the rollback's record is being stored", lambda: not stage.kube.faults.describe(), 60)
        deploy = stage.release(rid) or {}
        assert deploy["state"] == "superseded", deploy["state"]
        rollback = deploy["outcome"]["facts"]["rollback"]
        driver = next(r for r in stage.replicas if r.identity == deploy["driver"])
        driver.proc.send_signal(signal.SIGKILL)
        await driver.proc.wait()
        assert stage.release(rollback) is None  # no rollback exists: the deploy is merely superseded
        # the survivor leads, and its repair makes the rollback the deploy names, once
        made = await stage.until("the rollback runs", lambda: (stage.release(rollback) or {}).get("state") in (
            "running", "succeeded"), 60)
        assert made
        await stage.until("helloworld runs v1 again", lambda: ":v1" in json.dumps(
            stage.kube.get("apps", "v1", "deployments", NS, "helloworld")["spec"]), 60)
        assert len(stage.audit("HelloRollbackRequested")) == 1
        records = [cm for cm in stage.kube.list("", "v1", "configmaps", NS)
                   if cm["metadata"]["name"].startswith("hello-chatops-state-request-")]
        assert len(records) == 2
