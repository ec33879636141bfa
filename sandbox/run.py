"""``python -m bot sandbox``: the whole system on one machine, with no Slack workspace and no cluster.

Starts, on loopback:

- two environments, ``staging`` and ``production``: a Kubernetes API emulator each, with its
  controllers, seeded from ``manifests/`` (helloworld, namespace hello) and ``sandbox/greeter`` (the
  same service deployed again as greeter, namespace greeter); and the bot itself
  (:class:`sandbox.stack.Stack`) with a kubeconfig context per environment and a service catalogue
  (``HELLO_SERVICES``) listing both services in both, configured with a fixed team: dana (U1) deploys,
  avery (U2, group S1) approves, sam (U3) has no rights, in channel #ops (C1), with a channel per
  service (#helloworld C3, #greeter C4);
- in each environment, a real helloworld process per service and release track, following the
  Deployments (:mod:`sandbox.processes`), the real Prometheus scraping them when it is installed
  (:mod:`sandbox.prometheus`; one per environment, as each cluster has its own), and a small load
  generator (:mod:`sandbox.loadgen`) whose requests all go through the real HAProxy;
- one HAProxy (:mod:`sandbox.haproxy`, Debian's ``haproxy``; the sandbox does not start without it) with
  a frontend per service and environment and a server per track, whose weights a small controller
  (:mod:`sandbox.gateway`) sets through HAProxy's runtime API whenever the service's route changes (its
  Mappings, or its HTTPRoute's rule), as Emissary or a Gateway API implementation would;
- the Slack emulator and the console, a Slack-like web page over it (:mod:`sandbox.console.server`).

Both services run the helloworld image, so their series have the same names: the scrape targets
carry the ``namespace`` and ``app`` labels a cluster's Prometheus gives its pods (``hello`` /
``helloworld``, ``greeter`` / ``greeter``) and ``track``; each Prometheus has the external label
``cluster`` (the environment) on the alerts it sends.

It prints what started and where, and runs until Ctrl-C (SIGINT) or SIGTERM, then stops every part
and every process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.wiring import warm_up
from sandbox import prometheus as prom_module
from sandbox.alertmanager import AlertmanagerNotInstalled, AlertmanagerServer
from sandbox.console.server import ConsoleServer, is_loopback
from sandbox.daemon import free_port
from sandbox.gateway import ProxyRoutes, route_weights
from sandbox.haproxy import HAProxyNotInstalled, HAProxyServer
from sandbox.loadgen import LoadGenerator, rps_from_env
from sandbox.processes import Fleet
from sandbox.stack import ENVIRONMENTS, SERVICES, SandboxService, Stack, write_kubeconfig

log = logging.getLogger("sandbox")

SANDBOX_ENV = {
    "HELLO_DEPLOYERS": "U1",
    "HELLO_APPROVERS": "U2,S1",
    "HELLO_OPS_CHANNELS": "C1",
    "HELLO_LOG_LEVEL": "WARNING",
    "HELLO_ROLLOUT_STALL": "45",  # a demo should not wait five minutes to see a stuck rollout
    # canary analysis at the sandbox's pace: a check every 15 s, judged once 20 canary requests are in
    "HELLO_ANALYSIS_INTERVAL": "15s",
    "HELLO_ANALYSIS_MIN_REQUESTS": "20",
    "HELLO_BAKE_MINUTES": "2",  # a deploy watches the alerts for two minutes, not fifteen
}
SANDBOX_ALERT_FOR = "10s"  # the rules' `for` in the sandbox
# settings a sandbox user may change from the environment (the rest make the sandbox what it is)
PASSED_THROUGH = ("HELLO_ANALYSIS_", "HELLO_CANARY_")


def sandbox_env() -> dict[str, str]:
    """The bot's settings in the sandbox: :data:`SANDBOX_ENV`, plus the analysis and canary variables set."""
    return {**SANDBOX_ENV, **{k: v for k, v in os.environ.items() if k.startswith(PASSED_THROUGH)}}


def backend_name(environment: str, service: str) -> str:
    """The HAProxy frontend and backend of a service in an environment: ``staging-helloworld``."""
    return f"{environment}-{service}"


ROLES = {"U1": "deployer", "U2": "approver", "U3": "no rights"}
NO_PROMETHEUS = "http://127.0.0.1:9"
MANIFESTS_VARIABLE = "HELLO_SANDBOX_MANIFESTS"


@dataclass
class Part:
    name: str
    ok: bool
    url: str = ""
    detail: str = ""


@dataclass
class Environment:
    """One environment's processes: a Fleet per service, their Prometheus, their load."""

    name: str
    prometheus: prom_module.PrometheusServer | None = None
    fleets: dict[str, Fleet] = field(default_factory=dict)
    routes: dict[str, ProxyRoutes] = field(default_factory=dict)
    loads: list[LoadGenerator] = field(default_factory=list)

    def targets(self) -> list[tuple[str, dict[str, str]]]:
        return [target for fleet in self.fleets.values() for target in fleet.targets()]


class Sandbox:
    """All the sandbox's parts; ``await start()``, then ``await stop()`` (also after a failed start)."""

    def __init__(self, *, port: int = 3000, host: str = "127.0.0.1", rps: float | None = None,
                 use_prometheus: bool = True, scrape_interval: str = "1s", seed: Path | None = None,
                 environments: tuple[str, ...] = ENVIRONMENTS, services: tuple[SandboxService, ...] = SERVICES
                 ) -> None:
        """``seed``: the folder of manifests each cluster starts with (default: the project's ``manifests/``),
        beside the ``services`` it does not hold (greeter). The first environment is the bot's default.

        ``host`` must be a loopback address (ValueError otherwise): the console lets whoever reaches it
        act as anyone in the workspace, and the emulators take unauthenticated requests.
        """
        if not is_loopback(host):
            raise ValueError(f"the sandbox listens on a loopback address only (127.0.0.1, ::1 or localhost), "
                             f"not {host!r}")
        self.port = port
        self.seed = seed
        self.host = host
        self.rps = rps
        self.use_prometheus = use_prometheus
        self.scrape_interval = scrape_interval
        self.parts: list[Part] = []
        self.environments = [Environment(name) for name in environments]
        self.services = services
        self.alertmanager: AlertmanagerServer | None = None
        self.proxy: HAProxyServer | None = None
        self.alert_token = secrets.token_hex(16)
        self._rules_dir: tempfile.TemporaryDirectory[str] | None = None
        self.stack: Stack | None = None
        self.console: ConsoleServer | None = None
        self.admin_kubeconfig = ""

    # ---------------------------------------------------------------- start
    async def start(self) -> None:
        rps = rps_from_env() if self.rps is None else self.rps  # a bad value stops us before anything starts
        bot_port = free_port()
        self.proxy = HAProxyServer([backend_name(e.name, s.name) for e in self.environments for s in self.services],
                                   reserved=(self.port, bot_port))  # ports bound later, by the console and the bot
        await self.proxy.start()  # HAProxyNotInstalled: nothing else has started
        alertmanager_url = await self._start_alertmanager(f"http://{self.host}:{bot_port}/alertmanager")
        urls = [await self._start_prometheus(env, alertmanager_url) for env in self.environments]
        prometheus_urls = {env.name: url for env, url in zip(self.environments, urls, strict=True) if url}
        env = sandbox_env()
        if alertmanager_url:
            env.update(HELLO_ALERTMANAGER_URL=alertmanager_url, HELLO_ALERT_TOKEN=self.alert_token)
        self.stack = Stack(
            env=env,
            bot_port=bot_port,
            prometheus_url=urls[0] or NO_PROMETHEUS,
            # deadline_scale: the manifests' 120 s progress deadline passes in 30 s here
            kube_options={"tick": 0.1, "pod_ready_seconds": 1.0, "deadline_scale": 0.25},
            schedules=True,
            host=self.host,
            environments=[e.name for e in self.environments],
            services=self.services,
            prometheus_urls=prometheus_urls,
            **({"seed": self.seed} if self.seed is not None else {}),
        )
        await self.stack.start()
        slack, clusters = self.stack.slack, self.stack.clusters
        assert self.stack.workdir is not None
        self.admin_kubeconfig = str(write_kubeconfig(self.stack.workdir / "admin.kubeconfig", clusters,
                                                     namespace="hello"))
        for index, name in enumerate(clusters):
            detail = (f"{name}: kubeconfig {self.admin_kubeconfig} (bot: {self.stack.kubeconfig}, "
                      f"services {self.stack.catalogue_file})" if index == 0 else f"{name}: kubectl --context {name}")
            self.parts.append(Part("Kubernetes API", True, clusters[name].url, detail))
        self.parts.append(Part("Slack API", True, slack.api_url, "workspace state at /_emulator/state"))
        for environment in self.environments:
            kube = clusters[environment.name]
            for service in self.services:
                environment.fleets[service.name] = Fleet(
                    kube, namespace=service.namespace, container=service.container,
                    deployments={"stable": service.name, "canary": f"{service.name}-canary"},
                    labels={"namespace": service.namespace, "app": service.name},
                    on_change=lambda environment=environment: self._targets_changed(environment))
        fleets = [fleet for environment in self.environments for fleet in environment.fleets.values()]
        bot_detail, *_ = await asyncio.gather(self._warm_up(), *(fleet.start() for fleet in fleets))
        self.parts.append(Part("bot", True, self.stack.replicas[0].url, bot_detail))
        for environment in self.environments:
            self._targets_changed(environment)
        for service in self.services:
            running = [f"{environment.name} {track} {version}"
                       for environment in self.environments
                       for track, version in sorted(environment.fleets[service.name].versions().items())]
            self.parts.append(Part(service.name, bool(running), "", ", ".join(running) if running else
                                   "no Deployment asks for a process yet; processes start when one does"))

        await self._start_routes(rps)

        links = [{"label": f"Prometheus {e.name}", "url": e.prometheus.url if e.prometheus else "",
                  "note": "not installed"} for e in self.environments]
        links.append({"label": "HAProxy stats", "url": self.proxy.stats_url})
        links += [{"label": f"Kubernetes {name}", "url": f"{kube.url}/apis/apps/v1/deployments"}
                  for name, kube in clusters.items()]
        links.append({"label": "Slack emulator state", "url": f"{slack.base_url}/_emulator/state"})
        self.console = ConsoleServer(slack, roles=ROLES, channel="C1", links=links, host=self.host, port=self.port)
        await self.console.start()
        self.parts.insert(0, Part("console", True, self.console.url, "open it in a browser"))

    async def _start_routes(self, rps: float) -> None:
        """HAProxy's backends following each service's route in each environment, and the load through them."""
        assert self.stack is not None and self.proxy is not None
        frontends = []
        for environment in self.environments:
            kube = self.stack.clusters[environment.name]
            for service in self.services:
                backend = backend_name(environment.name, service.name)
                routes = ProxyRoutes(kube, self.proxy, backend, environment.fleets[service.name].endpoints,
                                     route_weights(kube, service.namespace, service.name, service.traffic))
                environment.routes[service.name] = await routes.start()
                load = LoadGenerator(self.proxy.frontend_url(backend), rps=rps)
                environment.loads.append(load)
                await load.start()
                frontends.append(f"{environment.name} {service.name} {self.proxy.frontend_url(backend)}")
        routers = ", ".join(f"{s.name} by its {'HTTPRoute' if s.traffic else 'Mappings'}" for s in self.services)
        self.parts.append(Part("HAProxy", True, self.proxy.stats_url,
                               f"weights follow the routes ({routers}); frontends: " + ", ".join(frontends)))
        self.parts.append(Part("load", rps > 0, "", f"{rps:g} requests/s to each service in each environment, "
                               "through HAProxy" if rps > 0 else "off (HELLO_SANDBOX_RPS=0)"))

    async def _warm_up(self) -> str:
        """Have the bot read the release once, so its client is loaded before the first command."""
        assert self.stack is not None
        return f"Bolt app, as in production; {await warm_up(self.stack.services)}"

    async def _start_alertmanager(self, webhook_url: str) -> str:
        """The real Alertmanager, posting to the bot's ``/alertmanager``; '' when it cannot run here."""
        if not self.use_prometheus:
            return ""
        server = AlertmanagerServer(webhook_url=webhook_url, token=self.alert_token)
        try:
            await server.start()
        except AlertmanagerNotInstalled as exc:
            self.parts.append(Part("Alertmanager", False, "", f"{exc}; the sandbox runs without alerts"))
            return ""
        except Exception as exc:
            self.parts.append(Part("Alertmanager", False, "", f"did not start ({str(exc).splitlines()[0]})"))
            await asyncio.to_thread(server.stop)
            return ""
        self.alertmanager = server
        self.parts.append(Part("Alertmanager", True, server.url, "the service's alerts, posted to the bot"))
        return server.url

    async def _start_prometheus(self, environment: Environment, alertmanager_url: str = "") -> str:
        """The environment's Prometheus (its URL), or '' with a part saying why there is none."""
        if not self.use_prometheus:
            self._add(Part("Prometheus", False, "", "off"))
            return ""
        rules: list[Path] = []
        if alertmanager_url:
            if self._rules_dir is None:
                self._rules_dir = tempfile.TemporaryDirectory(prefix="hello-sandbox-rules-")
            # the service's own rules, their `for` cut so an alert fires within seconds here
            rules.append(prom_module.shortened_rules(
                Path(self._rules_dir.name) / f"helloworld-alerts-{environment.name}.yaml", max_for=SANDBOX_ALERT_FOR))
        server = prom_module.PrometheusServer(scrape_interval=self.scrape_interval, rule_files=rules,
                                              alertmanagers=[alertmanager_url] if alertmanager_url else [],
                                              external_labels={"cluster": environment.name})
        try:
            await server.start()
        except prom_module.PrometheusNotInstalled:
            self._add(Part("Prometheus", False, "", f"not installed: {prom_module.INSTALL_HINT}; "
                           "the sandbox runs without charts"))
            return ""
        except prom_module.PrometheusStartError as exc:
            first = str(exc).splitlines()[0]
            self.parts.append(Part("Prometheus", False, "", f"{environment.name}: did not start ({first}); "
                                   "running without charts"))
            await asyncio.to_thread(server.stop)
            return ""
        environment.prometheus = server
        names = " and ".join(service.name for service in self.services)
        self.parts.append(Part("Prometheus", True, server.url,
                               f"{environment.name}: scraping {names} every {self.scrape_interval}"))
        return server.url

    def _add(self, part: Part) -> None:
        """Add a part to the summary once (a Prometheus missing is said once, not per environment)."""
        if part not in self.parts:
            self.parts.append(part)

    def _targets_changed(self, environment: Environment) -> None:
        for routes in environment.routes.values():
            routes.nudge()  # a process started or stopped: HAProxy's server moves to it
        if environment.prometheus is not None:
            environment.prometheus.set_targets(environment.targets())

    # ---------------------------------------------------------------- stop
    async def stop(self) -> None:
        """Stop every part, newest first; each one is stopped even if another fails."""
        steps: list[tuple[str, Any]] = [("console", self.console.stop if self.console else None)]
        steps += [("load", load.stop) for env in self.environments for load in env.loads]
        steps += [("proxy routes", routes.stop) for env in self.environments for routes in env.routes.values()]
        steps.append(("bot and emulators", self.stack.stop if self.stack else None))
        steps += [(name, fleet.stop) for env in self.environments for name, fleet in env.fleets.items()]
        for name, step in steps:
            if step is None:
                continue
            try:
                await step()
            except Exception:
                log.exception("cannot stop the %s cleanly", name)
        for env in self.environments:
            if env.prometheus is not None:
                await asyncio.to_thread(env.prometheus.stop)
        if self.alertmanager is not None:
            await asyncio.to_thread(self.alertmanager.stop)
        if self.proxy is not None:
            await asyncio.to_thread(self.proxy.stop)
        if self._rules_dir is not None:
            self._rules_dir.cleanup()
            self._rules_dir = None
        for env in self.environments:
            env.prometheus, env.fleets, env.routes, env.loads = None, {}, {}, []
        self.console = self.stack = self.alertmanager = self.proxy = None

    # ---------------------------------------------------------------- report
    def summary(self) -> str:
        lines = ["hello-chatops sandbox", ""]
        width = max(len(p.name) for p in self.parts)
        for part in self.parts:
            mark = "ok " if part.ok else "-- "
            where = f"{part.url}  " if part.url else ""
            lines.append(f"  {mark}{part.name:<{width}}  {where}{part.detail}".rstrip())
        lines += [
            "",
            "People: dana (U1) deploys, avery (U2, group S1) approves, sam (U3) has no rights.",
            "Channels: #ops (C1), " + ", ".join(f"#{s.name} ({s.channel})" for s in self.services) + ". "
            "Environments: " + ", ".join(e.name for e in self.environments) + " (the first is the default; "
            f"kubectl --kubeconfig {self.admin_kubeconfig} --context <environment> get deployments -A).",
            f"Open {self.console.url if self.console else 'the console'} and type `/hello status`. "
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(logging.INFO)
    logging.getLogger("sandbox.processes").setLevel(logging.INFO)


async def run(port: int = 3000, host: str = "127.0.0.1", out: TextIO | None = None, seed: Path | None = None
              ) -> int:
    """Start the sandbox, print where everything is, and run until SIGINT or SIGTERM."""
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    sandbox: Sandbox | None = None
    try:
        sandbox = Sandbox(port=port, host=host, seed=seed)
        start = asyncio.ensure_future(sandbox.start())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():  # stopped while starting
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
            return 130
        stopper.cancel()
        start.result()
        print(sandbox.summary(), file=out)
        print(f"\nready in {time.monotonic() - started:.1f}s", file=out, flush=True)
        await stop.wait()
        print("\nstopping…", file=out, flush=True)
        return 0
    except OSError as exc:
        print(f"sandbox: cannot start: {exc} (is port {port} in use? try --port)", file=sys.stderr)
        return 1
    except (ValueError, HAProxyNotInstalled) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    finally:
        if sandbox is not None:
            await sandbox.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        print("sandbox stopped", file=out, flush=True)


def main(port: int = 3000, host: str = "127.0.0.1") -> int:
    """Entry point of ``python -m bot sandbox [--port N]``; returns the exit code.

    ``HELLO_SANDBOX_MANIFESTS`` names another folder of manifests to seed the cluster from (default: the
    project's ``manifests/``); ``HELLO_SANDBOX_RPS`` sets the load (requests per second, default 5).
    """
    _setup_logging()
    folder = os.environ.get(MANIFESTS_VARIABLE, "").strip()
    seed = Path(folder).expanduser() if folder else None
    if seed is not None and not seed.exists():
        print(f"sandbox: {MANIFESTS_VARIABLE}={folder} does not exist", file=sys.stderr)
        return 2
    return asyncio.run(run(port=port, host=host, seed=seed))
