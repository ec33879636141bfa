"""Two emulated clusters (staging, production) reached through two kubeconfig contexts, each holding helloworld
(namespace hello) and greeter (namespace greeter), and the bot with a catalogue of both; the bot's own state lives
in production. Used by the tests of several services and of promotion between environments.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sandbox.kube import KubeEmulator
from sandbox.slack.state import DEFAULT_USERS, Ephemeral, Message
from sandbox.stack import MANIFESTS, ROLE, Stack
from tests.catalogues import two_services, write_catalogue, write_kubeconfig

HELLOWORLD = {"channels": ["CHELLO"], "lock": "refuse"}  # how the catalogue differs from tests/catalogues.py's
GREETER = {"channels": ["CGREET"], "production": {"approvals": 2}}
CATALOGUE = two_services(helloworld=HELLOWORLD, greeter=GREETER)
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
                                             and needle in m.text and APPROVE in str(m.blocks), 30)
        except TimeoutError:
            said = [m.text for m in self.slack.workspace.messages(channel)]
            said += [e.text for e in self.slack.workspace._ephemerals.get(channel, [])]
            raise AssertionError(f"no request for {needle} in {channel}; it says {said}") from None

    async def private(self, user: str, channel: str, needle: str) -> Ephemeral:
        return await self.slack.wait_for(lambda m: isinstance(m, Ephemeral) and m.user == user
                                         and m.channel == channel and needle in m.text, 30)

    async def finished(self, message: Message) -> Message:
        return await self.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == message.ts
                                         and "Finished ·" in str(m.blocks), 60)


@asynccontextmanager
async def two_clusters(tmp_path: Path, *, catalogue: dict[str, Any] = CATALOGUE, env: dict[str, str] | None = None,
                       rbac: bool = False, people: tuple[str, ...] = ()) -> AsyncIterator[World]:
    """The world; with ``rbac`` both clusters enforce the bot's Role in both namespaces (and the bot uses its token);
    ``people``: more users of the workspace, besides U1-U3."""
    options: dict[str, Any] = {"tick": 0.03, "pod_ready_seconds": 0.1}
    if rbac:
        greeter_role = tmp_path / "greeter-role.yaml"
        greeter_role.write_text(ROLE.read_text().replace("namespace: hello", "namespace: greeter"))
        options["rbac_files"] = (ROLE, greeter_role)
    clusters = {name: KubeEmulator(**options) for name in ("staging", "production")}
    greeter = greeter_manifests(tmp_path)
    try:
        for emulator in clusters.values():
            await emulator.start()
            emulator.seed(MANIFESTS)
            emulator.seed(greeter)
        services = write_catalogue(tmp_path / "services.yaml", catalogue)
        token = clusters["production"].rbac_token if rbac else None
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", clusters, token=token, current="production")
        settings = {"KUBECONFIG": str(kubeconfig), "HELLO_KUBE_CONTEXT": "production",
                    "HELLO_SERVICES": str(services), "HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2,U3",
                    "HELLO_ROLLOUT_STALL": "20", "HELLO_ROLLOUT_TIMEOUT": "60", "HELLO_BAKE_MINUTES": "0",
                    **(env or {})}
        channels = {"C1": "ops", "CHELLO": "helloworld", "CGREET": "greeter"}
        users = [*DEFAULT_USERS, *({"id": p, "name": p.lower(), "real_name": f"Person {p}"} for p in people)]
        async with Stack(kube=clusters["production"], env=settings,
                         slack_options={"channels": channels, "users": users}) as stack:
            for replica in stack.replicas:
                replica.services.approvals.edit_interval = 0.2
            yield World(stack, clusters)
    finally:
        for emulator in clusters.values():
            await emulator.stop()
