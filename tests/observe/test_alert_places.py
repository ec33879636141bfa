"""Which service and environment of a catalogue an alert belongs to (pure): the card's channel and buttons,
the silence's matchers and the bake window all follow from it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from bot.core import catalogue_file
from bot.core.catalogue import Catalogue
from bot.observe import alert_card
from bot.observe.alert_group import merge
from bot.observe.alert_payload import Alert, parse
from bot.observe.alert_places import AMBIGUOUS, Place, bakes, group_place, pairs_of, place_of

CATALOGUE = """
services:
  - name: helloworld
    environments:
      - {name: staging, namespace: hello}
      - {name: production, namespace: hello}
  - name: greeter
    environments:
      - {name: staging, namespace: greeter-staging}
      - {name: production, namespace: greeter}
  - name: welcome
    deployments: {stable: welcome-web, canary: welcome-web-canary}
    environments:
      - {name: production, namespace: greeter}
"""
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return catalogue_file.parse(yaml.safe_load(CATALOGUE), source="services.yaml")


@pytest.mark.parametrize(("labels", "expected"), [
    ({"namespace": "hello", "cluster": "production"}, Place("helloworld", "production")),
    ({"namespace": "hello", "environment": "staging"}, Place("helloworld", "staging")),
    ({"namespace": "hello", "cluster": "staging", "service": "helloworld"}, Place("helloworld", "staging")),
    ({"namespace": "greeter-staging"}, Place("greeter", "staging")),  # its namespace is the environment's own
    ({"namespace": "greeter", "service": "welcome-web"}, Place("welcome", "production")),
    ({"namespace": "greeter", "deployment": "welcome-web-canary"}, Place("welcome", "production")),
    ({"namespace": "greeter", "service": "welcome"}, Place("welcome", "production")),  # the catalogue's name
    ({"namespace": "greeter", "deployment": "greeter-canary"}, Place("greeter", "production")),
    # several pairs fit: nobody's in particular
    ({"namespace": "hello"}, AMBIGUOUS),  # staging and production share the namespace name
    ({"namespace": "greeter"}, AMBIGUOUS),  # greeter and welcome share the namespace
    ({"namespace": "greeter", "cluster": "production"}, AMBIGUOUS),
    # no pair fits: ignored
    ({"namespace": "payments"}, None),
    ({"service": "helloworld"}, None),  # no namespace
    ({}, None),
    ({"namespace": "hello", "cluster": "qa"}, None),
    ({"namespace": "hello", "cluster": "production", "environment": "staging"}, None),
    ({"namespace": "greeter", "service": "redis"}, None),
    ({"namespace": "hello", "cluster": "staging", "service": "greeter"}, None),
])
def test_an_alert_belongs_to_the_one_pair_its_labels_fit(catalogue: Catalogue, labels: dict[str, str],
                                                          expected: Place | None) -> None:
    assert place_of(labels, catalogue) == expected


def _alert(**labels: str) -> Alert:
    return Alert(fingerprint="f", status="firing", labels={"alertname": "X", **labels}, annotations={},
                 starts_at=None, ends_at=None)


def test_a_group_has_a_pair_only_when_every_alert_has_the_same_one(catalogue: Catalogue) -> None:
    prod = _alert(namespace="hello", cluster="production", instance="a")
    assert group_place([prod, _alert(namespace="hello", cluster="production", instance="b")], catalogue) == \
        Place("helloworld", "production")
    assert group_place([prod, _alert(namespace="hello", cluster="staging")], catalogue) is AMBIGUOUS
    assert group_place([prod, _alert(namespace="hello")], catalogue) is AMBIGUOUS
    assert Place("greeter", "production").label == "greeter (production)" and AMBIGUOUS.label == ""


def test_the_bake_window_counts_only_alerts_of_exactly_the_release_s_pair(catalogue: Catalogue) -> None:
    def counts(labels: dict[str, str], service: str, environment: str) -> bool:
        return bakes(labels, catalogue, service, environment)

    # a shared namespace name: only the release's environment, said by the alert, counts
    assert counts({"namespace": "hello", "cluster": "production"}, "helloworld", "production")
    assert not counts({"namespace": "hello", "cluster": "staging"}, "helloworld", "production")
    assert not counts({"namespace": "hello"}, "helloworld", "production"), "an alert that says not where counts not"
    assert not counts({"namespace": "hello", "cluster": "production"}, "helloworld", "staging")
    # a namespace of its own needs no cluster label
    assert counts({"namespace": "greeter-staging"}, "greeter", "staging")
    assert not counts({"namespace": "greeter-staging"}, "greeter", "production")
    # a namespace two services share needs the service
    assert not counts({"namespace": "greeter"}, "greeter", "production")
    assert counts({"namespace": "greeter", "service": "greeter"}, "greeter", "production")
    assert not counts({"namespace": "greeter", "service": "welcome-web"}, "greeter", "production")


def _notification(*labels: dict[str, str], group: dict[str, str] | None = None) -> dict:
    return {"version": "4", "groupKey": "k", "status": "firing", "groupLabels": group or {"alertname": "X"},
            "commonLabels": {}, "alerts": [
                {"status": "firing", "labels": {"alertname": "X", "severity": "critical", **one},
                 "annotations": {}, "startsAt": "2026-12-01T11:58:00Z", "fingerprint": f"fp{i}"}
                for i, one in enumerate(labels)]}


def test_a_group_keeps_its_pair_and_silences_match_its_namespace_and_cluster(catalogue: Catalogue) -> None:
    notification = parse(_notification({"namespace": "hello", "cluster": "production", "instance": "a"},
                                       {"namespace": "hello", "cluster": "production", "instance": "b"}))
    group = merge(None, notification, NOW, "CHELLO", group_place(notification.alerts, catalogue))
    assert (group.service, group.environment, group.ambiguous) == ("helloworld", "production", False)
    assert group.place == Place("helloworld", "production")
    assert group.silence_matchers() == [("alertname", "X", False), ("cluster", "production", False),
                                        ("namespace", "hello", False)]
    again = type(group).from_json(group.to_json())
    assert again.place == group.place and again.silence_matchers() == group.silence_matchers()

    mixed = parse(_notification({"namespace": "hello", "cluster": "production"}, {"namespace": "hello",
                                                                                  "cluster": "staging"}))
    ambiguous = merge(None, mixed, NOW, "C1", group_place(mixed.alerts, catalogue))
    assert ambiguous.place is AMBIGUOUS and not ambiguous.service
    assert ambiguous.silence_matchers() == [("alertname", "X", False), ("namespace", "hello", False),
                                            ("cluster", "production|staging", True)], "those clusters, no other"

    # one service (no catalogue file): no pair; the silence matches the group's labels and where its alerts fire
    alone = merge(None, notification, NOW, "C1")
    assert alone.place is None and alone.silence_matchers() == [
        ("alertname", "X", False), ("cluster", "production", False), ("namespace", "hello", False)]
    unlabelled = merge(None, parse(_notification({"instance": "a"})), NOW, "C1")
    assert unlabelled.silence_matchers() == [("alertname", "X", False)]


def test_the_card_names_the_pair_and_an_ambiguous_card_offers_no_rollback(catalogue: Catalogue) -> None:
    notification = parse(_notification({"namespace": "greeter", "service": "greeter", "cluster": "production"}))
    group = merge(None, notification, NOW, "CGREET", group_place(notification.alerts, catalogue))
    one = alert_card.render_card(group, alert_card.CardContext(), NOW)
    text, blocks = alert_card.render_card(group, alert_card.CardContext(where="greeter (production)"), NOW)
    assert "greeter (production)" in blocks[0]["text"]["text"] and text.endswith("— greeter (production)")
    assert blocks[0]["text"]["text"].startswith(one[1][0]["text"]["text"]), "the one-service header, plus the pair"
    assert "greeter (production)" not in json.dumps(one[1])
    assert "alert_rollback" in json.dumps(blocks)

    text, blocks = alert_card.render_card(group, alert_card.CardContext(ambiguous=True), NOW)
    shown = json.dumps(blocks)
    assert "service and environment not known" in blocks[0]["text"]["text"]
    assert "alert_rollback" not in shown and "alert_abort" not in shown
    assert "alert_silence" in shown and "alert_ack" in shown


def test_an_ambiguous_group_keeps_every_pair_its_alerts_fit(catalogue: Catalogue) -> None:
    mixed = parse(_notification({"namespace": "hello", "cluster": "production"}, {"namespace": "hello",
                                                                                  "cluster": "staging"}))
    group = merge(None, mixed, NOW, "C1", group_place(mixed.alerts, catalogue), pairs_of(mixed.alerts, catalogue))
    assert group.place is AMBIGUOUS
    assert type(group).from_json(group.to_json()).pairs == [["helloworld", "production"], ["helloworld", "staging"]]
