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
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import yaml

from bot.core import config as config_module
from bot.core.args import SPAN_MOST
from bot.core.config import DEFAULT_VERSION_PATTERN, Config, ConfigError, MetricNames
from bot.core.cron import NeverFires, latest_slot, next_slot, validate_cron
from bot.core.durations import parse_duration
from bot.core.errors import UsageError
from bot.core.text import foreign

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # DNS-1123 label: namespaces, containers
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # object names
_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")
QUERY_KEYS = ("requests", "errors", "p50", "p99")
PRESETS = ("helloworld", "envoy")
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
    """A service's canary-analysis and bake settings; ``None`` keeps the variable's value.

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
    bake_minutes: float | None = None
    auto_rollback: bool | None = None

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

    @classmethod
    def from_file(cls, path: str | Path, *, default_environment: str = "default") -> Catalogue:
        """Read and validate a catalogue file; :class:`ConfigError` names the file, service and field."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"HELLO_SERVICES: cannot read {source}: {type(exc).__name__}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {config_module._yaml_error(exc, text)}") from None
        return cls.from_data(data, source=source, default_environment=default_environment)

    @classmethod
    def from_data(cls, data: Any, *, source: str = "services.yaml", default_environment: str = "default") -> Catalogue:
        """Validate an already parsed catalogue (what ``yaml.safe_load`` returns)."""
        top = _Reader(source)
        if not isinstance(data, dict):
            top.fail("", "must be a mapping with a 'services' list")
        top.known(data, "", ("services",))
        items = data.get("services")
        if not isinstance(items, list) or not items:
            top.fail("services", "required: a list of services")
        services: list[Service] = []
        for index, item in enumerate(items):
            services.append(_service(source, index, item))
        seen: set[str] = set()
        for service in services:
            if service.name in seen:
                _Reader(source, service.name).fail("name", "another service has the same name")
            seen.add(service.name)
        return cls(services=tuple(services), default_environment=default_environment, source=source)


def load(config: Config) -> Catalogue:
    """The catalogue for ``config``: the file ``HELLO_SERVICES`` names, else the variables' one service."""
    if config.services_file:
        return Catalogue.from_file(config.services_file, default_environment=config.default_environment)
    return Catalogue.from_config(config)


# ---------------------------------------------------------------------------------------- parsing


class _Reader:
    """Reads one part of the file; every error names the file, the service and the field."""

    def __init__(self, source: str, service: str | None = None, where: str = "") -> None:
        self.source = source
        self.service = service
        self.where = where  # e.g. "services[2]" before the service's name is known

    def fail(self, path: str, problem: str) -> NoReturn:
        prefix = f"{self.source}: "
        if self.service is not None:
            prefix += f"service {self.service!r}, "
        full = ".".join(p for p in (self.where, path) if p).replace(".[", "[")
        raise ConfigError(f"{prefix}{full}: {problem}" if full else f"{prefix}{problem}")

    def rethrow(self, exc: ConfigError) -> NoReturn:
        """A Config parser's message (it starts with the field's path) under this file and service."""
        prefix = f"{self.source}: " + (f"service {self.service!r}, " if self.service is not None else "")
        raise ConfigError(prefix + str(exc)) from None

    def known(self, data: Mapping[Any, Any], path: str, allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.fail(where, f"unknown field (expected one of: {', '.join(allowed)})")

    def mapping(self, data: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(path, "must be a mapping")
        self.known(data, path, allowed)
        return data

    def text(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False,
             default: str = "") -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(path, "required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
        return value.strip()

    def name(self, data: Mapping[str, Any], key: str, path: str, *, label: bool = False, required: bool = False,
             default: str = "") -> str:
        value = self.text(data, key, path, required=required, default=default)
        pattern, limit = (_LABEL, 63) if label else (_SUBDOMAIN, 253)
        if not pattern.match(value) or len(value) > limit:
            kind = "a DNS-1123 label" if label else "a DNS-1123 name"
            chars = "lower-case letters, digits and '-'" + ("" if label else " or '.'")
            self.fail(path, f"{value!r} is not {kind} ({chars}, at most {limit} characters)")
        return value

    def flag(self, data: Mapping[str, Any], key: str, path: str, default: bool = False) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
        return value

    def ids(self, data: Mapping[str, Any], key: str, path: str, prefixes: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, "must be a list of Slack ids")
        for index, item in enumerate(value):
            try:
                config_module._ids(f"{path}[{index}]", item, prefixes)
            except ConfigError as exc:
                self.rethrow(exc)
        return tuple(v.strip() for v in value)

    def setting(self, data: Mapping[str, Any], key: str, path: str, parse: Any) -> Any:
        """A value checked by the same parser as its variable (so the rules are the variable's)."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            raw = "true" if value else "false"
        elif isinstance(value, list):
            raw = ",".join(str(v) for v in value)
        elif isinstance(value, (str, int, float)):
            raw = str(value)
        else:
            self.fail(path, "must be a single value or a list")
        try:
            return parse(path, raw)
        except ConfigError as exc:
            self.rethrow(exc)


_SERVICE_FIELDS = ("name", "environments", "deployments", "mappings", "container", "certificate", "image", "metrics",
                   "channels", "deployers", "approvers", "analysis", "bake", "soak_minutes", "lock", "freezes")
_FREEZE_FIELDS = ("cron", "duration", "timezone", "reason", "environments")
_ENV_FIELDS = ("name", "context", "in_cluster", "namespace", "prometheus_url", "deployers", "approvers", "approvals")
_ANALYSIS = {  # catalogue key -> (Config field, the variable's parser)
    "enabled": ("canary_analysis", config_module._bool),
    "steps": ("canary_steps", config_module._percents),
    "gates": ("canary_gates", config_module._percents),
    "interval": ("analysis_interval_seconds", config_module._duration),
    "min_requests": ("analysis_min_requests", lambda n, v: config_module._int(n, v, low=1)),
    "max_latency_ratio": ("analysis_max_latency_ratio", config_module._ratio),
    "min_success": ("analysis_min_success", config_module._success),
    "max_inconclusive": ("analysis_max_inconclusive", lambda n, v: config_module._int(n, v, low=1)),
    "max_wait": ("analysis_max_wait_seconds", config_module._duration),
    "confidence": ("analysis_confidence", config_module._success),
    "mode": ("analysis_mode", config_module._mode),
    "p99_advisory": ("analysis_p99_advisory", config_module._bool),
}
_BAKE = {
    "minutes": ("bake_minutes", config_module._minutes),
    "auto_rollback": ("auto_rollback", config_module._bool),
}


def _service(source: str, index: int, item: Any) -> Service:
    reader = _Reader(source, where=f"services[{index}]")
    if not isinstance(item, dict):
        reader.fail("", "must be a mapping")
    name = reader.name(item, "name", "name", label=True, required=True)
    if name == ALL:
        reader.fail("name", f"{ALL!r} is reserved: `/hello freeze {ALL}` means every service")
    r = _Reader(source, name)
    r.known(item, "", _SERVICE_FIELDS)

    envs = item.get("environments")
    if not isinstance(envs, list) or not envs:
        r.fail("environments", "required: a list of environments (name, namespace, context or in_cluster)")
    environments = tuple(_environment(r, i, e) for i, e in enumerate(envs))
    seen: set[str] = set()
    for i, env in enumerate(environments):
        if env.name in seen:
            r.fail(f"environments[{i}].name", f"{env.name!r} is listed twice")
        seen.add(env.name)

    deployments = r.mapping(item.get("deployments"), "deployments", ("stable", "canary"))
    mappings = r.mapping(item.get("mappings"), "mappings", ("stable", "canary"))
    image = r.mapping(item.get("image"), "image", ("repository", "version_pattern"))
    repository = r.text(image, "repository", "image.repository", default=name)
    if not _REPOSITORY.match(repository):
        r.fail("image.repository", f"{repository!r} is not an image repository (like registry.example.com/team/app)")
    pattern = r.setting(image, "version_pattern", "image.version_pattern", config_module._pattern)

    metrics = r.mapping(item.get("metrics"), "metrics", ("preset", "queries"))
    preset = metrics.get("preset")
    if preset is not None and preset not in PRESETS:
        r.fail("metrics.preset", f"must be one of {', '.join(PRESETS)}")
    queries = _queries(r, metrics.get("queries"))

    analysis = r.mapping(item.get("analysis"), "analysis", tuple(_ANALYSIS))
    bake = r.mapping(item.get("bake"), "bake", tuple(_BAKE))
    overrides: dict[str, Any] = {}
    for group, table, data in (("analysis", _ANALYSIS, analysis), ("bake", _BAKE, bake)):
        for key, (attr, parse) in table.items():
            value = r.setting(data, key, f"{group}.{key}", parse)
            if value is not None:
                overrides[attr] = value

    soak = r.setting(item, "soak_minutes", "soak_minutes", config_module._minutes)
    lock = item.get("lock", LockMode.QUEUE.value)
    if lock not in {m.value for m in LockMode}:
        r.fail("lock", "must be 'queue' (wait for the running release) or 'refuse' (say who holds it)")

    return Service(
        name=name,
        environments=environments,
        stable_deployment=r.name(deployments, "stable", "deployments.stable", default=name),
        canary_deployment=r.name(deployments, "canary", "deployments.canary", default=f"{name}-canary"),
        stable_mapping=r.name(mappings, "stable", "mappings.stable", default=name),
        canary_mapping=r.name(mappings, "canary", "mappings.canary", default=f"{name}-canary"),
        container=r.name(item, "container", "container", label=True, default=name),
        certificate=r.name(item, "certificate", "certificate", default=f"{name}-tls"),
        image_repository=repository,
        version_pattern=pattern or DEFAULT_VERSION_PATTERN,
        metrics_preset=preset,
        queries=queries,
        channels=r.ids(item, "channels", "channels", "CG") or (),
        deployers=r.ids(item, "deployers", "deployers", "UWS"),
        approvers=r.ids(item, "approvers", "approvers", "UWS"),
        overrides=Overrides(**overrides),
        soak_minutes=DEFAULT_SOAK_MINUTES if soak is None else soak,
        lock=LockMode(lock),
        freezes=_freezes(r, item.get("freezes"), tuple(env.name for env in environments)),
    )


def _freezes(r: _Reader, data: Any, environments: tuple[str, ...]) -> tuple[FreezeWindow, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        r.fail("freezes", "must be a list of windows (cron, duration, timezone, reason, environments)")
    windows = []
    for index, item in enumerate(data):
        at = f"freezes[{index}]"
        if not isinstance(item, dict):
            r.fail(at, "must be a mapping (cron, duration, timezone, reason, environments)")
        r.known(item, at, _FREEZE_FIELDS)
        cron = " ".join(r.text(item, "cron", f"{at}.cron", required=True).split())
        try:
            validate_cron(cron, aliases=False)
        except NeverFires:
            r.fail(f"{at}.cron", f"{cron!r} never fires")
        except UsageError:
            r.fail(f"{at}.cron", f"{cron!r} is not a cron expression (minute hour day-of-month month day-of-week)")
        raw = item.get("duration")
        length = parse_duration(raw) if isinstance(raw, str) else None
        if length is None:
            r.fail(f"{at}.duration", "required: a duration like 64h, 90m, 2d or 1d12h")
        if not timedelta(0) < length <= SPAN_MOST:
            r.fail(f"{at}.duration", "must be more than 0 and at most 31 days")
        tz = r.setting(item, "timezone", f"{at}.timezone", config_module._timezone) or ""
        reason = r.text(item, "reason", f"{at}.reason", default="freeze window")
        names = item.get("environments")
        if names is None:
            names = []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            r.fail(f"{at}.environments", "must be a list of the service's environment names")
        for n, env in enumerate(names):
            if env not in environments:
                r.fail(f"{at}.environments[{n}]", f"{env!r} is not one of the service's environments "
                       f"({', '.join(environments)})")
        windows.append(FreezeWindow(cron=cron, duration=length, timezone=tz, reason=reason,
                                    environments=tuple(names)))
    return tuple(windows)


def _environment(r: _Reader, index: int, item: Any) -> Environment:
    at = f"environments[{index}]"
    if not isinstance(item, dict):
        r.fail(at, "must be a mapping (name, namespace, context or in_cluster)")
    r.known(item, at, _ENV_FIELDS)
    in_cluster = r.flag(item, "in_cluster", f"{at}.in_cluster")
    context = r.text(item, "context", f"{at}.context")
    if context and in_cluster:
        r.fail(at, "give either context (a kubeconfig context) or in_cluster: true, not both")
    url = r.setting(item, "prometheus_url", f"{at}.prometheus_url", config_module._url) or ""
    approvals = item.get("approvals", 1)
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= 5:
        r.fail(f"{at}.approvals", "must be a whole number from 1 to 5 (distinct approvers a change needs)")
    return Environment(
        name=r.name(item, "name", f"{at}.name", label=True, required=True),
        namespace=r.name(item, "namespace", f"{at}.namespace", label=True, required=True),
        context=context,
        in_cluster=in_cluster,
        prometheus_url=url,
        deployers=r.ids(item, "deployers", f"{at}.deployers", "UWS"),
        approvers=r.ids(item, "approvers", f"{at}.approvers", "UWS"),
        approvals=approvals,
    )


def _queries(r: _Reader, data: Any) -> Queries | None:
    if data is None:
        return None
    data = r.mapping(data, "metrics.queries", QUERY_KEYS)
    values: dict[str, str] = {}
    for key in QUERY_KEYS:
        path = f"metrics.queries.{key}"
        text = r.text(data, key, path, required=True)
        try:
            string.Template(text).substitute(window="1m")
        except (KeyError, ValueError):
            r.fail(path, "the only placeholder is $window (write $$ for a literal $)")
        if "$window" not in text and "${window}" not in text:
            r.fail(path, "must use $window, the analysis window (like increase(x[$window]))")
        values[key] = text
    return Queries(**values)
