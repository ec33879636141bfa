"""The bot wired to the emulated Kubernetes and Slack, all in the current event loop.

Used by the sandbox and by the end-to-end tests::

    async with Stack(env={"HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2"}) as stack:
        await stack.command("U1", "/hello status")
        message = await stack.wait_message(lambda m: "helloworld" in m.text)

Each bot replica is the real thing: configuration loaded from an environment mapping, the Bolt app
on its Sanic server on a free port, the official kubernetes client reading a kubeconfig that points
at the emulator, the Slack Web API client pointing at the Slack emulator.

With ``environments=("staging", "production")`` it runs one emulated cluster per environment instead
(:attr:`Stack.clusters`), each seeded with ``seed`` and the :data:`SERVICES` the project's manifests do
not hold (greeter, ``sandbox/greeter``, routed by an HTTPRoute where helloworld has Mappings); the bot
gets a kubeconfig with one context per environment
and a service catalogue (``HELLO_SERVICES``) listing every service in every environment, each with
its own Slack channel (created in the Slack emulator beside #ops and #general).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sanic import Sanic

from bot.chat.app import Dispatcher, build_app
from bot.chat.contract import Registry
from bot.chat.server import RunningServer, build_server, start_in_loop
from bot.core import config as config_module
from bot.core.catalogue import Catalogue
from bot.core.config import Traffic
from bot.core.services import Services
from bot.wiring import build_services
from commands import default_registry
from sandbox.kube import KubeEmulator
from sandbox.slack import SlackEmulator
from sandbox.slack.state import DEFAULT_CHANNELS

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
ROLE = MANIFESTS / "bot" / "role.yaml"
SIGNING_SECRET = "sandbox-signing-secret"
BOT_TOKEN = "xoxb-sandbox-bot-token"
_names = itertools.count(1)
ENVIRONMENTS = ("staging", "production")


@dataclass(frozen=True)
class SandboxService:
    """A service of the multi-cluster stack: seeded into every cluster, listed in the catalogue."""

    name: str  # its Deployments and Services are <name> and <name>-canary, its Certificate <name>-tls
    namespace: str
    channel: str  # the Slack channel id it belongs to; the channel is called #<name>
    seed: Path | None  # manifests to add to the Stack's seed (None: the seed holds it already)
    traffic: Traffic | None = None  # its HTTPRoute's rule (the catalogue's ``traffic``); None: Mappings <name>(-canary)
    load_rps: int = 0  # the catalogue's ``analysis: {load: {rps: N}}`` (0: none, the variable's value)

    @property
    def container(self) -> str:
        return self.name

    def queries(self) -> dict[str, str]:
        """The canary judge's PromQL, narrowed to this service's namespace (both run the helloworld image,
        so their series differ by the ``namespace`` and ``app`` labels, as a cluster's scrape gives them)."""
        where = f'namespace="{self.namespace}", route=~"/v1/hello|/v2/hello"'
        buckets = f"increase(helloworld_request_duration_seconds_bucket{{{where}}}[$window])"
        return {
            "requests": f"sum by (version) (increase(helloworld_requests_total{{{where}}}[$window]))",
            "errors": f'sum by (version) (increase(helloworld_requests_total{{{where}, status=~"5.."}}[$window]))',
            "p50": f"histogram_quantile(0.5, sum by (le, version) ({buckets}))",
            "p99": f"histogram_quantile(0.99, sum by (le, version) ({buckets}))",
        }


SERVICES = (
    SandboxService("helloworld", "hello", "C3", None),
    # routed by an HTTPRoute (sandbox/greeter/httproute.yaml), so the sandbox runs both routers side by side
    SandboxService("greeter", "greeter", "C4", ROOT / "sandbox" / "greeter",
                   Traffic(router="gateway-api", route="greeter", rule="split", stable_service="greeter",
                           canary_service="greeter-canary"),
                   # load during analysis: a `hey` Job per track at 10 req/s while each step is judged
                   load_rps=10),
)


def seed_split(kube: KubeEmulator, namespace: str = "hello", version: str = "v2") -> None:
    """helloworld's manifests, its HTTPRoute beside its Mappings, and a canary of ``version`` with one
    replica: something for either router to split (the proxy bench and its test start from this)."""
    kube.seed(MANIFESTS)
    for doc in yaml.safe_load_all((MANIFESTS / "gateway-api" / "httproute.yaml").read_text()):
        kube.apply(doc)
    canary = kube.get("apps", "v1", "deployments", namespace, "helloworld-canary")
    canary["spec"]["replicas"] = 1
    canary["spec"]["template"]["spec"]["containers"][0]["image"] = f"helloworld:{version}"
    kube.apply(canary)


def write_kubeconfig(path: Path, clusters: Mapping[str, KubeEmulator], *, token: str | None = None,
                     namespace: str = "default", current: str | None = None) -> Path:
    """A kubeconfig with one context per emulated cluster, named after it (``kubectl --context staging``);
    the token is each emulator's admin token unless given. ``current``: the first cluster by default."""
    names = list(clusters)
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": current or names[0], "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": kube.url, "insecure-skip-tls-verify": True}}
                     for n, kube in clusters.items()],
        "users": [{"name": n, "user": {"token": token or kube.admin_token}} for n, kube in clusters.items()],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n, "namespace": namespace}} for n in names],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


SOAK_MINUTES = 3  # a version may be promoted from staging to production after three minutes (sixty by default)


def catalogue(environments: Sequence[str], services: Sequence[SandboxService] = SERVICES,
              prometheus_urls: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The service catalogue (``HELLO_SERVICES``) of the multi-cluster stack: every service in every
    environment, the environment's context named after it, its Prometheus when ``prometheus_urls`` has one."""
    urls = prometheus_urls or {}
    return {"services": [
        {
            "name": service.name,
            "environments": [{"name": env, "context": env, "namespace": service.namespace,
                              **({"prometheus_url": urls[env]} if urls.get(env) else {})}
                             for env in environments],
            "container": service.container,
            "image": {"repository": service.name},
            "metrics": {"queries": service.queries()},
            "channels": [service.channel],
            "soak_minutes": SOAK_MINUTES,
            **({"traffic": {"router": service.traffic.router, "route": service.traffic.route,
                            "rule": service.traffic.rule}} if service.traffic else {}),
            **({"analysis": {"load": {"rps": service.load_rps}}} if service.load_rps else {}),
        }
        for service in services
    ]}


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
        environments: Sequence[str] = (),
        services: Sequence[SandboxService] = SERVICES,
        prometheus_urls: Mapping[str, str] | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        """``environments``: one emulated cluster each (see the module's docstring); the first is the
        kubeconfig's current context, so :attr:`kube` and the single-service variables act there.
        ``prometheus_urls``: each environment's Prometheus, written into the catalogue. ``catalogue``: every
        replica's, instead of the one the variables describe."""
        self.environments = tuple(environments)
        self.sandbox_services = tuple(services)
        self.prometheus_urls = dict(prometheus_urls or {})
        self.clusters: dict[str, KubeEmulator] = {}
        self._started: list[KubeEmulator] = []
        self.catalogue_file = Path()
        if self.environments and kube is not None:
            raise ValueError("a Stack with environments starts its own clusters: give no kube")
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
        self.catalogue = catalogue
        self.run_engine = engine
        self.bot_port = bot_port  # the first replica's port (0: any free one)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.kube: KubeEmulator = kube  # type: ignore[assignment]
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
        if self.environments:
            env.update(HELLO_SERVICES=str(self.catalogue_file), HELLO_DEFAULT_ENVIRONMENT=self.environments[0])
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
        token = self.kube_options.get("rbac_token", "bot-token")
        slack_options = dict(self.slack_options)
        if self.environments:
            for name in self.environments:
                self.clusters[name] = await self._start_cluster(
                    [self.seed_path, *(s.seed for s in self.sandbox_services)])
            self.kube = self.clusters[self.environments[0]]
            self.kubeconfig = write_kubeconfig(self.workdir / "kubeconfig", self.clusters, token=token)
            self.catalogue_file = self.workdir / "services.yaml"
            self.catalogue_file.write_text(yaml.safe_dump(
                catalogue(self.environments, self.sandbox_services, self.prometheus_urls), sort_keys=False,
                width=1000))
            slack_options.setdefault("channels", {**DEFAULT_CHANNELS,
                                                  **{s.channel: s.name for s in self.sandbox_services}})
        else:
            if self.kube is None:
                self.kube = await self._start_cluster([self.seed_path])
            self.kubeconfig = Path(self.kube.write_kubeconfig(self.workdir / "kubeconfig", token=token))
        self.slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, **slack_options)
        await self.slack.start()
        for index in range(self.replica_count):
            self.replicas.append(await self.start_replica(index))
        self.slack.request_url = self.replicas[0].url

    async def _start_cluster(self, seeds: Sequence[Path | None]) -> KubeEmulator:
        options = {"tick": 0.05, "pod_ready_seconds": 0.2, **self.kube_options}
        if self.rbac:
            options.setdefault("rbac_files", (ROLE,))
        kube = KubeEmulator(**options)
        self._started.append(kube)  # stopped by stop() even if seeding fails
        await kube.start(host=self.host, port=0)
        for seed in seeds:
            if seed is not None:
                kube.seed(seed)
        return kube

    async def start_replica(self, index: int, extra_env: Mapping[str, str] | None = None) -> Replica:
        env = self.env()
        env["HELLO_IDENTITY"] = f"bot-{index}"
        env.update(extra_env or {})
        config = config_module.load(env)
        services = build_services(config, registry=self.registry_factory(), catalogue=self.catalogue,
                                  engine_interval=self.engine_interval)
        bolt = build_app(services)
        dispatcher: Dispatcher = bolt.dispatcher  # type: ignore[attr-defined]
        app = build_server(bolt, name=f"hello_chatops_{next(_names)}")
        server = await start_in_loop(app, self.host, self.bot_port if index == 0 else 0)
        if self.run_engine:
            await services.releases.start()
        if self.run_schedules:
            await services.approvals.start()
            await services.schedules.start()
        return Replica(index=index, services=services, dispatcher=dispatcher, server=server)

    async def stop_replica(self, replica: Replica) -> None:
        await replica.dispatcher.drain(timeout=10)
        await replica.services.alerts.drain(timeout=10)
        await replica.services.releases.stop()
        await replica.services.schedules.stop()
        await replica.services.leader.release(datetime.now(UTC))
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
        for kube in self._started:
            await kube.stop()
        self._started.clear()
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
