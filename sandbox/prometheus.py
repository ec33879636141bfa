"""A real Prometheus server on loopback, for the sandbox and the tests.

:class:`PrometheusServer` runs the ``prometheus`` binary (Debian package ``prometheus``) with a
temporary data directory and a generated configuration whose only scrape job reads its targets from a
``file_sd_configs`` file, so targets can be changed while it runs (:meth:`PrometheusServer.set_targets`).
It can load alerting rules and send its alerts to Alertmanagers (:mod:`sandbox.alertmanager`):

    async with PrometheusServer(scrape_interval="1s") as prom:
        prom.set_targets([("127.0.0.1:8001", {"track": "stable"})])
        print(prom.url)

    rules = shortened_rules(workdir / "rules.yaml", max_for="5s")
    PrometheusServer(rule_files=[rules], alertmanagers=[am.url], target_labels=SERVICE_TARGET_LABELS)

:func:`check_config` validates a Prometheus configuration file with ``promtool check config`` when it
is installed, and otherwise by starting ``prometheus`` on it and waiting for it to become ready.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from sandbox.daemon import LoopbackDaemon, free_port, http_status
from sandbox.daemon import find_binary as _find_binary

__all__ = [
    "RULES_FILE",
    "RULES_OBJECTIVE",
    "SERVICE_TARGET_LABELS",
    "PrometheusConfigError",
    "PrometheusNotInstalled",
    "PrometheusServer",
    "PrometheusStartError",
    "check_config",
    "duration_seconds",
    "find_binary",
    "free_port",
    "http_status",
    "shortened_rules",
]

RULES_FILE = Path(__file__).resolve().parents[1] / "manifests" / "monitoring" / "rules" / "helloworld-alerts.yaml"
"""The service's alerting rules (the same groups as the PrometheusRule in ``manifests/monitoring``)."""

SERVICE_TARGET_LABELS: Mapping[str, str] = {"namespace": "hello", "app": "helloworld"}
"""The target labels a cluster's Prometheus gives helloworld's pods, which the rules select on: give
them to the sandbox's targets (``target_labels=``) when the rules are loaded."""

INSTALL_HINT = "install it with `apt-get install prometheus` (Debian/Ubuntu) or put it on PATH"


class PrometheusNotInstalled(RuntimeError):
    """The ``prometheus`` binary is not on PATH."""


class PrometheusStartError(RuntimeError):
    """Prometheus exited or did not become ready; the message carries the end of its log."""


class PrometheusConfigError(ValueError):
    """A configuration file was refused; the message carries the checker's output."""


def find_binary(name: str = "prometheus") -> str:
    return _find_binary(name, missing=PrometheusNotInstalled, hint=INSTALL_HINT)


class PrometheusServer(LoopbackDaemon):
    """One ``prometheus`` process. Not started by the constructor: use ``start``/``stop`` or ``with``."""

    name = "prometheus"
    start_error = PrometheusStartError

    def __init__(
        self,
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str | None = None,
        job: str = "helloworld",
        targets: Iterable[tuple[str, Mapping[str, str]]] = (),
        target_labels: Mapping[str, str] | None = None,
        rule_files: Iterable[str | os.PathLike[str]] = (),
        alertmanagers: Iterable[str] = (),
        retention: str = "1d",
        binary: str | None = None,
        startup_timeout: float = 20.0,
        config_text: str | None = None,
        external_labels: Mapping[str, str] | None = None,
    ) -> None:
        """``target_labels`` are added to every target (e.g. :data:`SERVICE_TARGET_LABELS`);
        ``rule_files`` are loaded and evaluated every ``evaluation_interval`` (default: the scrape
        interval); ``alertmanagers`` are base URLs (``http://127.0.0.1:9093``) the alerts are sent to.
        ``config_text`` replaces the generated configuration verbatim (used by :func:`check_config`).
        ``external_labels`` go on the alerts it sends (e.g. ``{"cluster": "staging"}``), as a cluster's
        Prometheus names its cluster."""
        super().__init__(binary=binary, startup_timeout=startup_timeout)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.job = job
        self.target_labels = dict(target_labels or {})
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.alertmanagers = list(alertmanagers)
        self.retention = retention
        self.config_text = config_text
        self.external_labels = dict(external_labels or {})
        self._initial = list(targets)

    # -- files

    @property
    def targets_file(self) -> Path:
        return self.directory / "targets.json"

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    def config(self) -> dict:
        """The generated configuration: one file-discovered scrape job, the rules, the Alertmanagers."""
        config: dict = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
                "scrape_timeout": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": "/metrics",
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}],
                }
            ],
        }
        if self.external_labels:
            config["global"]["external_labels"] = self.external_labels
        if self.rule_files:
            config["rule_files"] = [str(p) for p in self.rule_files]
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [_alertmanager_config(url) for url in self.alertmanagers]}
        return config

    def set_targets(self, targets: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        """Replace the scrape targets: ``[("127.0.0.1:8001", {"track": "stable"}), ...]``.

        The file is rewritten atomically (write + rename); Prometheus watches it and picks the change
        up within a second or two.
        """
        groups = [
            {"targets": [address], "labels": {**self.target_labels, **labels}} for address, labels in targets
        ]
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".targets-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(groups, out)
        os.replace(tmp, self.targets_file)

    # -- lifecycle

    def find(self) -> str:
        return find_binary()

    def prepare(self) -> None:
        if not self.targets_file.exists():
            self.set_targets(self._initial)
        text = self.config_text or yaml.safe_dump(self.config(), sort_keys=False)
        self.config_file.write_text(text)

    def command(self, binary: str, port: int) -> list[str]:
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        return [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{port}",
            # links in alerts (generatorURL) point here rather than at the machine's host name
            f"--web.external-url=http://127.0.0.1:{port}/",
            "--log.level=warn",
        ]


def _alertmanager_config(url: str) -> dict:
    scheme, _, rest = url.partition("://")
    host, _, prefix = rest.partition("/")
    config: dict = {"scheme": scheme, "static_configs": [{"targets": [host]}], "api_version": "v2"}
    if prefix:
        config["path_prefix"] = "/" + prefix
    return config


RULES_OBJECTIVE = "0.999"
"""The availability SLO written into :data:`RULES_FILE` (99.9%)."""

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """A Prometheus duration (``90s``, ``1h30m``) in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def shortened_rules(
    dest: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] = RULES_FILE,
    max_for: str | None = None,
    objective: float | None = None,
) -> Path:
    """Write a copy of a rules file (default: the service's) to ``dest`` for the sandbox or a test.

    ``max_for`` caps every rule's ``for`` (a target down for 5 minutes becomes one down for
    ``max_for``); the expressions, windows, thresholds and labels stay as they are. ``objective``
    (e.g. ``0.995``) replaces the availability SLO of :data:`RULES_FILE` (``HELLO_SLO_AVAILABILITY``
    / 100) in the expressions and the annotations.
    """
    source = Path(source)
    text = source.read_text()
    if objective is not None:
        if not 0 < objective < 1:
            raise ValueError(f"the objective is a ratio between 0 and 1, not {objective}")
        percent = f"{objective * 100:g}%"
        text = text.replace(f"(1 - {RULES_OBJECTIVE})", f"(1 - {objective:g})")
        text = text.replace(f"{float(RULES_OBJECTIVE) * 100:g}%", percent)
    document = yaml.safe_load(text)
    if max_for is not None:
        cap = duration_seconds(max_for)
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                if "for" in rule and duration_seconds(rule["for"]) > cap:
                    rule["for"] = max_for
    dest = Path(dest)
    dest.write_text(yaml.safe_dump(document, sort_keys=False, width=1000))
    return dest


def check_config(
    path: str | os.PathLike[str], *, use_promtool: bool | None = None, timeout: float = 20.0
) -> str:
    """Validate a Prometheus configuration file; returns the checker's output, raises if refused.

    With ``use_promtool=None`` ``promtool check config`` is used when installed; ``False`` forces the
    promtool-free check: ``prometheus`` is started on the file (loopback, temporary data directory) and
    must become ready.
    """
    path = Path(path)
    if use_promtool is None:
        use_promtool = shutil.which("promtool") is not None
    if use_promtool:
        done = subprocess.run(
            [find_binary("promtool"), "check", "config", str(path)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise PrometheusConfigError(output)
        return output
    server = PrometheusServer(startup_timeout=timeout, config_text=path.read_text())
    try:
        server.start_blocking()
        return f"prometheus loaded {path.name} and became ready"
    except PrometheusStartError as exc:
        raise PrometheusConfigError(str(exc)) from None
    finally:
        server.stop()
