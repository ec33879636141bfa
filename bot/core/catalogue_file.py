"""The catalogue file (``HELLO_SERVICES``): read, validated, turned into a :class:`Catalogue`.

Every error names the file, the service and the field (:class:`ConfigError`). The values of settings a
service overrides (``analysis:``, ``bake:``) are read by the same readers as the variables
(:mod:`bot.core.readers`), so they mean the same in both places.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import yaml

from bot.core import readers
from bot.core.args import SPAN_MOST
from bot.core.catalogue import (
    ALL,
    DEFAULT_SOAK_MINUTES,
    QUERY_KEYS,
    Catalogue,
    Environment,
    FreezeWindow,
    LockMode,
    Overrides,
    Queries,
    Service,
)
from bot.core.config import DEFAULT_VERSION_PATTERN, ROUTERS, Config, Traffic, setting
from bot.core.cron import NeverFires, validate_cron
from bot.core.durations import parse_duration
from bot.core.errors import ConfigError, UsageError

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # DNS-1123 label: namespaces, containers
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # object names
_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")
PRESETS = ("helloworld", "envoy")


def read(path: str | Path, *, default_environment: str = "default") -> Catalogue:
    """Read and validate a catalogue file; :class:`ConfigError` names the file, service and field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"HELLO_SERVICES: cannot read {source}: {type(exc).__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {readers.yaml_error(exc, text)}") from None
    return parse(data, source=source, default_environment=default_environment)

def parse(data: Any, *, source: str = "services.yaml", default_environment: str = "default") -> Catalogue:
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
    return Catalogue(services=tuple(services), default_environment=default_environment, source=source)


def load(config: Config) -> Catalogue:
    """The catalogue for ``config``: the file ``HELLO_SERVICES`` names, else the variables' one service."""
    if config.services_file:
        return read(config.services_file, default_environment=config.default_environment)
    return Catalogue.from_config(config)


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
                readers.ids(f"{path}[{index}]", item, prefixes)
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


_SERVICE_FIELDS = ("name", "environments", "deployments", "mappings", "traffic", "container", "certificate",
                   "image", "metrics", "channels", "deployers", "approvers", "analysis", "bake", "loadtest",
                   "soak_minutes", "lock", "freezes")
_FREEZE_FIELDS = ("cron", "duration", "timezone", "reason", "environments")
_ENV_FIELDS = ("name", "context", "in_cluster", "namespace", "prometheus_url", "deployers", "approvers", "approvals")
_ANALYSIS = {  # catalogue key -> the variable it overrides (its Config field and reader: config.setting)
    "enabled": "HELLO_CANARY_ANALYSIS",
    "steps": "HELLO_CANARY_STEPS",
    "gates": "HELLO_CANARY_GATES",
    "interval": "HELLO_ANALYSIS_INTERVAL",
    "min_requests": "HELLO_ANALYSIS_MIN_REQUESTS",
    "max_latency_ratio": "HELLO_ANALYSIS_MAX_LATENCY_RATIO",
    "min_success": "HELLO_ANALYSIS_MIN_SUCCESS",
    "max_inconclusive": "HELLO_ANALYSIS_MAX_INCONCLUSIVE",
    "max_wait": "HELLO_ANALYSIS_MAX_WAIT",
    "confidence": "HELLO_ANALYSIS_CONFIDENCE",
    "p99_advisory": "HELLO_ANALYSIS_P99_ADVISORY",
    "mode": "HELLO_ANALYSIS_MODE",
}
_LOAD = {"rps": "HELLO_ANALYSIS_LOAD_RPS"}  # analysis: {load: {rps: N}}
_BAKE = {
    "minutes": "HELLO_BAKE_MINUTES",
    "auto_rollback": "HELLO_AUTO_ROLLBACK",
}
_LOADTEST = {
    "max_rps": "HELLO_LOADTEST_MAX_RPS",
    "max_seconds": "HELLO_LOADTEST_MAX_SECONDS",
    "path": "HELLO_LOADTEST_PATH",
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

    environments = _environments(r, item.get("environments"))
    deployments = r.mapping(item.get("deployments"), "deployments", ("stable", "canary"))
    mappings = r.mapping(item.get("mappings"), "mappings", ("stable", "canary"))
    image = r.mapping(item.get("image"), "image", ("repository", "version_pattern"))
    repository = r.text(image, "repository", "image.repository", default=name)
    if not _REPOSITORY.match(repository):
        r.fail("image.repository", f"{repository!r} is not an image repository (like registry.example.com/team/app)")
    pattern = r.setting(image, "version_pattern", "image.version_pattern", readers.pattern)

    metrics = r.mapping(item.get("metrics"), "metrics", ("preset", "queries"))
    preset = metrics.get("preset")
    if preset is not None and preset not in PRESETS:
        r.fail("metrics.preset", f"must be one of {', '.join(PRESETS)}")
    queries = _queries(r, metrics.get("queries"))

    soak = r.setting(item, "soak_minutes", "soak_minutes", readers.minutes)
    lock = item.get("lock", LockMode.QUEUE.value)
    if lock not in {m.value for m in LockMode}:
        r.fail("lock", "must be 'queue' (wait for the running release) or 'refuse' (say who holds it)")

    stable = r.name(deployments, "stable", "deployments.stable", default=name)
    canary = r.name(deployments, "canary", "deployments.canary", default=f"{name}-canary")
    return Service(
        name=name,
        environments=environments,
        stable_deployment=stable,
        canary_deployment=canary,
        traffic=_traffic(r, item, stable, canary),
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
        overrides=_overrides(r, item),
        soak_minutes=DEFAULT_SOAK_MINUTES if soak is None else soak,
        lock=LockMode(lock),
        freezes=_freezes(r, item.get("freezes"), tuple(env.name for env in environments)),
    )


def _traffic(r: _Reader, item: dict[str, Any], stable: str, canary: str) -> Traffic:
    """``traffic``: ``{router: emissary}`` (the default: ``mappings``) or ``{router: gateway-api, route, rule,
    backends: {stable, canary}}`` (the Services default to the Deployments' names)."""
    t = r.mapping(item.get("traffic"), "traffic", ("router", "route", "rule", "backends"))
    router = t.get("router", "emissary")
    if router not in ROUTERS:
        r.fail("traffic.router", f"must be one of {', '.join(ROUTERS)}")
    if router == "emissary":
        for key in ("route", "rule", "backends"):
            if key in t:
                r.fail(f"traffic.{key}", "is for the router gateway-api (Emissary's Mappings are named by 'mappings')")
        return Traffic()
    if "mappings" in item:
        r.fail("mappings", "is for the router emissary (this service's traffic goes through an HTTPRoute)")
    rule = t.get("rule", 0)
    if isinstance(rule, bool) or not ((isinstance(rule, int) and rule >= 0)
                                      or (isinstance(rule, str) and _SUBDOMAIN.match(rule))):
        r.fail("traffic.rule", "must be the rule's index in spec.rules (0, 1, ...) or its name")
    backends = r.mapping(t.get("backends"), "traffic.backends", ("stable", "canary"))
    return Traffic(router=router, route=r.name(t, "route", "traffic.route", required=True), rule=rule,
                   stable_service=r.name(backends, "stable", "traffic.backends.stable", default=stable),
                   canary_service=r.name(backends, "canary", "traffic.backends.canary", default=canary))


def _environments(r: _Reader, envs: Any) -> tuple[Environment, ...]:
    if not isinstance(envs, list) or not envs:
        r.fail("environments", "required: a list of environments (name, namespace, context or in_cluster)")
    environments = tuple(_environment(r, i, e) for i, e in enumerate(envs))
    seen: set[str] = set()
    for i, env in enumerate(environments):
        if env.name in seen:
            r.fail(f"environments[{i}].name", f"{env.name!r} is listed twice")
        seen.add(env.name)
    return environments


def _overrides(r: _Reader, item: Mapping[str, Any]) -> Overrides:
    """The service's ``analysis:`` (and its ``load:``), ``bake:`` and ``loadtest:``, read as their variables are."""
    analysis = r.mapping(item.get("analysis"), "analysis", (*_ANALYSIS, "load"))
    groups = (("analysis", _ANALYSIS, analysis),
              ("analysis.load", _LOAD, r.mapping(analysis.get("load"), "analysis.load", tuple(_LOAD))),
              ("bake", _BAKE, r.mapping(item.get("bake"), "bake", tuple(_BAKE))),
              ("loadtest", _LOADTEST, r.mapping(item.get("loadtest"), "loadtest", tuple(_LOADTEST))))
    overrides: dict[str, Any] = {}
    for group, table, data in groups:
        for key, var in table.items():
            attr, parse = setting(var)
            value = r.setting(data, key, f"{group}.{key}", parse)
            if value is not None:
                overrides[attr] = value
    return Overrides(**overrides)


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
        tz = r.setting(item, "timezone", f"{at}.timezone", readers.timezone) or ""
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
    url = r.setting(item, "prometheus_url", f"{at}.prometheus_url", readers.url) or ""
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
