"""A real Alertmanager on loopback, for the sandbox and the tests.

:class:`AlertmanagerServer` runs the Alertmanager binary (Debian package ``prometheus-alertmanager``,
whose binary is ``prometheus-alertmanager``; upstream's is ``alertmanager``) with a temporary storage
directory, clustering off, and a generated configuration: every alert goes to one webhook receiver
that posts to ``webhook_url`` with ``Authorization: Bearer <token>`` (the bot's ``POST /alertmanager``
and ``HELLO_ALERT_TOKEN``), with short group timings so notifications arrive within a second or two.

    async with AlertmanagerServer(webhook_url="http://127.0.0.1:3000/alertmanager", token=token) as am:
        rules = shortened_rules(workdir / "rules.yaml", max_for="5s")
        async with PrometheusServer(rule_files=[rules], alertmanagers=[am.url],
                                    target_labels=SERVICE_TARGET_LABELS) as prom:
            ...

:func:`create_silence` creates a silence through Alertmanager's API v2 (what the bot's "Silence 1h"
button does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from sandbox.daemon import LoopbackDaemon
from sandbox.daemon import find_binary as _find_binary

INSTALL_HINT = (
    "install it with `apt-get install prometheus-alertmanager` (Debian/Ubuntu) or put Alertmanager on PATH"
)
BINARIES = ("prometheus-alertmanager", "alertmanager")
"""Debian's name for the binary, then upstream's."""

RECEIVER = "hello-chatops"
DEFAULT_GROUP_BY = ("alertname", "namespace", "service")


class AlertmanagerNotInstalled(RuntimeError):
    """Neither ``prometheus-alertmanager`` nor ``alertmanager`` is on PATH."""


class AlertmanagerStartError(RuntimeError):
    """Alertmanager exited or did not become ready; the message carries the end of its log."""


def find_binary() -> str:
    return _find_binary(*BINARIES, missing=AlertmanagerNotInstalled, hint=INSTALL_HINT)


class AlertmanagerServer(LoopbackDaemon):
    """One Alertmanager process. Not started by the constructor: use ``start``/``stop`` or ``with``."""

    name = "alertmanager"
    start_error = AlertmanagerStartError

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        token: str | None = None,
        group_by: Iterable[str] = DEFAULT_GROUP_BY,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        binary: str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        """``webhook_url``: where notifications are posted (none: alerts are kept, not sent);
        ``token``: sent as ``Authorization: Bearer <token>`` (none: no such header)."""
        super().__init__(binary=binary, startup_timeout=startup_timeout)
        self.webhook_url = webhook_url
        self.token = token
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval

    @property
    def config_file(self) -> Path:
        return self.directory / "alertmanager.yml"

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    def config(self) -> dict:
        """The generated configuration: one route, one webhook receiver (the same shape as
        ``manifests/monitoring/alertmanager.yml``, with the sandbox's timings)."""
        receiver: dict = {"name": RECEIVER}
        if self.webhook_url:
            webhook: dict = {"url": self.webhook_url, "send_resolved": True}
            if self.token is not None:
                webhook["http_config"] = {
                    "authorization": {"type": "Bearer", "credentials_file": str(self.token_file)}
                }
            receiver["webhook_configs"] = [webhook]
        return {
            "route": {
                "receiver": RECEIVER,
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "inhibit_rules": [
                {
                    "source_matchers": ['alertname="HelloworldErrorBudgetFastBurn"'],
                    "target_matchers": ['alertname="HelloworldErrorBudgetSlowBurn"'],
                    "equal": ["namespace", "service"],
                }
            ],
            "receivers": [receiver],
        }

    # -- lifecycle

    def find(self) -> str:
        return find_binary()

    def prepare(self) -> None:
        if self.token is not None:
            _write_private(self.token_file, self.token)
        _write_private(self.config_file, yaml.safe_dump(self.config(), sort_keys=False))

    def command(self, binary: str, port: int) -> list[str]:
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        return [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url=http://127.0.0.1:{port}/",  # the webhook's externalURL
            "--cluster.listen-address=",  # no gossip port: a single instance
            "--log.level=warn",
        ]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def create_silence(
    url: str,
    matchers: Mapping[str, str],
    minutes: float,
    created_by: str,
    comment: str,
    *,
    timeout: float = 10.0,
) -> str:
    """Silence the alerts whose labels equal ``matchers`` for ``minutes`` from now, through
    ``POST {url}/api/v2/silences``; returns the silence's id. Raises ``urllib.error.HTTPError``
    when Alertmanager refuses it: 422 for a body outside the API's schema (no matchers), 400 for a
    silence it cannot accept (an invalid matcher, an end before the start), its reason in the body."""
    now = dt.datetime.now(dt.UTC)
    body = {
        "matchers": [
            {"name": name, "value": value, "isRegex": False, "isEqual": True} for name, value in matchers.items()
        ],
        "startsAt": now.isoformat().replace("+00:00", "Z"),
        "endsAt": (now + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "createdBy": created_by,
        "comment": comment,
    }
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/v2/silences",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["silenceID"]
