"""The bot's configuration: one frozen dataclass, loaded once from the environment.

Every setting is an environment variable (documented in docs/operator-guide.md, "Configuration"); an
optional YAML file named by ``HELLO_CONFIG`` supplies defaults with the same names (keys are the variable
names).
Values from the environment win over the file. Nothing else in the project reads ``os.environ``
for bot settings: the loaded :class:`Config` is passed to whoever needs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.core.cron import validate_cron
from bot.core.durations import parse_duration
from bot.core.errors import UsageError

if TYPE_CHECKING:
    from bot.core.catalogue import Catalogue

DEFAULT_VERSION_PATTERN = r"^v\d+(\.\d+)*(-[A-Za-z0-9][A-Za-z0-9.-]*)?$"
RANGES = ("15m", "1h", "6h", "24h", "7d")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


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


# variable name -> (field name, parser)
def _str(name: str, value: str) -> str:
    return value.strip()


def _int(name: str, value: str, *, low: int = 0, high: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {number}")
    return number


def _float(name: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{name} must be greater than 0, got {value!r}")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


_SLACK_ID = re.compile(r"^[USWGC][A-Z0-9]+$")


def _ids(name: str, value: str, prefixes: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    for item in items:
        if not _SLACK_ID.match(item) or item[0] not in prefixes:
            kinds = {"U": "user ids (U…)", "W": "user ids (W…)", "S": "user-group ids (S…)",
                     "C": "channel ids (C…)", "G": "private channel ids (G…)"}
            allowed = ", ".join(kinds[p] for p in prefixes)
            raise ConfigError(f"{name}: {item!r} is not one of {allowed}")
    return items


def _channel(name: str, value: str) -> str:
    ids = _ids(name, value, "CG")
    if len(ids) > 1:
        raise ConfigError(f"{name} takes one channel id, got {len(ids)}")
    return ids[0] if ids else ""


def _url(name: str, value: str) -> str:
    value = value.strip()
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _pattern(name: str, value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{name} is not a valid regular expression: {exc}") from None
    return value


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
        _ids(name, channel, "CG")
        if rng not in RANGES:
            raise ConfigError(f"{name}: range {rng!r} must be one of {', '.join(RANGES)}")
        out.append(Schedule(cron=cron, channel=channel, range=rng))
    return tuple(out)


def _timezone(name: str, value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}: unknown time zone {value!r}") from None
    return value.strip()


def _percents(name: str, value: str) -> tuple[int, ...]:
    """``"10,25,50"`` -> (10, 25, 50): whole percents from 1 to 100, rising."""
    parts = [part.strip().rstrip("%") for part in value.split(",") if part.strip()]
    out: list[int] = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= 100:
            raise ConfigError(f"{name}: {part!r} is not a whole percent from 1 to 100")
        out.append(int(part))
    if out != sorted(set(out)):
        raise ConfigError(f"{name} must rise, without repeats (like 10,25,50), got {value!r}")
    return tuple(out)


def _duration(name: str, value: str) -> float:
    """``"60s"``, ``"2m"`` (:func:`bot.core.durations.parse_duration`) or plain seconds."""
    text = value.strip()
    length = parse_duration(text)
    try:
        seconds = length.total_seconds() if length is not None else float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a duration like 60s or 2m, got {value!r}") from None
    if not 1 <= seconds <= 86400:
        raise ConfigError(f"{name} must be between 1s and 24h, got {value!r}")
    return seconds


def _read_float(name: str, text: str, what: str) -> float:
    """``text`` as a finite number, or a :class:`ConfigError` saying it should be ``what``."""
    try:
        number = float(text.strip())
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {text!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be {what}, got {text!r}")
    return number


def _minutes(name: str, value: str) -> float:
    number = _read_float(name, value, "a number of minutes")
    if not 0 <= number <= 1440:
        raise ConfigError(f"{name} must be between 0 and 1440 minutes, got {value!r}")
    return number


def _ratio(name: str, value: str) -> float:
    number = _float(name, value)
    if number < 1:
        raise ConfigError(f"{name} must be at least 1 (canary latency / stable latency), got {value!r}")
    return number


def _success(name: str, value: str) -> float:
    number = _read_float(name, value.strip().rstrip("%"), "a percentage like 99 or 99.5")
    if not 0 < number < 100:
        raise ConfigError(f"{name} must be between 0 and 100 (exclusive), got {value!r}")
    return number


def _mode(name: str, value: str) -> str:
    value = value.strip().lower()
    if value not in ("auto", "advise"):
        raise ConfigError(f"{name} must be 'auto' (abort a failing canary) or 'advise' (pause and ask), got {value!r}")
    return value


def _preset(name: str, value: str) -> MetricNames:
    value = value.strip().lower()
    if value in ("", "helloworld"):
        return MetricNames()
    if value == "envoy":
        return MetricNames.envoy()
    raise ConfigError(f"{name} must be 'helloworld' or 'envoy', got {value!r}")


def _label(name: str, value: str) -> str:
    value = value.strip()
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value) or len(value) > 63:
        raise ConfigError(f"{name} must be a DNS-1123 label (lower-case letters, digits and '-'), got {value!r}")
    return value


_VARS: dict[str, tuple[str, Any]] = {
    "SLACK_BOT_TOKEN": ("slack_bot_token", _str),
    "SLACK_SIGNING_SECRET": ("slack_signing_secret", _str),
    "SLACK_APP_TOKEN": ("slack_app_token", _str),
    "SLACK_API_URL": ("slack_api_url", _url),
    "KUBECONFIG": ("kubeconfig", _str),
    "HELLO_KUBE_CONTEXT": ("kube_context", _str),
    "HELLO_KUBE_IN_CLUSTER": ("kube_in_cluster", _bool),
    "HELLO_NAMESPACE": ("namespace", _str),
    "HELLO_STABLE_DEPLOYMENT": ("stable_deployment", _str),
    "HELLO_CANARY_DEPLOYMENT": ("canary_deployment", _str),
    "HELLO_STABLE_MAPPING": ("stable_mapping", _str),
    "HELLO_CANARY_MAPPING": ("canary_mapping", _str),
    "HELLO_CERTIFICATE": ("certificate", _str),
    "HELLO_CONTAINER": ("container", _str),
    "HELLO_IMAGE_REPOSITORY": ("image_repository", _str),
    "HELLO_VERSION_PATTERN": ("version_pattern", _pattern),
    "HELLO_CANARY_REPLICAS": ("canary_replicas", lambda n, v: _int(n, v, low=1, high=50)),
    "HELLO_CANARY_PERCENT": ("default_canary_percent", lambda n, v: _int(n, v, low=0, high=100)),
    "HELLO_STATE_CONFIGMAP": ("state_configmap", _str),
    "HELLO_HOLDS_CONFIGMAP": ("holds_configmap", _str),
    "HELLO_SERVICES": ("services_file", _str),
    "HELLO_DEFAULT_ENVIRONMENT": ("default_environment", _label),
    "HELLO_DEPLOYERS": ("deployers", lambda n, v: _ids(n, v, "UWS")),
    "HELLO_APPROVERS": ("approvers", lambda n, v: _ids(n, v, "UWS")),
    "HELLO_READERS": ("readers", lambda n, v: _ids(n, v, "UWS")),
    "HELLO_OPS_CHANNELS": ("ops_channels", lambda n, v: _ids(n, v, "CG")),
    "HELLO_SELF_APPROVAL": ("self_approval", _bool),
    "HELLO_ABORT_NEEDS_APPROVAL": ("abort_needs_approval", _bool),
    "HELLO_APPROVAL_TTL": ("approval_ttl_seconds", lambda n, v: _int(n, v, low=10)),
    "HELLO_GROUP_CACHE_SECONDS": ("group_cache_seconds", lambda n, v: _int(n, v, low=0)),
    "HELLO_ROLLOUT_TIMEOUT": ("rollout_timeout_seconds", lambda n, v: _int(n, v, low=1)),
    "HELLO_ROLLOUT_STALL": ("rollout_stall_seconds", lambda n, v: _int(n, v, low=1)),
    "HELLO_CERT_TIMEOUT": ("cert_timeout_seconds", lambda n, v: _int(n, v, low=1)),
    "HELLO_CLUSTER_PATIENCE": ("cluster_patience_seconds", lambda n, v: _int(n, v, low=1)),
    "HELLO_KEEP_RELEASES": ("keep_releases", lambda n, v: _int(n, v, low=1, high=500)),
    "HELLO_QUEUE_LIMIT": ("queue_limit", lambda n, v: _int(n, v, low=1, high=100)),
    "HELLO_CANARY_ANALYSIS": ("canary_analysis", _bool),
    "HELLO_CANARY_STEPS": ("canary_steps", _percents),
    "HELLO_CANARY_GATES": ("canary_gates", _percents),
    "HELLO_ANALYSIS_INTERVAL": ("analysis_interval_seconds", _duration),
    "HELLO_ANALYSIS_MIN_REQUESTS": ("analysis_min_requests", lambda n, v: _int(n, v, low=1)),
    "HELLO_ANALYSIS_MAX_LATENCY_RATIO": ("analysis_max_latency_ratio", _ratio),
    "HELLO_ANALYSIS_MIN_SUCCESS": ("analysis_min_success", _success),
    "HELLO_ANALYSIS_MAX_INCONCLUSIVE": ("analysis_max_inconclusive", lambda n, v: _int(n, v, low=1)),
    "HELLO_ANALYSIS_MAX_WAIT": ("analysis_max_wait_seconds", _duration),
    "HELLO_ANALYSIS_CONFIDENCE": ("analysis_confidence", _success),
    "HELLO_ANALYSIS_MODE": ("analysis_mode", _mode),
    "HELLO_BAKE_MINUTES": ("bake_minutes", _minutes),
    "HELLO_AUTO_ROLLBACK": ("auto_rollback", _bool),
    "HELLO_AUDIT_CHANNEL": ("audit_channel", lambda n, v: ",".join(_ids(n, v, "CG"))),
    "HELLO_REQUIRE_REASON": ("require_reason", _bool),
    "PROMETHEUS_URL": ("prometheus_url", _url),
    "PROMETHEUS_TIMEOUT": ("prometheus_timeout_seconds", _float),
    "GRAFANA_URL": ("grafana_url", _url),
    "GRAFANA_DASHBOARD_UID": ("grafana_dashboard_uid", _str),
    "GRAFANA_DASHBOARD_SLUG": ("grafana_dashboard_slug", _str),
    "HELLO_METRICS_PRESET": ("metrics", _preset),
    "HELLO_ALERT_TOKEN": ("alert_token", _str),
    "HELLO_ALERT_CHANNEL": ("alert_channel", _channel),
    "HELLO_ALERT_CARDS_PER_MINUTE": ("alert_cards_per_minute", lambda n, v: _int(n, v, low=1, high=1000)),
    "HELLO_ALERTMANAGER_URL": ("alertmanager_url", lambda n, v: _url(n, v).rstrip("/")),
    "HELLO_TIMEZONE": ("timezone", _timezone),
    "HELLO_SCHEDULES": ("schedules", _schedules),
    "HELLO_LEASE_NAME": ("lease_name", _str),
    "HELLO_LEASE_SECONDS": ("lease_seconds", lambda n, v: _int(n, v, low=2, high=3600)),
    "HELLO_IDENTITY": ("identity", _str),
    "PORT": ("port", lambda n, v: _int(n, v, low=0, high=65535)),
    "HELLO_LOG_LEVEL": ("log_level", lambda n, v: v.strip().upper() or "INFO"),
}

ENV_VARS: tuple[str, ...] = (*_VARS, "HELLO_CONFIG")
REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_TOP_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)\s*:")


def _yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """Where a YAML file is broken: line, column and the setting it belongs to, never the text there.

    PyYAML's own message quotes the offending line (a token or a secret may be on it); this keeps only
    its line numbers, its description with anything quoted from the file removed, and the name of the
    nearest setting above the error when it is a known one.
    """
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{type(exc).__name__} (details withheld: they may quote a secret)"
    mark = exc.problem_mark
    where = f"line {mark.line + 1}"
    start = exc.context_mark
    if start is not None and start.line != mark.line:
        where += f" (in what starts on line {start.line + 1})"
    problem = _QUOTED.sub("…", exc.problem or "syntax error")
    key = ""
    lines = text.splitlines()
    first = (start or mark).line
    for number in range(min(first, len(lines) - 1), -1, -1):
        found = _TOP_KEY.match(lines[number])
        if found:
            key = found.group(1) if found.group(1) in _VARS else ""
            break
    return f"{where}{f', setting {key}' if key else ''}: {problem}"


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
            raise ConfigError(f"HELLO_CONFIG: {path} is not valid YAML: {_yaml_error(exc, text)}") from None
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


def load_catalogue(config: Config) -> Catalogue:
    """The service catalogue: the file ``HELLO_SERVICES`` names, else the variables' one service.

    Raises :class:`ConfigError` naming the file, the service and the field of what is malformed.
    """
    from bot.core import catalogue

    return catalogue.load(config)


def field_names() -> set[str]:
    return {f.name for f in fields(Config)}
