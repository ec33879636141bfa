"""What a scheduled post contains: status, changes from the audit Events, the chart in its thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.observe import digest, status
from bot.observe.prom import Series, Snapshot, VersionStats
from sandbox.stack import Stack
from tests.harness.clock import DAY, SimClock, attach, digests


def audit_event(name: str, reason: str, message: str, at: datetime) -> dict:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "hello",
                         "labels": {"app.kubernetes.io/managed-by": "hello-chatops"}},
            "involvedObject": {"kind": "Deployment", "name": "helloworld", "namespace": "hello"},
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "hello-chatops"}}


def synthetic_snapshot(end: datetime) -> Snapshot:
    start = end - timedelta(hours=1)
    times = [start.timestamp() + 60 * i for i in range(61)]
    rate = [Series("v1", tuple((t, 9.0) for t in times)), Series("v2", tuple((t, 1.0) for t in times))]
    success = [Series("v1", tuple((t, 0.999) for t in times)), Series("v2", tuple((t, 0.98) for t in times))]
    p99 = [Series("v1", tuple((t, 0.02) for t in times)), Series("v2", tuple((t, 0.03) for t in times))]
    latest = [VersionStats("v1", 9.0, 0.999, 0.005, 0.01, 0.02), VersionStats("v2", 1.0, 0.98, 0.006, 0.02, 0.03)]
    return Snapshot(range="1h", start=start, end=end, step=60.0, rate=rate, success=success, p99=p99,
                    latest=latest)


async def test_digest_lists_changes_since_the_previous_post(stack: Stack) -> None:
    clock = SimClock(DAY - timedelta(minutes=1))
    scheduler = await attach(stack.services, clock, chart=False)
    await scheduler.add("0 * * * *", "C1", "1h", user="U1")
    cluster = await stack.services.cluster()
    await cluster.events.create(audit_event("e1", "Deploy", "deployed v2 (requested by <@U1>)",
                                           DAY - timedelta(minutes=30)))
    clock.advance(60)
    await scheduler.tick()
    await cluster.events.create(audit_event("e2", "CanaryWeight", "canary v3 at 10%", DAY + timedelta(minutes=20)))
    await cluster.events.create(audit_event("e3", "CertificateRenewal", "renewal of helloworld-tls requested",
                                           DAY + timedelta(minutes=40)))
    clock.advance(3600)
    await scheduler.tick()
    first, second = digests(stack)
    assert "deployed v2" in str(first.blocks) and "Changes since 2030-01-06 23:00 UTC" in str(first.blocks)
    assert "canary v3 at 10%" not in str(first.blocks)
    text = str(second.blocks)
    assert "Changes since 2030-01-07 00:00 UTC" in text
    assert "deployed v2" not in text  # already reported in the previous post
    assert ":hatching_chick:" in text and "canary v3 at 10%" in text and ":lock:" in text
    assert "2 change(s) since the last post" in second.text
    assert "metrics unavailable" in text  # this stack's Prometheus refuses connections
    assert stack.slack.messages("C1", thread_ts=second.ts) == []  # no chart without traffic


async def test_chart_is_rendered_and_uploaded_in_the_thread(stack: Stack) -> None:
    now = datetime(2030, 1, 7, 12, tzinfo=UTC)
    data = await status.gather(stack.services, stack.services.targets.default, "1h", now=now,
                                alerts=stack.services.alerts)
    data.snapshot, data.metrics_error = synthetic_snapshot(now), ""
    blocks = status.blocks(data, stack.services.config)
    ts = await stack.services.messenger.post("C1", status.summary_text(data), blocks)
    built = digest.Digest(text="", blocks=[], data=data, chart=True)
    await digest.upload_followups(stack.services.shared, stack.services.audit, "C1", ts, built)
    [upload] = [m for m in stack.slack.messages("C1", thread_ts=ts) if m.files]
    file_id = upload.files[0]["id"]
    png = stack.slack.file_bytes(file_id)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert "last 1h" in upload.files[0]["title"]


async def test_a_post_that_keeps_failing_with_5xx_is_retried(stack: Stack) -> None:
    clock = SimClock(DAY - timedelta(minutes=1))
    scheduler = await attach(stack.services, clock, chart=False, retry_delay=30)
    await scheduler.add("0 * * * *", "C1", "15m")
    clock.advance(60)
    # Messenger's client retries a 5xx twice itself; the fourth failure reaches the scheduler's own retry
    stack.slack.fail("chat.postMessage", 500, times=4)
    [posted] = await scheduler.tick(DAY)
    assert posted.ts and not posted.error
    assert clock.now == DAY + timedelta(seconds=30)  # one back-off of the scheduler's, on the simulated clock
    assert len(digests(stack)) == 1
    failures = [c for c in stack.slack.calls if c["method"] == "chat.postMessage" and c["status"] == 500]
    assert len(failures) == 4
