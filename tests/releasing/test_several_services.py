"""Several services in several clusters: commands name a service and environment, each change touches only its
own objects, locks are per service and environment, and /hello status sums them all up.

Two emulated clusters (staging, production) reached through two kubeconfig contexts, each holding helloworld
(namespace hello) and greeter (namespace greeter); the bot's own state lives in production.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.kube import KubeEmulator
from sandbox.slack.state import Ephemeral, Message
from sandbox.stack import MANIFESTS, Stack

CATALOGUE = """
services:
  - name: helloworld
    environments:
      - {name: staging, context: staging, namespace: hello}
      - {name: production, context: production, namespace: hello}
    channels: [CHELLO]
  - name: greeter
    environments:
      - {name: staging, context: staging, namespace: greeter}
      - {name: production, context: production, namespace: greeter, approvals: 2}
    image: {repository: ghcr.io/example/greeter}
    channels: [CGREET]
"""
APPROVE = "'action_id': 'approve'"  # an Approve button
KINDS = [("apps", "v1", "deployments"), ("getambassador.io", "v3alpha1", "mappings"),
         ("cert-manager.io", "v1", "certificates")]


def greeter_manifests(tmp: Path) -> Path:
    """helloworld's manifests again as greeter, in namespace greeter (what a second team's service looks like)."""
    out = tmp / "greeter"
    out.mkdir()
    sources = [*sorted((MANIFESTS / "helloworld").glob("*.yaml")), MANIFESTS / "cert-manager" / "certificate.yaml"]
    for source in sources:
        if source.name == "kustomization.yaml":
            continue
        text = source.read_text().replace("helloworld", "greeter").replace("namespace: hello\n", "namespace: greeter\n")
        text = text.replace("name: hello\n", "name: greeter\n")
        (out / source.name).write_text(text)
    return out


def kubeconfig(tmp: Path, clusters: dict[str, KubeEmulator]) -> Path:
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for name, emulator in clusters.items():
        part = yaml.safe_load(emulator.write_kubeconfig(tmp / f"{name}.kubeconfig", context=name).read_text())
        for key in ("clusters", "users", "contexts"):
            merged[key].extend(part[key])
    merged["current-context"] = "production"
    path = tmp / "kubeconfig"
    path.write_text(yaml.safe_dump(merged))
    return path


class World:
    def __init__(self, stack: Stack, clusters: dict[str, KubeEmulator]) -> None:
        self.stack, self.clusters, self.slack = stack, clusters, stack.slack

    def objects(self) -> dict[tuple[str, str, str, str], dict]:
        """Every Deployment, Mapping and Certificate in both clusters, by (cluster, namespace, kind, name)."""
        out = {}
        for cluster, emulator in self.clusters.items():
            for namespace in ("hello", "greeter"):
                for group, version, plural in KINDS:
                    for obj in emulator.list(group, version, plural, namespace):
                        out[(cluster, namespace, plural, obj["metadata"]["name"])] = copy.deepcopy(obj["spec"])
        return out

    def image(self, cluster: str, namespace: str, name: str) -> str:
        d = self.clusters[cluster].get("apps", "v1", "deployments", namespace, name)
        return d["spec"]["template"]["spec"]["containers"][0]["image"]

    async def ask(self, user: str, text: str, channel: str) -> None:
        await self.stack.command(user, text, channel=channel)

    async def request(self, channel: str, needle: str) -> Message:
        try:
            return await self.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == channel
                                             and needle in m.text and APPROVE in str(m.blocks), 15)
        except TimeoutError:
            said = [m.text for m in self.slack.workspace.messages(channel)]
            said += [e.text for e in self.slack.workspace._ephemerals.get(channel, [])]
            raise AssertionError(f"no request for {needle} in {channel}; it says {said}") from None

    async def private(self, user: str, channel: str, needle: str) -> Ephemeral:
        return await self.slack.wait_for(lambda m: isinstance(m, Ephemeral) and m.user == user
                                         and m.channel == channel and needle in m.text, 15)

    async def finished(self, message: Message) -> Message:
        return await self.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == message.ts
                                         and "Finished ·" in str(m.blocks), 40)


@asynccontextmanager
async def open_world(tmp_path: Path, catalogue: str = CATALOGUE) -> AsyncIterator[World]:
    """Both clusters seeded with both services, and the bot reading ``catalogue``."""
    clusters = {name: KubeEmulator(tick=0.03, pod_ready_seconds=0.1) for name in ("staging", "production")}
    greeter = greeter_manifests(tmp_path)
    try:
        for emulator in clusters.values():
            await emulator.start()
            emulator.seed(MANIFESTS)
            emulator.seed(greeter)
        services = tmp_path / "services.yaml"
        services.write_text(catalogue)
        env = {"KUBECONFIG": str(kubeconfig(tmp_path, clusters)), "HELLO_KUBE_CONTEXT": "production",
               "HELLO_SERVICES": str(services), "HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2,U3",
               "HELLO_ROLLOUT_STALL": "20", "HELLO_ROLLOUT_TIMEOUT": "60", "HELLO_BAKE_MINUTES": "0"}
        channels = {"C1": "ops", "CHELLO": "helloworld", "CGREET": "greeter"}
        async with Stack(kube=clusters["production"], env=env, slack_options={"channels": channels}) as stack:
            for replica in stack.replicas:
                replica.services.approvals.edit_interval = 0.2
            yield World(stack, clusters)
    finally:
        for emulator in clusters.values():
            await emulator.stop()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as opened:
        yield opened


async def test_a_deploy_of_one_service_in_one_environment_changes_nothing_else(world: World) -> None:
    before = world.objects()
    await world.ask("U1", "/hello deploy greeter staging v2", "CGREET")
    request = await world.request("CGREET", "greeter (staging)")
    await world.stack.click("U2", request.ts, "approve", channel="CGREET")
    final = await world.finished(request)
    await world.stack.settle(30)
    assert ":white_check_mark:" in str(final.blocks), final.text
    assert world.image("staging", "greeter", "greeter") == "ghcr.io/example/greeter:v2"
    after = world.objects()
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("staging", "greeter", "deployments", "greeter")}
    # the audit record is in the namespace of the service it is about, in its cluster
    events = world.clusters["staging"].list("", "v1", "events", "greeter")
    assert {"HelloDeployRequested", "HelloDeploySucceeded"} <= {e["reason"] for e in events}
    assert not [e for e in world.clusters["production"].list("", "v1", "events", "greeter")
                if e["reason"].startswith("HelloDeploy")]
    # history of that service shows it; another service's history does not
    await world.ask("U1", "/hello history greeter staging", "C1")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                               and "greeter (staging)" in m.text and "Release history" in m.text, 15)


async def test_the_service_may_be_left_out_in_its_channel_and_locks_are_per_service_and_environment(
        world: World) -> None:
    # in greeter's channel, "production" alone names greeter's production
    await world.ask("U1", "/hello deploy production v3", "CGREET")
    first = await world.request("CGREET", "greeter (production)")
    # another environment and another service are not held by it
    await world.ask("U1", "/hello deploy staging v3", "CGREET")
    await world.request("CGREET", "greeter (staging)")
    await world.ask("U1", "/hello deploy helloworld production v3", "CHELLO")
    await world.request("CHELLO", "helloworld (production)")
    # the same service and environment is: one change at a time, naming the one that holds it
    await world.ask("U1", "/hello deploy greeter production v4", "CGREET")
    busy = await world.private("U1", "CGREET", "One change at a time")
    assert "greeter (production)" in busy.text and first.ts
    # a service's changes are asked for in its channels
    await world.ask("U1", "/hello deploy greeter staging v4", "CHELLO")
    refused = await world.private("U1", "CHELLO", "Changes can only be requested in")
    assert "<#CGREET>" in refused.text


async def test_names_are_checked_and_status_covers_every_service(world: World) -> None:
    await world.ask("U1", "/hello deploy v2", "C1")  # a channel of no service: which one?
    which = await world.private("U1", "C1", "name a service")
    assert "helloworld, greeter" in which.text
    await world.ask("U1", "/hello deploy greeter qa v2", "CGREET")  # qa is not an environment: a version?
    await world.private("U1", "CGREET", "")  # answered privately, nothing requested
    assert not [m for m in world.slack.messages("CGREET") if APPROVE in str(m.blocks)]

    await world.ask("U1", "/hello status", "C1")
    overview = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                          and m.text.startswith("Services"), 15)
    lines = overview.text.splitlines()[1:]
    assert [line.split("*")[1] + " " + line.split("*")[2].split(":")[0].strip() for line in lines] == [
        "helloworld staging", "helloworld production", "greeter staging", "greeter production"]
    assert all("stable `v1`" in line for line in lines), lines

    await world.ask("U1", "/hello status greeter staging", "C1")
    detail = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                        and m.ts != overview.ts and "greeter" in str(m.blocks), 15)
    assert detail.text.startswith("greeter status: stable v1")
    assert "greeter in greeter" in str(detail.blocks[0])  # the Deployment and its namespace


async def test_a_lock_refuses_a_freeze_needs_break_glass_and_production_needs_two_approvers(world: World) -> None:
    await world.ask("U1", '/hello lock greeter production "database migration"', "CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "CGREET" and "lock" in m.text, 15)
    await world.ask("U1", "/hello deploy production v5", "CGREET")
    locked = await world.private("U1", "CGREET", "is locked by <@U1>")
    assert "database migration" in locked.text and "Nothing was changed" in locked.text
    await world.ask("U1", "/hello unlock greeter production", "CGREET")

    await world.ask("U1", '/hello freeze greeter staging 2h "release weekend"', "CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "CGREET" and "froze" in m.text.lower(),
                               15)
    await world.ask("U1", "/hello deploy staging v5", "CGREET")
    await world.private("U1", "CGREET", "needs break-glass")
    assert not [m for m in world.slack.messages("CGREET") if APPROVE in str(m.blocks)]
    await world.ask("U1", '/hello deploy staging v5 "security fix"', "CGREET")
    glass = await world.request("CGREET", "greeter (staging)")
    assert "Break-glass" in str(glass.blocks) and "release weekend" in str(glass.blocks)
    await world.stack.click("U2", glass.ts, "approve", channel="CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == glass.ts
                               and "1 of 2 approvals: <@U2>" in str(m.blocks), 15)
    await world.stack.click("U2", glass.ts, "approve", channel="CGREET")  # the same approver twice counts once
    await world.private("U2", "CGREET", "approved already")
    assert world.image("staging", "greeter", "greeter").endswith(":v1")
    await world.stack.click("U3", glass.ts, "approve", channel="CGREET")
    final = await world.finished(glass)
    assert ":white_check_mark:" in str(final.blocks)
    assert world.image("staging", "greeter", "greeter").endswith(":v5")
    approved = [e for e in world.clusters["staging"].list("", "v1", "events", "greeter")
                if e["reason"] == "HelloDeployApproved"]
    assert any("break-glass" in e["message"] and "U2, U3" in e["message"] for e in approved), approved

    # production asks two approvers without any freeze (approvals: 2 in the catalogue)
    await world.ask("U1", "/hello deploy production v5", "CGREET")
    prod = await world.request("CGREET", "greeter (production)")
    await world.stack.click("U3", prod.ts, "approve", channel="CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == prod.ts
                               and "1 of 2 approvals: <@U3>" in str(m.blocks), 15)
    assert world.image("production", "greeter", "greeter").endswith(":v1")
