"""The service catalogue: which services the bot releases, in which environments (clusters, namespaces).

``HELLO_SERVICES`` names a YAML file listing the services (format in docs/operator-guide.md, "Several services");
without it the single-service variables (``HELLO_NAMESPACE``, ``HELLO_STABLE_DEPLOYMENT``, …) describe
a catalogue of one service in one environment, so a configuration from before the catalogue keeps
working unchanged. A malformed file raises :class:`ConfigError` naming the file, the service and the
field. :meth:`Service.config_for` turns a service in one environment into a :class:`Config`, so code
written for one service runs against any service by being handed that Config.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.config import DEFAULT_VERSION_PATTERN, Config, MetricNames, Traffic
from bot.core.cron import latest_slot, next_slot
from bot.core.errors import UsageError
from bot.core.text import foreign

QUERY_KEYS = ("requests", "errors", "p50", "p99")
DEFAULT_SOAK_MINUTES = 60.0
ALL = "all"  # not a service's name: `/hello freeze all` means every service


class LockMode(enum.StrEnum):
    """What a change request does while another release of the same service and environment runs."""

    QUEUE = "queue"  # wait its turn
    REFUSE = "refuse"  # refused, naming who holds the lock


@dataclass(frozen=True, kw_only=True)
class Environment:
    """Where a service runs: a kubeconfig context (or the pod's own cluster) and a namespace.

    ``context`` empty and ``in_cluster`` false: the kubeconfig's current context (in-cluster without
    a kubeconfig), as ``HELLO_KUBE_CONTEXT`` left empty. ``deployers`` / ``approvers`` ``None``: the
    service's, else ``HELLO_DEPLOYERS`` / ``HELLO_APPROVERS``. ``prometheus_url`` empty: ``PROMETHEUS_URL``.
    """

    name: str
    namespace: str
    context: str = ""
    in_cluster: bool = False
    prometheus_url: str = ""
    deployers: tuple[str, ...] | None = None
    approvers: tuple[str, ...] | None = None
    approvals: int = 1  # distinct approvers a change here needs (none of them the requester)


@dataclass(frozen=True, kw_only=True)
class Queries:
    """A service's own PromQL for the canary judge: counts over a window, ``sum by`` the version label.

    Each template holds ``$window`` (a duration like ``300s``); see :meth:`expressions`.
    """

    requests: str
    errors: str
    p50: str
    p99: str

    def expressions(self, seconds: float) -> dict[str, str]:
        window = f"{max(1, int(seconds))}s"
        return {key: string.Template(getattr(self, key)).substitute(window=window) for key in QUERY_KEYS}


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """A service's canary-analysis, bake and load-test settings; ``None`` keeps the variable's value.

    Field names are :class:`Config`'s, so :meth:`Service.config_for` applies them as they are.
    """

    canary_analysis: bool | None = None
    canary_steps: tuple[int, ...] | None = None
    canary_gates: tuple[int, ...] | None = None
    analysis_interval_seconds: float | None = None
    analysis_min_requests: int | None = None
    analysis_max_latency_ratio: float | None = None
    analysis_min_success: float | None = None
    analysis_max_inconclusive: int | None = None
    analysis_max_wait_seconds: float | None = None
    analysis_confidence: float | None = None
    analysis_mode: str | None = None
    analysis_p99_advisory: bool | None = None
    analysis_load_rps: int | str | None = None
    bake_minutes: float | None = None
    auto_rollback: bool | None = None
    loadtest_max_rps: int | None = None
    loadtest_max_seconds: int | None = None
    loadtest_path: str | None = None

    def changes(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class FreezeWindow:
    """A recurring freeze: changes need break-glass from each time ``cron`` fires, for ``duration``.

    ``cron`` (five fields) is read in ``timezone`` (empty: ``HELLO_TIMEZONE``); ``duration`` is elapsed
    time, so a window that spans a daylight-saving change still lasts exactly that long.
    ``environments`` empty: every environment of the service.
    """

    cron: str
    duration: timedelta
    timezone: str = ""
    reason: str = "freeze window"
    environments: tuple[str, ...] = ()

    def covers(self, environment: str) -> bool:
        return not self.environments or environment in self.environments

    def active(self, now: datetime, default_timezone: str = "UTC") -> tuple[datetime, datetime] | None:
        """``(start, end)`` in UTC of the window ``now`` falls in (start <= now < end), else ``None``."""
        start = latest_slot(self.cron, now, ZoneInfo(self.timezone or default_timezone))
        start = start.astimezone(UTC)  # aware arithmetic in a zone adds wall-clock time: add elapsed time
        end = start + self.duration
        return (start, end) if end > now else None

    def next_start(self, now: datetime, default_timezone: str = "UTC") -> datetime:
        """The first time strictly after ``now`` the window opens."""
        return next_slot(self.cron, now, ZoneInfo(self.timezone or default_timezone))


@dataclass(frozen=True, kw_only=True)
class Service:
    """One released service: its objects, where it runs, who may change it, and how it is judged."""

    name: str
    environments: tuple[Environment, ...]
    stable_deployment: str
    canary_deployment: str
    stable_mapping: str
    canary_mapping: str
    container: str
    traffic: Traffic = field(default_factory=Traffic)  # its router (Emissary's Mappings unless it says)
    certificate: str
    image_repository: str
    version_pattern: str = DEFAULT_VERSION_PATTERN
    metrics_preset: str | None = None  # None: HELLO_METRICS_PRESET
    queries: Queries | None = None  # None: the preset's expressions
    channels: tuple[str, ...] = ()  # where it belongs; empty: named explicitly anywhere
    deployers: tuple[str, ...] | None = None  # None: HELLO_DEPLOYERS
    approvers: tuple[str, ...] | None = None  # None: HELLO_APPROVERS
    overrides: Overrides = field(default_factory=Overrides)
    soak_minutes: float = DEFAULT_SOAK_MINUTES
    lock: LockMode = LockMode.QUEUE
    freezes: tuple[FreezeWindow, ...] = ()  # recurring freeze windows (bot.release.holds)

    @property
    def environment_names(self) -> tuple[str, ...]:
        return tuple(env.name for env in self.environments)

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise UsageError(f"{self.name} has no environment {foreign(name, 40)}; "
                         f"its environments: {', '.join(self.environment_names)}")

    def deployers_for(self, env: Environment) -> tuple[str, ...] | None:
        return env.deployers if env.deployers is not None else self.deployers

    def approvers_for(self, env: Environment) -> tuple[str, ...] | None:
        return env.approvers if env.approvers is not None else self.approvers

    def config_for(self, env: Environment | str, base: Config, *, by_namespace: bool = False) -> Config:
        """``base`` with this service's names, the environment's cluster and namespace, and the overrides.

        ``by_namespace``: its helloworld-preset series are told from other services' by the ``namespace``
        label (as Prometheus's Kubernetes discovery sets it), for a catalogue of several services.
        """
        if isinstance(env, str):
            env = self.environment(env)
        elif env not in self.environments:
            raise ValueError(f"environment {env.name!r} is not one of {self.name}'s")
        changes: dict[str, Any] = {
            "namespace": env.namespace,
            "kube_context": env.context,
            "kube_in_cluster": env.in_cluster,
            "stable_deployment": self.stable_deployment,
            "canary_deployment": self.canary_deployment,
            "stable_mapping": self.stable_mapping,
            "canary_mapping": self.canary_mapping,
            "traffic": self.traffic,
            "container": self.container,
            "certificate": self.certificate,
            "image_repository": self.image_repository,
            "version_pattern": self.version_pattern,
            **self.overrides.changes(),
        }
        metrics = base.metrics
        if self.metrics_preset is not None and self.metrics_preset != base.metrics.preset:
            metrics = MetricNames.envoy() if self.metrics_preset == "envoy" else MetricNames()
        if self.queries is not None:
            metrics = replace(metrics, window_queries=tuple((k, getattr(self.queries, k)) for k in QUERY_KEYS))
        if metrics.preset == "helloworld" and by_namespace:
            # one Prometheus may scrape several services: this service's series are those of its namespace
            metrics = replace(metrics, route_filter=f'{metrics.route_filter},namespace="{env.namespace}"')
        if metrics != base.metrics:
            changes["metrics"] = metrics
        if self.channels:
            changes["ops_channels"] = self.channels
        if env.prometheus_url:
            changes["prometheus_url"] = env.prometheus_url
        deployers, approvers = self.deployers_for(env), self.approvers_for(env)
        if deployers is not None:
            changes["deployers"] = deployers
        if approvers is not None:
            changes["approvers"] = approvers
        return replace(base, **changes)


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """Every service the bot releases. ``source`` is the file it came from ("" for the variables)."""

    services: tuple[Service, ...]
    default_environment: str = "default"
    source: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    @property
    def first(self) -> Service:
        """The service the commands act on until they take a service name."""
        return self.services[0]

    def pairs(self) -> Iterator[tuple[Service, Environment]]:
        """Every service in every environment, in catalogue order."""
        for service in self.services:
            for env in service.environments:
                yield service, env

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise UsageError(f"there is no service {foreign(name, 40)}; services: {', '.join(self.names)}")

    def in_channel(self, channel: str) -> tuple[Service, ...]:
        return tuple(service for service in self.services if channel in service.channels)

    def resolve(self, service: str | None, environment: str | None, channel: str) -> tuple[Service, Environment]:
        """The service and environment a command means.

        The service may be left out when the catalogue has one service or the channel belongs to
        exactly one; the environment defaults to ``HELLO_DEFAULT_ENVIRONMENT`` when the service runs
        there, else the service's first. Unknown or ambiguous names raise :class:`UsageError` listing
        what exists.
        """
        if service:
            chosen = self.service(service)
        elif len(self.services) == 1:
            chosen = self.services[0]
        else:
            here = self.in_channel(channel)
            if len(here) == 1:
                chosen = here[0]
            elif here:
                raise UsageError(f"this channel has several services, name one: {', '.join(s.name for s in here)}")
            else:
                raise UsageError(f"name a service: {', '.join(self.names)}")
        if environment:
            return chosen, chosen.environment(environment)
        for env in chosen.environments:
            if env.name == self.default_environment:
                return chosen, env
        return chosen, chosen.environments[0]

    # ------------------------------------------------------------------------------------ loading

    @classmethod
    def from_config(cls, config: Config) -> Catalogue:
        """The catalogue of one service the single-service variables describe, in one environment."""
        env = Environment(name=config.default_environment, namespace=config.namespace, context=config.kube_context,
                          in_cluster=config.kube_in_cluster)
        service = Service(
            name=config.stable_deployment,
            environments=(env,),
            stable_deployment=config.stable_deployment,
            canary_deployment=config.canary_deployment,
            stable_mapping=config.stable_mapping,
            canary_mapping=config.canary_mapping,
            traffic=config.traffic,
            container=config.container,
            certificate=config.certificate,
            image_repository=config.image_repository,
            version_pattern=config.version_pattern,
            metrics_preset=config.metrics.preset,
            channels=config.ops_channels,
            deployers=config.deployers,
            approvers=config.approvers,
            lock=LockMode.REFUSE,  # as before catalogues: a second request is refused, naming the first
        )
        return cls(services=(service,), default_environment=config.default_environment)
