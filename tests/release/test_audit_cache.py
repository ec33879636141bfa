"""Home's last changes and delivery figures come from the watch caches of the audit Events of every namespace
of the catalogue, once they have listed: a change another replica records shows without an API read, and an
Event the API server lets expire leaves Home too. So do its services, running releases, firing alerts and
schedules: once the caches listed, a Home asks the API server nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bot.cluster.cache import AUDIT
from bot.observe.alert_group import AlertGroup
from bot.observe.alert_store import GROUP_KEY
from bot.observe.schedule_store import SCHEDULES_KEY, STATE_KEY
from bot.release.audit import ANNOTATION, MANAGED_BY, SELECTOR
from bot.wiring import follow
from tests.harness.several import World, two_clusters
from tests.harness.wait import until


def recorded_elsewhere(namespace: str) -> dict:
    """An audit Event as another replica of the bot writes it (bot.release.audit), for greeter in staging."""
    record = {"at": "2026-12-01T10:00:00+00:00", "reason": "HelloDeploySucceeded", "verb": "Deploy",
              "action": "deploy", "phase": "Succeeded", "user": "U9", "requester": "U1", "approver": "U9",
              "summary": "greeter (staging): v1 → v5", "request_id": "other1", "service": "greeter",
              "environment": "staging", "object": "Deployment/greeter", "facts": {"version": "v5"}}
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "greeter.other1.succeeded", "namespace": namespace,
                         "labels": {MANAGED_BY: "hello-chatops", "hello-chatops/request": "other1"},
                         "annotations": {ANNOTATION: json.dumps(record)}},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "greeter",
                               "namespace": namespace},
            "reason": "HelloDeploySucceeded", "message": "Deploy succeeded by U9: greeter (staging): v1 → v5",
            "type": "Normal", "source": {"component": "hello-chatops"}, "count": 1,
            "firstTimestamp": "2026-12-01T10:00:00Z", "lastTimestamp": "2026-12-01T10:00:00Z"}


async def home_saying(world: World, user: str, needle: str) -> str:
    await world.slack.open_home(user)
    try:
        home = await world.slack.wait_for_home(user, lambda h: needle in json.dumps(h.spec, ensure_ascii=False), 15)
    except TimeoutError:
        found = world.slack.home(user)
        raise AssertionError(f"{user}'s Home never said {needle!r}: {found and found.spec}") from None
    return json.dumps(home.spec, ensure_ascii=False)


async def test_a_change_another_replica_recorded_shows_on_home_from_the_cache_and_leaves_when_it_expires(
        tmp_path: Path) -> None:
    async with two_clusters(tmp_path) as world:
        services = world.stack.services
        assert AUDIT.label_selector == SELECTOR  # the cache follows exactly the audit trail's Events
        await follow(services)  # as serving's warm-up does
        targets = [services.targets.default, *services.targets.every()]
        places = [(await t.cluster(), t.config.namespace) for t in targets]
        await until(lambda: all(c.caches.current(ns, AUDIT.key) and c.caches.current(ns, AUDIT.key).watches
                                for c, ns in places), "every namespace's audit events to be cached and watched")
        staging = world.clusters["staging"]
        staging.apply(recorded_elsewhere("greeter"))
        greeter_staging = await services.targets.resolve("greeter", "staging").cluster()
        informer = greeter_staging.caches.current("greeter", AUDIT.key)
        await until(lambda: "greeter.other1.succeeded" in informer.objects, "the other replica's record in the cache")

        def audit_reads() -> int:
            return sum(e.requests[("list", "events")] for e in world.clusters.values())

        before = audit_reads()
        spec = await home_saying(world, "U3", "Succeeded by <@U9>: greeter (staging): v1 → v5")
        assert "Delivery, last 30 days:" in spec
        assert audit_reads() == before  # not one list of Events: every namespace's trail came from its cache

        staging.delete("", "v1", "events", "greeter", "greeter.other1.succeeded")  # as when the Event expires
        await until(lambda: not informer.objects, "the expired record to leave the cache")
        spec = await home_saying(world, "U3", "No changes recorded yet.")
        assert "v1 → v5" not in spec
        assert audit_reads() == before


async def test_home_asks_the_api_server_nothing_once_the_caches_listed(tmp_path: Path) -> None:
    async with two_clusters(tmp_path) as world:
        services = world.stack.services
        await follow(services)  # as serving's warm-up does: every namespace, the records, alert groups, schedules
        alerts, schedules = services.alerts.store, services.schedules.store
        await until(lambda: all(c is not None and c.watching and c.watches
                                for c in (alerts.cache, schedules.cache, services.approvals.store.cache)),
                    "the alert groups', schedules' and records' caches to list and watch")
        await home_saying(world, "U3", "Services")  # the first Home: the alert groups of an earlier version moved
        own = world.clusters["production"]
        namespace = services.config.namespace
        group = AlertGroup(id="0123456789abcdef", key='{}:{alertname="HighLatency"}', status="firing",
                           alertname="HighLatency", severity="warning",
                           starts_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
        own.apply({"apiVersion": "v1", "kind": "ConfigMap",  # as another replica stores them
                   "metadata": {"name": alerts.name_of(group.id), "namespace": namespace, "labels": alerts.labels},
                   "data": {GROUP_KEY: group.to_json()}})
        chat_made = {"s1a2b3": {"cron": "0 9 * * 1-5", "channel": "CREL", "range": "6h", "by": "U1",
                                "created": "2026-12-01T09:00:00+00:00"}}
        own.apply({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": schedules.name, "namespace": namespace},
                   "data": {SCHEDULES_KEY: json.dumps(chat_made), STATE_KEY: "{}"}})
        await until(lambda: alerts.cache.get(alerts.name_of(group.id)) and schedules.cache.get(schedules.name),
                    "the alert group and the schedules in their caches")

        def reads() -> int:
            return sum(e.request_count() - e.request_count("watch") for e in world.clusters.values())

        before = reads()
        spec = await home_saying(world, "U3", "`0 9 * * 1-5` in <#CREL>")
        assert "*HighLatency* (warning) since 12-01 09:30" in spec and "greeter" in spec
        assert reads() == before  # not one read: services, changes, running releases, alerts and schedules cached
        assert alerts.cache.lists == schedules.cache.lists == 1
