"""An Alertmanager webhook as the tests send it: the body Alertmanager posts (version "4") and the POST to a
bot replica's ``/alertmanager``, and waiting for the card it makes. Shared by the alert-card tests of
tests/release and tests/observe; and an alert posted to a real Alertmanager as Prometheus posts it (``fire``)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from sandbox.slack.state import Message
from tests.harness.chat import NS, Chat

TOKEN = "alert-token-for-tests-3c9e"
ENV = {"HELLO_ALERT_TOKEN": TOKEN, "HELLO_OPS_CHANNELS": "C1"}
KEY = '{}:{alertname="HelloworldHighErrorRate", namespace="hello", service="helloworld"}'


def notification(status: str = "firing", *, key: str = KEY, alertname: str = "HelloworldHighErrorRate",
                 labels: dict[str, str] | None = None, summary: str = "helloworld fails 12% of requests",
                 started: datetime | None = None, ended: datetime | None = None, n: int = 1) -> dict:
    started = started or datetime.now(UTC) - timedelta(minutes=2)
    base = {"alertname": alertname, "namespace": NS, "service": "helloworld", "severity": "critical",
            **(labels or {})}
    alerts = []
    for i in range(n):
        alerts.append({
            "status": status, "labels": {**base, "instance": f"10.0.0.{i}:8000"},
            "annotations": {"summary": summary, "description": "over the last 5 minutes"},
            "startsAt": started.isoformat().replace("+00:00", "Z"),
            "endsAt": (ended.isoformat().replace("+00:00", "Z") if ended else "0001-01-01T00:00:00Z"),
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up", "fingerprint": f"fp{i:014d}",
        })
    group_labels = {k: base[k] for k in ("alertname", "namespace", "service") if k in base}
    return {"version": "4", "groupKey": key, "status": status, "receiver": "hello-chatops",
            "groupLabels": group_labels, "commonLabels": base, "commonAnnotations": {"summary": summary},
            "externalURL": "http://alertmanager.example:9093", "truncatedAlerts": 0, "alerts": alerts}


async def webhook(chat: Chat, body: Any, *, token: str | None = TOKEN, replica: int = 0,
                  raw: bytes | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    url = f"{chat.stack.replicas[replica].server.url}/alertmanager"
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as answer:
        return answer.status, await answer.text()


async def card_saying(chat: Chat, needle: str, timeout: float = 15.0) -> Message:
    return await chat.wait(lambda m: isinstance(m, Message) and m.channel == "C1"
                           and m.thread_ts in (None, m.ts) and needle in m.text + json.dumps(m.blocks), timeout)


def fire(url: str, name: str = "HelloworldErrorBudgetFastBurn", severity: str = "critical") -> None:
    """What Prometheus does when a rule fires: POST the alert to Alertmanager's API v2."""
    body = [{"labels": {"alertname": name, "severity": severity, "namespace": "hello", "service": "helloworld"},
             "annotations": {"summary": "helloworld fails 38% of its requests <!channel>"},
             "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
