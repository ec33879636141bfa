"""Alertmanager's webhook body parsed, filtered to the service, merged into a stored group; the card rendered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.observe.alert_card import CardContext, change_line, last_changes, render_card
from bot.observe.alert_group import AlertGroup, merge
from bot.observe.alert_payload import AlertPayloadError, ours, parse
from bot.observe.alert_store import KEEP_GROUPS, KEEP_RESOLVED, to_prune
from tests.harness.alerting import notification

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_parse_reads_what_the_card_needs() -> None:
    body = notification(started=NOW - timedelta(minutes=3), n=2)
    parsed = parse(body)
    assert parsed.group_key == body["groupKey"] and parsed.status == "firing"
    assert [a.fingerprint for a in parsed.alerts] == ["fp00000000000000", "fp00000000000001"]
    alert = parsed.alerts[0]
    assert alert.labels["severity"] == "critical" and alert.annotations["summary"].startswith("helloworld fails")
    assert alert.starts_at == NOW - timedelta(minutes=3) and alert.ends_at is None  # the "zero" time is none
    assert alert.generator_url.startswith("http://prometheus.example")


@pytest.mark.parametrize("body, reason", [
    ([], "not a JSON object"),
    ({"version": "3"}, "version 4"),
    ({**notification(), "groupKey": ""}, "groupKey"),
    ({**notification(), "status": "pending"}, "neither firing nor resolved"),
    ({**notification(), "alerts": {}}, "not a list"),
    ({**notification(), "alerts": ["x"]}, "not an object"),
    ({**notification(), "groupLabels": "x"}, "groupLabels"),
])
def test_bodies_that_are_no_notification_are_refused_with_a_reason(body: object, reason: str) -> None:
    with pytest.raises(AlertPayloadError, match=reason):
        parse(body)


def test_only_the_services_alerts_are_kept() -> None:
    ns_only = notification(labels={"service": "other"})
    service_only = notification(labels={"namespace": "elsewhere"})
    neither = notification(labels={"namespace": "payments", "service": "ledger"})
    assert ours(parse(ns_only), "hello", "helloworld") is not None
    assert ours(parse(service_only), "hello", "helloworld") is not None
    assert ours(parse(neither), "hello", "helloworld") is None
    mixed = notification(n=2)
    mixed["alerts"][1]["labels"] = {"alertname": "X", "namespace": "payments"}
    assert len(ours(parse(mixed), "hello", "helloworld").alerts) == 1


def test_merge_keeps_the_highest_severity_and_the_earliest_start() -> None:
    body = notification(started=NOW - timedelta(minutes=5), n=2)
    body["alerts"][1]["labels"]["severity"] = "warning"
    group = merge(None, parse(body), NOW, "C1")
    assert (group.severity, group.starts_at, group.firing_count, group.revision) == (
        "critical", NOW - timedelta(minutes=5), 2, 1)
    later = notification(started=NOW - timedelta(minutes=1))
    later["alerts"][0]["labels"]["severity"] = "warning"
    group = merge(group, parse(later), NOW, "C1")
    assert group.severity == "warning" and group.starts_at == NOW - timedelta(minutes=5) and group.revision == 2
    resolved = merge(group, parse(notification("resolved", ended=NOW)), NOW + timedelta(minutes=1), "C1")
    assert resolved.status == "resolved" and resolved.ends_at == NOW
    assert AlertGroup.from_json(resolved.to_json()) == resolved


def test_a_stored_group_stays_far_under_an_objects_limit_whatever_the_webhook_carried() -> None:
    huge = "x" * 20000
    body = notification(key="key-" + huge, summary=huge, n=40, labels={f"label{j}": huge for j in range(40)})
    body["alerts"][0]["annotations"]["description"] = huge
    body["alerts"][0]["generatorURL"] = "http://prometheus.example/" + huge
    body["groupLabels"] = {**body["groupLabels"], "label0": huge}
    group = merge(None, parse(body), NOW, "C1")
    assert group.group_labels == {}, "labels too long to be matchers are not kept at all (never cut)"
    assert len(group.to_json()) < 16 * 1024, len(group.to_json())


def test_every_firing_group_is_kept_and_only_the_newest_resolved_ones() -> None:
    groups = []
    for i in range(400):
        status = "resolved" if i % 4 == 0 else "firing"
        groups.append(merge(None, parse(notification(status, key=f"key-{i}")), NOW + timedelta(seconds=i), "C1"))
    later = NOW + timedelta(seconds=400) + KEEP_RESOLVED + timedelta(seconds=1)
    gone = to_prune(groups, later)
    assert not [g for g in gone if g.firing], "no firing group is ever pruned"
    kept = [g for g in groups if g not in gone and not g.firing]
    assert len(kept) == KEEP_GROUPS
    assert min(g.received for g in kept) == NOW + timedelta(seconds=400 - 4 * KEEP_GROUPS)
    assert to_prune(groups, NOW + KEEP_RESOLVED) == [], "a group resolved less than KEEP_RESOLVED ago is kept"


def _entry(verb: str, minutes_before: float, version: str = "v2.3", phase: str = "Succeeded") -> SimpleNamespace:
    return SimpleNamespace(verb=verb, phase=phase, at=NOW - timedelta(minutes=minutes_before), user="U2",
                           requester="U1", facts={"version": version})


def test_the_last_changes_say_who_and_how_long_before_the_alert() -> None:
    assert change_line(_entry("Deploy", 6), NOW) == "deployed v2.3 by <@U1>, 6 min before the alert"
    lines = last_changes([_entry("Deploy", 6), _entry("Rollback", 30, "v2.2"), _entry("Deploy", 3, phase="Requested"),
                          _entry("Alert", 2)], NOW)
    assert lines == ["deployed v2.3 by <@U1>, 6 min before the alert",
                     "rolled back v2.2 by <@U1>, 30 min before the alert"]


def test_the_card_escapes_what_alertmanager_sent() -> None:
    body = notification(alertname="<!here>", summary="<http://evil|click> & *bold*")
    group = merge(None, parse(body), NOW, "C1")
    group.generator_url = "javascript:alert(1)"
    text, blocks = render_card(group, CardContext(state_error="down"), NOW)
    dumped = json.dumps(blocks) + text
    assert "<!here>" not in dumped and "<http://evil" not in dumped and "&lt;!here&gt;" in dumped
    assert "javascript:" not in dumped


PROM = ("http://prometheus.example:9090", "https://prom.staging.example")


@pytest.mark.parametrize("received", [
    "http://evil.example/graph?g0.expr=up",  # another host
    "https://prometheus.example.com@evil.example/graph?g0.expr=up",  # a user part that hides the host
    "http://prometheus.example:9090@evil.example/graph?g0.expr=up",
    "http://prometheus.example:9091/graph?g0.expr=up",  # another port
    "https://prometheus.example:9090/graph?g0.expr=up",  # another scheme
    "javascript:alert(1)", "data:text/html,hi", "", "http://prometheus.example:9090/graph",  # no expression
    "http://[::1/graph?g0.expr=up",  # unparseable
])
def test_the_prometheus_link_is_offered_only_for_the_configured_servers(received: str) -> None:
    from bot.observe.alert_card import source_link

    assert source_link(received, PROM) == ""
    group = merge(None, parse(notification(alertname="HighErrorRate")), NOW, "C1")
    group.generator_url = received
    _, blocks = render_card(group, CardContext(state_error="down", prometheus_urls=PROM), NOW)
    assert "link_alert_source" not in json.dumps(blocks) and "evil" not in json.dumps(blocks)


def test_the_prometheus_link_is_rebuilt_from_the_expression_only() -> None:
    from urllib.parse import parse_qs, urlsplit

    from bot.observe.alert_card import source_link

    received = ("https://prom.staging.example/graph?g0.expr=rate%28errors%5B5m%5D%29+%3E+0.1&g0.tab=1"
                "&evil=%3Cscript%3E#frag")
    link = source_link(received, PROM)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "prom.staging.example", "/graph")
    query = parse_qs(parts.query)
    assert query["g0.expr"] == ["rate(errors[5m]) > 0.1"] and "evil" not in query and not parts.fragment
    group = merge(None, parse(notification(alertname="HighErrorRate")), NOW, "C1")
    group.generator_url = received
    _, blocks = render_card(group, CardContext(state_error="down", prometheus_urls=PROM), NOW)
    [button] = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "link_alert_source"]
    assert button["url"] == link
