"""Assemble the bot from its configuration: clients, services, the Bolt app."""

from __future__ import annotations

import asyncio
import importlib

from bot.chat.contract import Registry
from bot.chat.messenger import Messenger, make_client
from bot.cluster.kube import Cluster
from bot.cluster.leader import LeaderElector, default_identity
from bot.core.catalogue_file import load as load_catalogue
from bot.core.config import Config
from bot.core.errors import ClusterError
from bot.core.policy import GroupResolver, Policy
from bot.core.services import Services
from bot.observe.alerts import AlertCards
from bot.observe.prom import Prometheus
from bot.observe.schedule import Scheduler
from bot.release.approvals import Approvals
from bot.release.audit import Audit
from bot.release.engine import Engine
from bot.release.holds import Holds
from bot.release.home import Home
from commands import default_registry


def build_services(config: Config, *, registry: Registry | None = None, cluster: Cluster | None = None,
                   messenger: Messenger | None = None) -> Services:
    messenger = messenger or Messenger(make_client(config))
    policy = Policy(config, GroupResolver(messenger.group_members, ttl=config.group_cache_seconds))
    services = Services(
        config=config,
        messenger=messenger,
        policy=policy,
        registry=registry or default_registry(),
        connect=Cluster.connect,
        cluster_override=cluster,
        catalogue=load_catalogue(config),
        make_prometheus=prometheus_for,
    )
    services.prometheus = prometheus_for(config)
    services.audit = Audit(services)
    services.approvals = Approvals(services)
    services.alerts = AlertCards(services)
    services.leader = LeaderElector(services.cluster, name=config.lease_name,
                                    identity=config.identity or default_identity(), lease_seconds=config.lease_seconds)
    services.schedules = Scheduler(services)
    services.releases = Engine(services, services.leader)
    services.home = Home(services)
    services.holds = Holds(services)
    return services


def prometheus_for(config: Config) -> Prometheus:
    return Prometheus(config.prometheus_url, timeout=config.prometheus_timeout_seconds, names=config.metrics)


async def follow(services: Services) -> str:
    """Start the watch caches of the bot's own service and of every service and environment of the catalogue
    (only their namespaces are watched): ``/hello status``, Home and the overview read them once listed.

    Returns a one-line summary naming what could not be reached; never raises.
    """
    namespaces: set[tuple[str, str]] = set()
    failures: list[str] = []
    for target in [services.targets.default, *services.targets.every()]:
        try:
            cluster = await target.cluster()
        except ClusterError as exc:
            failures.append(f"{target.title}: {exc}")
            continue
        cluster.follow()
        namespaces.add((target.config.kube_context, cluster.namespace))
    await services.releases.follow()  # the bot's own records, for the running releases that status and Home show
    text = f"watching {len(namespaces)} namespace{'s' * (len(namespaces) != 1)}"
    return text + (f"; cannot watch {', '.join(dict.fromkeys(failures))}" if failures else "")


async def warm_up(services: Services) -> str:
    """Start the watch caches (:func:`follow`), load the Kubernetes client's models and the chart library before
    the first command needs them.

    Both take seconds the first time in a process; done in the background after start, the first
    ``/hello status`` answers as fast as the next ones. Returns a one-line summary; never raises.
    """
    watching = await follow(services)
    async def read() -> str:
        cluster = await services.cluster()
        state = await cluster.deployed()
        return state.stable.version if state.stable else "?"

    try:
        version, _ = await asyncio.gather(read(), asyncio.to_thread(importlib.import_module, "bot.observe.charts"))
    except Exception as exc:
        return f"cannot read the release yet: {exc}; {watching}"
    return f"sees {services.config.stable_deployment} {version} in namespace {services.config.namespace}; {watching}"
