"""Assemble the bot from its configuration: clients, services, the Bolt app."""

from __future__ import annotations

import asyncio
import importlib

from bot.chat.contract import Registry
from bot.chat.messenger import Messenger, make_client
from bot.cluster.kube import Cluster
from bot.cluster.leader import LeaderElector, default_identity
from bot.core.catalogue import Catalogue
from bot.core.catalogue_file import load as load_catalogue
from bot.core.config import Config
from bot.core.errors import ClusterError
from bot.core.policy import GroupResolver, Policy
from bot.core.ports import Metrics
from bot.core.services import Services, Shared
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
                   messenger: Messenger | None = None, prometheus: Metrics | None = None,
                   catalogue: Catalogue | None = None, engine_interval: float = 1.0) -> Services:
    """Build every part of the bot once, each given what it uses, and assemble them.

    The parts are built lowest first: each receives the basics it uses (the configuration, the messenger, the
    policy, the catalogue's targets, a way to reach the cluster; the :class:`Shared` bundle of them all only for
    the parts that use most of it, which say why) and the parts it calls, typed by their interfaces
    (:mod:`bot.core.ports`). Approvals is called by the release engine and by Home, and
    calls them back (a decided request wakes the engine, a change republishes Home), and a follow-up button
    runs a command that takes the assembled :class:`Services`: Approvals is built first and is handed
    functions that return those, looked up only when a request needs them, so nothing is filled in later.
    ``prometheus``, ``catalogue``: instead of the ones the configuration names (tests).
    """
    messenger = messenger or Messenger(make_client(config))
    policy = Policy(config, GroupResolver(messenger.group_members, ttl=config.group_cache_seconds))
    catalogue = catalogue or load_catalogue(config)
    shared = Shared(
        config=config,
        messenger=messenger,
        policy=policy,
        registry=registry or default_registry(),
        connect=Cluster.connect,
        cluster_override=cluster,
        prometheus=prometheus or prometheus_for(config),
        catalogue=catalogue,
        make_prometheus=prometheus_for,
    )
    leader = LeaderElector(shared.cluster, name=config.lease_name, identity=config.identity or default_identity(),
                           lease_seconds=config.lease_seconds)
    targets = shared.targets  # the catalogue's, resolved once per service and environment
    audit = Audit(config, messenger, targets)
    holds = Holds(config, catalogue, shared.cluster)
    alerts = AlertCards(shared, audit)
    schedules = Scheduler(shared, audit, alerts, leader)
    approvals = Approvals(shared, audit=audit, holds=holds, alerts=alerts, releases=lambda: releases,
                          home=lambda: home, commands=lambda: services)
    releases = Engine(shared, leader, approvals=approvals, alerts=alerts, interval=engine_interval)
    home = Home(config, messenger, policy, targets, approvals=approvals, releases=releases, audit=audit,
                alerts=alerts, schedules=schedules)
    services = Services(shared=shared, audit=audit, holds=holds, alerts=alerts, leader=leader, schedules=schedules,
                        approvals=approvals, releases=releases, home=home)
    return services


def prometheus_for(config: Config) -> Prometheus:
    return Prometheus(config.prometheus_url, timeout=config.prometheus_timeout_seconds, names=config.metrics)


async def follow(services: Services) -> str:
    """Start the watch caches of the bot's own service and of every service and environment of the catalogue
    (only their namespaces are watched), and of the bot's own records, alert groups and schedules: ``/hello
    status``, Home and the overview read them once listed.

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
    await services.alerts.store.follow()  # the alert groups that status and Home show
    await services.schedules.follow()  # the schedules Home lists
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
