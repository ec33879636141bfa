"""`/hello status` end to end: signed command -> bot -> Kubernetes emulator -> message in the Slack emulator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.kube import kinds
from sandbox.slack import Ephemeral, Message
from sandbox.stack import Stack

MAPPINGS = ("getambassador.io", "v3alpha1", "mappings")
CERTS = ("cert-manager.io", "v1", "certificates")


def status_message(m: object) -> bool:
    return isinstance(m, Message) and m.text.startswith("helloworld status")


async def rolled_out(stack: Stack, name: str = "helloworld", timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        deploy = stack.kube.get("apps", "v1", "deployments", "hello", name)
        status = deploy.get("status", {})
        if status.get("readyReplicas", 0) >= deploy["spec"]["replicas"] and status.get("observedGeneration"):
            return
        assert loop.time() < deadline, f"{name} never became ready"
        await asyncio.sleep(0.05)


async def certified(stack: Stack, name: str = "helloworld-tls", timeout: float = 20) -> None:
    """Wait until the emulated cert-manager has issued the Certificate (Ready=True)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        cert = stack.kube.get(*CERTS, "hello", name) or {}
        conditions = (cert.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return
        assert loop.time() < deadline, f"{name} was never issued"
        await asyncio.sleep(0.05)


async def ask_status(stack: Stack, user: str = "U3") -> tuple[Message, str]:
    await rolled_out(stack)
    before = len(stack.slack.messages("C1"))
    await stack.command(user, "/hello status")
    message = await stack.wait_message(
        lambda m: status_message(m) and len(stack.slack.messages("C1")) > before, timeout=20
    )
    await stack.settle()
    return message, json.dumps(message.blocks)


async def test_status_shows_tracks_weight_and_certificate() -> None:
    async with Stack() as stack:
        await certified(stack)  # no warning about a certificate still being issued
        message, blocks = await ask_status(stack)
        assert message.text == "helloworld status: stable v1 2/2 ready, canary v1 at 0%"
        assert "*Stable*  `v1`\\n2/2 ready" in blocks
        assert "rest of traffic" in blocks
        assert "*Canary*  `v1`\\n0/0 ready \\u00b7 not running" in blocks
        assert "days left" in blocks and "helloworld-tls" in blocks
        assert "Warnings" not in blocks
        assert "metrics unavailable" in blocks  # Prometheus is not running in this test
        assert stack.slack.ephemerals("C1") == []


async def test_status_warns_about_weight_without_ready_canary_and_expiring_certificate() -> None:
    async with Stack() as stack:
        kube = stack.kube
        mapping = kube.get(*MAPPINGS, "hello", "helloworld-canary")
        mapping["spec"]["weight"] = 30
        kube.apply(mapping)
        deadline = asyncio.get_running_loop().time() + 20
        while not kube.get(*CERTS, "hello", "helloworld-tls").get("status", {}).get("revision"):
            assert asyncio.get_running_loop().time() < deadline, "the certificate was never issued"
            await asyncio.sleep(0.05)
        cert = kube.get(*CERTS, "hello", "helloworld-tls")
        soon = datetime.now(UTC) + timedelta(days=5)
        cert["status"]["notAfter"] = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
        kind = kinds.for_resource(*CERTS, namespaced=True)
        kube.store.update(kind, "hello", "helloworld-tls", cert, subresource="status")
        _, blocks = await ask_status(stack)
        assert "canary has 30% of traffic but no ready pods" in blocks
        assert "certificate helloworld-tls expires in 5 days" in blocks or "expires in 4 days" in blocks


async def test_missing_certificate_and_canary_are_said_not_a_crash() -> None:
    async with Stack() as stack:
        stack.kube.delete(*CERTS, "hello", "helloworld-tls")
        stack.kube.delete("apps", "v1", "deployments", "hello", "helloworld-canary")
        _, blocks = await ask_status(stack)
        assert "certificate: certificates/helloworld-tls not found" in blocks
        assert "canary: deployments/helloworld-canary not found" in blocks
        assert "*Stable*" in blocks


async def test_no_permission_to_read_the_certificate_is_said() -> None:
    async with Stack() as stack:
        stack.kube.add_fault(verb="get", resource="certificates", status=403, count=None)
        _, blocks = await ask_status(stack)
        assert "not allowed to get certificates/helloworld-tls" in blocks


async def test_stuck_rollout_is_a_warning() -> None:
    async with Stack(kube_options={"deadline_scale": 0.01}) as stack:
        await rolled_out(stack)
        deploy = stack.kube.get("apps", "v1", "deployments", "hello", "helloworld")
        deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "helloworld:v9-broken"
        stack.kube.apply(deploy)

        def stuck() -> bool:
            d = stack.kube.get("apps", "v1", "deployments", "hello", "helloworld")
            return any(c.get("reason") == "ProgressDeadlineExceeded" for c in d.get("status", {}).get("conditions", []))

        deadline = asyncio.get_running_loop().time() + 20
        while not stuck():
            assert asyncio.get_running_loop().time() < deadline, "rollout never reported stuck"
            await asyncio.sleep(0.05)
        _, blocks = await ask_status(stack)
        assert "stable rollout is stuck" in blocks
        assert "rotating_light" in blocks
        assert "Recent warning events" in blocks and "BackOff Pod/helloworld-" in blocks
        # the overview's lighter read: the same health, no Events asked for
        cluster = await stack.services.cluster()
        full, light = await cluster.deployed(), await cluster.deployed(events=False)
        assert full.warnings and light.warnings == () and "events" not in light.missing
        assert light.stable == full.stable and light.canary_route == full.canary_route


async def test_status_with_the_bot_role_enforced() -> None:
    async with Stack(rbac=True) as stack:
        _, blocks = await ask_status(stack)
        assert "2/2 ready" in blocks
        assert "not allowed" not in blocks


@pytest.mark.parametrize("arg", ["2d", "1h 6h"])
async def test_bad_range_is_refused_privately(arg: str) -> None:
    async with Stack() as stack:
        reply = await stack.command("U3", f"/hello status {arg}")
        assert reply.json["response_type"] == "ephemeral"
        assert "Usage: /hello status" in reply.json["text"]
        assert not [m for m in stack.slack.messages("C1") if isinstance(m, Message)]
        assert not [e for e in stack.slack.ephemerals("C1") if isinstance(e, Ephemeral) and "helloworld" in e.text]
