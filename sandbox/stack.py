"""The bot wired to the emulated Kubernetes and Slack, all in the current event loop.

Used by the sandbox and by the end-to-end tests::

    async with Stack(env={"HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2"}) as stack:
        await stack.command("U1", "/hello status")
        message = await stack.wait_message(lambda m: "helloworld" in m.text)

Each bot replica is the real thing: configuration loaded from an environment mapping, the Bolt app
on its Sanic server on a free port, the official kubernetes client reading a kubeconfig that points
at the emulator, the Slack Web API client pointing at the Slack emulator.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sanic import Sanic

from bot.chat.app import Dispatcher, build_app
from bot.chat.contract import Registry
from bot.chat.server import RunningServer, build_server, start_in_loop
from bot.core import config as config_module
from bot.core.services import Services
from bot.wiring import build_services
from commands import default_registry
from sandbox.kube import KubeEmulator
from sandbox.slack import SlackEmulator

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
ROLE = MANIFESTS / "bot" / "role.yaml"
SIGNING_SECRET = "sandbox-signing-secret"
BOT_TOKEN = "xoxb-sandbox-bot-token"
_names = itertools.count(1)


@dataclass
class Replica:
    """One running bot instance."""

    index: int
    services: Services
    dispatcher: Dispatcher
    server: RunningServer

    @property
    def url(self) -> str:
        return f"{self.server.url}/slack/events"


class Stack:
    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        rbac: bool = False,
        replicas: int = 1,
        seed: Path | None = MANIFESTS,
        kube_options: Mapping[str, Any] | None = None,
        slack_options: Mapping[str, Any] | None = None,
        prometheus_url: str = "http://127.0.0.1:9",
        registry: Callable[[], Registry] | None = None,
        workdir: Path | None = None,
        host: str = "127.0.0.1",
        kube: KubeEmulator | None = None,
        schedules: bool = False,
        engine_interval: float = 0.2,
        engine: bool = True,
        bot_port: int = 0,
    ) -> None:
        self.env_overrides = dict(env or {})
        self.rbac = rbac
        self.replica_count = replicas
        self.seed_path = seed
        self.kube_options = dict(kube_options or {})
        self.slack_options = dict(slack_options or {})
        self.prometheus_url = prometheus_url
        self.registry_factory = registry or default_registry
        self.host = host
        self.run_schedules = schedules
        self.engine_interval = engine_interval
        self.run_engine = engine
        self.bot_port = bot_port  # the first replica's port (0: any free one)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.kube: KubeEmulator = kube  # type: ignore[assignment]
        self._own_kube = kube is None
        self.slack: SlackEmulator = None  # type: ignore[assignment]
        self.replicas: list[Replica] = []
        self.kubeconfig = Path()

    # ------------------------------------------------------------------ life cycle
    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def env(self) -> dict[str, str]:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "KUBECONFIG": str(self.kubeconfig),
            "PROMETHEUS_URL": self.prometheus_url,
            "PROMETHEUS_TIMEOUT": "2",
            "HELLO_DEPLOYERS": "U1",
            "HELLO_APPROVERS": "S1",
        }
        env.update(self.env_overrides)
        return env

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hello-stack-")
            self.workdir = Path(self._tmp.name)
        if self.kube is None:
            options = {"tick": 0.05, "pod_ready_seconds": 0.2, **self.kube_options}
            if self.rbac:
                options.setdefault("rbac_files", (ROLE,))
            self.kube = KubeEmulator(**options)
            await self.kube.start(host=self.host, port=0)
            if self.seed_path is not None:
                self.kube.seed(self.seed_path)
        token = self.kube_options.get("rbac_token", "bot-token")
        self.kubeconfig = Path(self.kube.write_kubeconfig(self.workdir / "kubeconfig", token=token))
        self.slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, **self.slack_options)
        await self.slack.start()
        for index in range(self.replica_count):
            self.replicas.append(await self.start_replica(index))
        self.slack.request_url = self.replicas[0].url

    async def start_replica(self, index: int, extra_env: Mapping[str, str] | None = None) -> Replica:
        env = self.env()
        env["HELLO_IDENTITY"] = f"bot-{index}"
        env.update(extra_env or {})
        config = config_module.load(env)
        services = build_services(config, registry=self.registry_factory())
        bolt = build_app(services)
        dispatcher: Dispatcher = bolt.dispatcher  # type: ignore[attr-defined]
        app = build_server(bolt, name=f"hello_chatops_{next(_names)}")
        server = await start_in_loop(app, self.host, self.bot_port if index == 0 else 0)
        services.releases.interval = self.engine_interval
        if self.run_engine:
            await services.releases.start()
        if self.run_schedules:
            await services.approvals.start()
            if services.schedules is not None:
                await services.schedules.start()
        return Replica(index=index, services=services, dispatcher=dispatcher, server=server)

    async def stop_replica(self, replica: Replica) -> None:
        await replica.dispatcher.drain(timeout=10)
        if replica.services.alerts is not None:
            await replica.services.alerts.drain(timeout=10)
        await replica.services.releases.stop()
        if replica.services.schedules is not None:
            await replica.services.schedules.stop()
        await replica.services.leader.release(datetime.now(UTC))
        if replica.services.approvals is not None:
            await replica.services.approvals.stop()
        await replica.server.stop()
        await replica.services.close()
        Sanic._app_registry.pop(replica.server.app.name, None)

    async def stop(self) -> None:
        for replica in self.replicas:
            try:
                await self.stop_replica(replica)
            except Exception:  # keep stopping the rest
                pass
        self.replicas.clear()
        if self.slack is not None:
            await self.slack.stop()
        if self.kube is not None and self._own_kube:
            await self.kube.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------ chat helpers
    @property
    def services(self) -> Services:
        return self.replicas[0].services

    @property
    def dispatcher(self) -> Dispatcher:
        return self.replicas[0].dispatcher

    async def command(self, user: str, text: str, *, channel: str = "C1", replica: int = 0) -> Any:
        """Send ``/hello …`` as ``user``; returns the emulator's record of the HTTP answer (the ack)."""
        text = text.strip()
        if text.startswith("/hello"):
            text = text[len("/hello"):].strip()
        return await self.slack.send_command(user=user, channel=channel, text=text,
                                             url=self.replicas[replica].url)

    async def click(self, user: str, message_ts: str, action_id: str, *, value: str | None = None,
                    channel: str = "C1", replica: int = 0) -> Any:
        return await self.slack.click(user=user, channel=channel, message_ts=message_ts, action_id=action_id,
                                      value=value, url=self.replicas[replica].url)

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every replica has finished the work it started."""
        for replica in self.replicas:
            await replica.dispatcher.drain(timeout=timeout)
            if replica.services.alerts is not None:
                await replica.services.alerts.drain(timeout=timeout)
        for replica in self.replicas:
            await replica.services.releases.settle(timeout=timeout)

    async def wait_message(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        return await self.slack.wait_for(predicate, timeout)
