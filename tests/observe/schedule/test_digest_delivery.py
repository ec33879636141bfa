"""A weekly scheduled post also carries the delivery figures of its week; an hourly one does not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sandbox.stack import Stack
from tests.harness.clock import DAY, SimClock, attach, digests


def audit_event(name: str, verb: str, phase: str, request_id: str, at: datetime) -> dict:
    """An audit Event as :class:`bot.release.audit.Audit` writes it (its record in the annotation)."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {"at": at.isoformat(), "reason": f"Hello{verb}{phase}", "verb": verb, "phase": phase, "user": "U1",
              "summary": "helloworld: v1 → v2", "request_id": request_id, "action": verb.lower(), "facts": {}}
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "hello",
                         "labels": {"app.kubernetes.io/managed-by": "hello-chatops"},
                         "annotations": {"hello-chatops/audit": json.dumps(record)}},
            "involvedObject": {"kind": "Deployment", "name": "helloworld", "namespace": "hello"},
            "reason": record["reason"], "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "hello-chatops"}}


async def test_a_weekly_post_shows_the_weeks_delivery_figures(stack: Stack) -> None:
    clock = SimClock(DAY - timedelta(minutes=1))
    scheduler = await attach(stack.services, clock, chart=False)
    await scheduler.add("0 0 * * *", "C1", "7d", user="U1")
    await scheduler.add("0 0 * * *", "C1", "1h", user="U1")
    cluster = await stack.services.cluster()
    asked = DAY - timedelta(days=2)
    await cluster.events.create(audit_event("e1", "Deploy", "Requested", "aaaaaa0001", asked))
    await cluster.events.create(audit_event("e2", "Deploy", "Approved", "aaaaaa0001", asked + timedelta(minutes=4)))
    await cluster.events.create(audit_event("e3", "Deploy", "Succeeded", "aaaaaa0001", asked + timedelta(minutes=12)))
    clock.advance(60)
    await scheduler.tick()
    posts = digests(stack)
    assert len(posts) == 2
    weekly = next(p for p in posts if "last 7d" in json.dumps(p.blocks))
    hourly = next(p for p in posts if p is not weekly)
    text = json.dumps(weekly.blocks, ensure_ascii=False)
    assert "*Delivery, last 7 days:* 1 deployment (1.0/week)" in text
    assert "request to live median 12m (1 deployment)" in text
    assert "Delivery" not in json.dumps(hourly.blocks)
