"""The bot's configuration: one frozen dataclass, loaded once from the environment.

Every setting is an environment variable (documented in docs/operator-guide.md, "Configuration"); an
optional YAML file named by ``HELLO_CONFIG`` supplies defaults with the same names (keys are the variable
names).
Values from the environment win over the file. Nothing else in the project reads ``os.environ``
for bot settings: the loaded :class:`Config` is passed to whoever needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from bot.core import readers as r
from bot.core.cron import validate_cron
from bot.core.errors import ConfigError, UsageError

DEFAULT_VERSION_PATTERN = r"^v\d+(\.\d+)*(-[A-Za-z0-9][A-Za-z0-9.-]*)?$"
RANGES = ("15m", "1h", "6h", "24h", "7d")


@dataclass(frozen=True, kw_only=True)
class MetricNames:
    """Which Prometheus series the bot reads. Defaults are helloworld's own metrics."""

    preset: str = "helloworld"
    requests: str = "helloworld_requests_total"
    duration_bucket: str = "helloworld_request_duration_seconds_bucket"
    version_label: str = "version"
    status_label: str = "status"
    route_filter: str = 'route=~"/v1/hello|/v2/hello"'
    # a service's own counts for the canary judge (catalogue ``metrics.queries``): (key, template with $window)
    window_queries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def envoy(cls) -> MetricNames:
        """Emissary/Envoy metrics: one Envoy cluster per Mapping service; the 'version' is the cluster."""
        return cls(
            preset="envoy",
            requests="envoy_cluster_upstream_rq_total",
            duration_bucket="envoy_cluster_upstream_rq_time_bucket",
            version_label="envoy_cluster_name",
            status_label="envoy_response_code",
            route_filter='envoy_cluster_name=~"helloworld.*"',
        )


ROUTERS = ("emissary", "gateway-api")


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """How a service's traffic is split (catalogue ``traffic``): its router and, for the Gateway API, the rule.

    ``emissary``: the Mappings ``stable_mapping`` and ``canary_mapping``. ``gateway-api``: the weights of the two
    ``backendRefs`` (the Services ``stable_service`` and ``canary_service``) of one rule of the HTTPRoute
    ``route``, by its index or its ``name``.
    """

    router: str = "emissary"
    route: str = ""
    rule: int | str = 0
    stable_service: str = ""
    canary_service: str = ""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A static status-post schedule from configuration."""

    cron: str
    channel: str
    range: str = "1h"


@dataclass(frozen=True, kw_only=True)
class Config:
    # Slack
    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str = field(repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = "https://slack.com/api/"
    # Kubernetes
    kubeconfig: str = ""
    kube_context: str = ""
    kube_in_cluster: bool = False  # the Pod's own cluster even when KUBECONFIG names a file (other clusters')
    namespace: str = "hello"
    stable_deployment: str = "helloworld"
    canary_deployment: str = "helloworld-canary"
    stable_mapping: str = "helloworld"
    canary_mapping: str = "helloworld-canary"
    traffic: Traffic = field(default_factory=Traffic)  # the router (catalogue only; Emissary by default)
    certificate: str = "helloworld-tls"
    container: str = "helloworld"
    image_repository: str = "helloworld"
    version_pattern: str = DEFAULT_VERSION_PATTERN
    canary_replicas: int = 1
    default_canary_percent: int = 10
    state_configmap: str = "hello-chatops-state"
    holds_configmap: str = "hello-chatops-holds"  # locks and ad-hoc freezes (bot.release.holds)
    # Catalogue (bot.core.catalogue)
    services_file: str = ""
    default_environment: str = "default"
    # Policy
    deployers: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()  # may lock and freeze `all` (and lift it) without every pair's rights
    ops_channels: tuple[str, ...] = ()
    self_approval: bool = False
    abort_needs_approval: bool = False
    approval_ttl_seconds: int = 1800
    group_cache_seconds: int = 60
    # Releases
    rollout_timeout_seconds: int = 600
    rollout_stall_seconds: int = 300
    cert_timeout_seconds: int = 300
    cluster_patience_seconds: int = 300
    keep_releases: int = 50
    queue_limit: int = 10  # requests that may wait in the queue of one service and environment
    queue_per_person: int = 3  # of those, requests that one person may have waiting
    audit_channel: str = ""
    require_reason: bool = False
    # Canary analysis
    canary_analysis: bool = True
    canary_steps: tuple[int, ...] = (10, 25, 50)
    canary_gates: tuple[int, ...] = ()
    analysis_interval_seconds: float = 60.0
    analysis_min_requests: int = 50
    analysis_max_latency_ratio: float = 1.5
    analysis_min_success: float = 99.0  # percent
    analysis_max_inconclusive: int = 3
    analysis_max_wait_seconds: float = 1800.0  # a step undecided this long asks a person
    analysis_confidence: float = 90.0  # percent, time-uniform: holds over every look of a canary
    analysis_mode: str = "auto"  # auto: a failing canary is aborted; advise: it pauses for a person
    analysis_p99_advisory: bool = False  # a p99 not decided yet does not hold back a pass
    analysis_load_rps: int | str = r.AUTO_LOAD  # req/s to each track while judged (0: none; auto: as needed)
    # Load tests (/hello loadtest) and load during analysis: a Job running `hey` against a track's Service
    loadtest_max_rps: int = 50
    loadtest_max_seconds: int = 300
    loadtest_path: str = "/v1/hello"
    loadtest_image: str = "ghcr.io/fluxcd/flagger-loadtester:0.36.0"
    # Bake window (reads the firing alerts from alertmanager_url, below)
    bake_minutes: float = 15.0
    auto_rollback: bool = True
    # Observability
    prometheus_url: str = "http://127.0.0.1:9090"
    prometheus_timeout_seconds: float = 5.0
    grafana_url: str = ""
    grafana_dashboard_uid: str = "helloworld"
    grafana_dashboard_slug: str = "helloworld"
    metrics: MetricNames = field(default_factory=MetricNames)
    # Alerts (Alertmanager -> POST /alertmanager)
    alert_token: str = field(default="", repr=False)
    alert_channel: str = ""
    alert_cards_per_minute: int = 10  # new alert groups carded per channel a minute; past it, one flood card
    alertmanager_url: str = ""  # Alertmanager's API v2: the cards' silences, the bake window's alerts
    # Schedules
    timezone: str = "UTC"
    schedules: tuple[Schedule, ...] = ()
    lease_name: str = "hello-chatops-leader"
    lease_seconds: int = 15
    identity: str = ""
    # Server
    port: int = 3000
    log_level: str = "INFO"

    @property
    def socket_mode_available(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def alert_target(self) -> str:
        """Where alert cards go: HELLO_ALERT_CHANNEL, else the first of HELLO_OPS_CHANNELS, else "" (none)."""
        return self.alert_channel or (self.ops_channels[0] if self.ops_channels else "")




















def _schedules(name: str, value: str) -> tuple[Schedule, ...]:
    """``HELLO_SCHEDULES``: entries ``<cron>|<channel>[|<range>]`` separated by ``;``."""
    out = []
    for entry in (e.strip() for e in value.split(";")):
        if not entry:
            continue
        parts = [p.strip() for p in entry.split("|")]
        if len(parts) not in (2, 3):
            raise ConfigError(f"{name}: {entry!r} must be '<cron>|<channel>[|<range>]'")
        cron, channel = parts[0], parts[1]
        rng = parts[2] if len(parts) == 3 else "1h"
        try:
            validate_cron(cron)
        except UsageError as exc:
            raise ConfigError(f"{name}: {cron!r} is not a valid cron expression ({exc})") from None
        r.ids(name, channel, "CG")
        if rng not in RANGES:
            raise ConfigError(f"{name}: range {rng!r} must be one of {', '.join(RANGES)}")
        out.append(Schedule(cron=cron, channel=channel, range=rng))
    return tuple(out)


















def _preset(name: str, value: str) -> MetricNames:
    value = value.strip().lower()
    if value in ("", "helloworld"):
        return MetricNames()
    if value == "envoy":
        return MetricNames.envoy()
    raise ConfigError(f"{name} must be 'helloworld' or 'envoy', got {value!r}")




_VARS: dict[str, tuple[str, Any]] = {
    "SLACK_BOT_TOKEN": ("slack_bot_token", r.text),
    "SLACK_SIGNING_SECRET": ("slack_signing_secret", r.text),
    "SLACK_APP_TOKEN": ("slack_app_token", r.text),
    "SLACK_API_URL": ("slack_api_url", r.url),
    "KUBECONFIG": ("kubeconfig", r.text),
    "HELLO_KUBE_CONTEXT": ("kube_context", r.text),
    "HELLO_KUBE_IN_CLUSTER": ("kube_in_cluster", r.boolean),
    "HELLO_NAMESPACE": ("namespace", r.text),
    "HELLO_STABLE_DEPLOYMENT": ("stable_deployment", r.text),
    "HELLO_CANARY_DEPLOYMENT": ("canary_deployment", r.text),
    "HELLO_STABLE_MAPPING": ("stable_mapping", r.text),
    "HELLO_CANARY_MAPPING": ("canary_mapping", r.text),
    "HELLO_CERTIFICATE": ("certificate", r.text),
    "HELLO_CONTAINER": ("container", r.text),
    "HELLO_IMAGE_REPOSITORY": ("image_repository", r.text),
    "HELLO_VERSION_PATTERN": ("version_pattern", r.pattern),
    "HELLO_CANARY_REPLICAS": ("canary_replicas", lambda n, v: r.integer(n, v, low=1, high=50)),
    "HELLO_CANARY_PERCENT": ("default_canary_percent", lambda n, v: r.integer(n, v, low=0, high=100)),
    "HELLO_STATE_CONFIGMAP": ("state_configmap", r.text),
    "HELLO_HOLDS_CONFIGMAP": ("holds_configmap", r.text),
    "HELLO_SERVICES": ("services_file", r.text),
    "HELLO_DEFAULT_ENVIRONMENT": ("default_environment", r.dns_label),
    "HELLO_DEPLOYERS": ("deployers", lambda n, v: r.ids(n, v, "UWS")),
    "HELLO_APPROVERS": ("approvers", lambda n, v: r.ids(n, v, "UWS")),
    "HELLO_READERS": ("readers", lambda n, v: r.ids(n, v, "UWS")),
    "HELLO_ADMINS": ("admins", lambda n, v: r.ids(n, v, "UWS")),
    "HELLO_OPS_CHANNELS": ("ops_channels", lambda n, v: r.ids(n, v, "CG")),
    "HELLO_SELF_APPROVAL": ("self_approval", r.boolean),
    "HELLO_ABORT_NEEDS_APPROVAL": ("abort_needs_approval", r.boolean),
    "HELLO_APPROVAL_TTL": ("approval_ttl_seconds", lambda n, v: r.integer(n, v, low=10)),
    "HELLO_GROUP_CACHE_SECONDS": ("group_cache_seconds", lambda n, v: r.integer(n, v, low=0)),
    "HELLO_ROLLOUT_TIMEOUT": ("rollout_timeout_seconds", lambda n, v: r.integer(n, v, low=1)),
    "HELLO_ROLLOUT_STALL": ("rollout_stall_seconds", lambda n, v: r.integer(n, v, low=1)),
    "HELLO_CERT_TIMEOUT": ("cert_timeout_seconds", lambda n, v: r.integer(n, v, low=1)),
    "HELLO_CLUSTER_PATIENCE": ("cluster_patience_seconds", lambda n, v: r.integer(n, v, low=1)),
    "HELLO_KEEP_RELEASES": ("keep_releases", lambda n, v: r.integer(n, v, low=1, high=500)),
    "HELLO_QUEUE_LIMIT": ("queue_limit", lambda n, v: r.integer(n, v, low=1, high=100)),
    "HELLO_QUEUE_PER_PERSON": ("queue_per_person", lambda n, v: r.integer(n, v, low=1, high=100)),
    "HELLO_CANARY_ANALYSIS": ("canary_analysis", r.boolean),
    "HELLO_CANARY_STEPS": ("canary_steps", r.percents),
    "HELLO_CANARY_GATES": ("canary_gates", r.percents),
    "HELLO_ANALYSIS_INTERVAL": ("analysis_interval_seconds", r.duration_seconds),
    "HELLO_ANALYSIS_MIN_REQUESTS": ("analysis_min_requests", lambda n, v: r.integer(n, v, low=1)),
    "HELLO_ANALYSIS_MAX_LATENCY_RATIO": ("analysis_max_latency_ratio", r.ratio),
    "HELLO_ANALYSIS_MIN_SUCCESS": ("analysis_min_success", r.success),
    "HELLO_ANALYSIS_MAX_INCONCLUSIVE": ("analysis_max_inconclusive", lambda n, v: r.integer(n, v, low=1)),
    "HELLO_ANALYSIS_MAX_WAIT": ("analysis_max_wait_seconds", r.duration_seconds),
    "HELLO_ANALYSIS_CONFIDENCE": ("analysis_confidence", r.success),
    "HELLO_ANALYSIS_P99_ADVISORY": ("analysis_p99_advisory", r.boolean),
    "HELLO_ANALYSIS_MODE": ("analysis_mode", r.analysis_mode),
    "HELLO_ANALYSIS_LOAD_RPS": ("analysis_load_rps", r.load_rate),
    "HELLO_LOADTEST_MAX_RPS": ("loadtest_max_rps", lambda n, v: r.integer(n, v, low=1, high=10000)),
    "HELLO_LOADTEST_MAX_SECONDS": ("loadtest_max_seconds", lambda n, v: r.integer(n, v, low=1, high=86400)),
    "HELLO_LOADTEST_PATH": ("loadtest_path", r.url_path),
    "HELLO_LOADTEST_IMAGE": ("loadtest_image", r.text),
    "HELLO_BAKE_MINUTES": ("bake_minutes", r.minutes),
    "HELLO_AUTO_ROLLBACK": ("auto_rollback", r.boolean),
    "HELLO_AUDIT_CHANNEL": ("audit_channel", lambda n, v: ",".join(r.ids(n, v, "CG"))),
    "HELLO_REQUIRE_REASON": ("require_reason", r.boolean),
    "PROMETHEUS_URL": ("prometheus_url", r.url),
    "PROMETHEUS_TIMEOUT": ("prometheus_timeout_seconds", r.seconds),
    "GRAFANA_URL": ("grafana_url", r.url),
    "GRAFANA_DASHBOARD_UID": ("grafana_dashboard_uid", r.text),
    "GRAFANA_DASHBOARD_SLUG": ("grafana_dashboard_slug", r.text),
    "HELLO_METRICS_PRESET": ("metrics", _preset),
    "HELLO_ALERT_TOKEN": ("alert_token", r.text),
    "HELLO_ALERT_CHANNEL": ("alert_channel", r.channel),
    "HELLO_ALERT_CARDS_PER_MINUTE": ("alert_cards_per_minute", lambda n, v: r.integer(n, v, low=1, high=1000)),
    "HELLO_ALERTMANAGER_URL": ("alertmanager_url", lambda n, v: r.url(n, v).rstrip("/")),
    "HELLO_TIMEZONE": ("timezone", r.timezone),
    "HELLO_SCHEDULES": ("schedules", _schedules),
    "HELLO_LEASE_NAME": ("lease_name", r.text),
    "HELLO_LEASE_SECONDS": ("lease_seconds", lambda n, v: r.integer(n, v, low=2, high=3600)),
    "HELLO_IDENTITY": ("identity", r.text),
    "PORT": ("port", lambda n, v: r.integer(n, v, low=0, high=65535)),
    "HELLO_LOG_LEVEL": ("log_level", lambda n, v: v.strip().upper() or "INFO"),
}

ENV_VARS: tuple[str, ...] = (*_VARS, "HELLO_CONFIG")


def setting(var: str) -> tuple[str, Any]:
    """The Config field a variable sets and its reader (the catalogue's overrides read their values the same way)."""
    return _VARS[var]
REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")






def load(env: Mapping[str, str] | None = None, *, require_slack: bool = True) -> Config:
    """Build the configuration from ``env`` (default: ``os.environ``) and ``HELLO_CONFIG``.

    Raises :class:`ConfigError` naming the first missing or malformed variable.
    """
    env = dict(os.environ if env is None else env)
    merged: dict[str, str] = {}
    path = env.get("HELLO_CONFIG", "").strip()
    if path:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"HELLO_CONFIG: cannot read {path}: {exc}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"HELLO_CONFIG: {path} is not valid YAML: {r.yaml_error(exc, text, _VARS)}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"HELLO_CONFIG: {path} must hold a mapping of VARIABLE: value")
        for key, value in data.items():
            if key not in _VARS:
                raise ConfigError(f"HELLO_CONFIG: unknown setting {key!r} in {path}")
            if isinstance(value, list):
                value = ";".join(map(str, value)) if key == "HELLO_SCHEDULES" else ",".join(map(str, value))
            merged[key] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    for key in _VARS:
        if key in env:
            merged[key] = env[key]

    values: dict[str, Any] = {}
    for key, (attr, parse) in _VARS.items():
        raw = merged.get(key)
        if raw is None or (raw.strip() == "" and key not in REQUIRED):
            continue
        values[attr] = parse(key, raw)

    if require_slack:
        for key in REQUIRED:
            if not values.get(_VARS[key][0]):
                raise ConfigError(f"{key} is required (see docs/operator-guide.md, 'Configuration')")
    else:
        values.setdefault("slack_bot_token", "")
        values.setdefault("slack_signing_secret", "")
    if values.get("slack_bot_token") and not values["slack_bot_token"].startswith("xox"):
        raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with 'xoxb-'")
    if values.get("slack_app_token") and not values["slack_app_token"].startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
    if "slack_api_url" in values and not values["slack_api_url"].endswith("/"):
        values["slack_api_url"] += "/"
    if values.get("kube_in_cluster") and values.get("kube_context"):
        raise ConfigError("HELLO_KUBE_IN_CLUSTER and HELLO_KUBE_CONTEXT name two places for the bot's own cluster: "
                          "give one")
    return Config(**values)


def field_names() -> set[str]:
    return {f.name for f in fields(Config)}
