"""The chat harness: the Kubernetes and Slack emulators and the bot, talked to like a chat in one channel.

Every stack enforces the bot's RBAC Role (manifests/bot/role.yaml) unless a test says otherwise, so
each flow also proves the Role lets the bot do it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sandbox.kube import KubeEmulator
from sandbox.slack.state import Ephemeral, Message
from sandbox.stack import MANIFESTS, ROLE, Stack

HERE = Path(__file__).parent
NS = "hello"
MANAGED = "app.kubernetes.io/managed-by"


def _posted(m: Any) -> bool:
    return isinstance(m, Message) and m.channel == "C1" and not m.deleted


def button(message: Any, action_id: str) -> dict | None:
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


class Chat:
    """One channel (C1) with the bot in it, and the cluster behind it."""

    button = staticmethod(button)

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.kube: KubeEmulator = stack.kube
        self.slack = stack.slack

    @property
    def config(self):  # -> bot.config.Config
        return self.stack.services.config

    def image(self, version: str) -> str:
        return f"{self.config.image_repository}:{version}"

    # -- talking
    async def send(self, user: str, text: str, *, replica: int = 0) -> Any:
        return await self.stack.command(user, text, replica=replica)

    async def click(self, user: str, message: Any, action_id: str, *, replica: int = 0) -> Any:
        return await self.stack.click(user, message.ts, action_id, replica=replica)

    async def wait(self, predicate: Callable[[Any], bool], timeout: float = 20.0) -> Any:
        return await self.slack.wait_for(predicate, timeout)

    async def approval(self, *, exclude: Iterable[str] = (), timeout: float = 10.0) -> Any:
        """The newest message with an Approve button not in ``exclude``."""
        skip = set(exclude)
        return await self.wait(lambda m: _posted(m) and m.ts not in skip and button(m, "approve") is not None,
                               timeout)

    async def message_saying(self, needle: str, *, timeout: float = 20.0) -> Any:
        return await self.wait(lambda m: _posted(m) and needle in m.text, timeout)

    async def private(self, user: str, needle: str, *, timeout: float = 10.0) -> Any:
        return await self.wait(lambda m: isinstance(m, Ephemeral) and m.channel == "C1" and m.user == user
                               and needle in m.text, timeout)

    async def finished(self, message: Any, timeout: float = 40.0) -> Any:
        """Wait until the progress message ``message`` shows its final state."""
        try:
            return await self.wait(lambda m: _posted(m) and m.ts == message.ts and "Finished ·" in str(m.blocks),
                                   timeout)
        except TimeoutError:
            raise AssertionError(f"message {message.ts} never finished; it says: {self.message(message.ts).text}"
                                 ) from None

    def message(self, ts: str) -> Any:
        return next(m for m in self.slack.messages("C1") if m.ts == ts)

    async def settle(self) -> None:
        await self.stack.settle(60)

    # -- the cluster
    def deployment(self, name: str = "helloworld") -> dict:
        return self.kube.get("apps", "v1", "deployments", NS, name)

    def container(self, name: str = "helloworld") -> dict:
        containers = self.deployment(name)["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == self.config.container)

    def mapping(self, name: str = "helloworld-canary") -> dict:
        return self.kube.get("getambassador.io", "v3alpha1", "mappings", NS, name)

    def certificate(self) -> dict:
        return self.kube.get("cert-manager.io", "v1", "certificates", NS, self.config.certificate)

    def audit_events(self, reason: str | None = None) -> list[dict]:
        events = self.kube.list("", "v1", "events", NS)
        mine = [e for e in events if (e["metadata"].get("labels") or {}).get(MANAGED) == "hello-chatops"]
        return [e for e in mine if reason is None or e["reason"] == reason]

    async def rolled_out(self, name: str = "helloworld", timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            d = self.deployment(name)
            s, want = d.get("status") or {}, d["spec"].get("replicas", 1)
            if (s.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
                    and s.get("updatedReplicas", 0) == want and s.get("readyReplicas", 0) == want
                    and s.get("replicas", 0) == want):
                return d
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not roll out: {s}")
            await asyncio.sleep(0.05)

    async def issued(self, timeout: float = 15.0) -> dict:
        """Wait until the Certificate has been issued (Ready=True), as at the start of every renewal test."""
        deadline = time.monotonic() + timeout
        while True:
            cert = self.certificate()
            conditions = (cert.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                return cert
            if time.monotonic() > deadline:
                raise TimeoutError(f"the certificate was never issued: {cert.get('status')}")
            await asyncio.sleep(0.05)

    async def approve(self, requester: str, text: str, approver: str = "U2", *, exclude: Iterable[str] = ()
                      ) -> Any:
        """Ask as ``requester``, approve as ``approver``, wait for the end; returns the final message."""
        await self.send(requester, text)
        request = await self.approval(exclude=exclude)
        await self.click(approver, request, "approve")
        await self.finished(request)
        await self.settle()
        return self.message(request.ts)


@asynccontextmanager
async def release_stack(*, rbac: bool = True, replicas: int = 1, env: dict[str, str] | None = None,
                        kube: dict[str, Any] | None = None) -> AsyncIterator[Chat]:
    options: dict[str, Any] = {"tick": 0.03, "pod_ready_seconds": 0.1, "cert_issue_delay": 0.1, **(kube or {})}
    if rbac:
        options["rbac_files"] = (ROLE,)
    emulator = KubeEmulator(**options)
    await emulator.start()
    try:
        emulator.seed(MANIFESTS)
        settings = {"HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "S1", "HELLO_ROLLOUT_STALL": "20",
                    "HELLO_ROLLOUT_TIMEOUT": "60", "HELLO_CERT_TIMEOUT": "20", "HELLO_CLUSTER_PATIENCE": "3",
                    **(env or {})}
        async with Stack(kube=emulator, env=settings, replicas=replicas) as stack:
            chat = Chat(stack)
            await chat.rolled_out()
            for replica in stack.replicas:
                replica.services.approvals.edit_interval = 0.2
            yield chat
    finally:
        await emulator.stop()
