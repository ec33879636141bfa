"""Where an alert belongs in a catalogue of several services (pure).

With a catalogue (``HELLO_SERVICES``) an alert belongs to the catalogue's service and environment (a
*pair*) that :func:`place_of` finds: the environment's namespace is the alert's ``namespace`` label and,
when the alert carries them, its ``cluster`` / ``environment`` label is the environment's name and its
``service`` / ``deployment`` label is the service's stable or canary Deployment (or the service's name).
A group whose alerts do not all fall on one and the same pair is *ambiguous* (:func:`group_place`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.observe.alert_payload import Alert

if TYPE_CHECKING:
    from bot.core.catalogue import Catalogue, Environment, Service

ENVIRONMENT_LABELS = ("cluster", "environment")  # equal to the environment's name when an alert carries them
SERVICE_LABELS = ("service", "deployment")  # the service's stable or canary Deployment (or its name)
SCOPE_LABELS = ("namespace", *ENVIRONMENT_LABELS)  # added to a silence's matchers when the whole group shares them


@dataclass(frozen=True)
class Place:
    """Where an alert (or a group) belongs in a catalogue of several services.

    ``service`` and ``environment`` name one pair; ``ambiguous``: several pairs match (or the group's
    alerts fall on different ones), so it is nobody's in particular.
    """

    service: str = ""
    environment: str = ""
    ambiguous: bool = False

    @property
    def label(self) -> str:
        """"greeter (production)", or "" when ambiguous."""
        return f"{self.service} ({self.environment})" if self.service else ""


AMBIGUOUS = Place(ambiguous=True)


def candidates(labels: dict[str, str], catalogue: Catalogue) -> list[tuple[Service, Environment]]:
    """Every pair of the catalogue an alert with ``labels`` fits (see :func:`place_of`)."""
    namespace = labels.get("namespace", "")
    if not namespace:
        return []
    found = [(s, e) for s, e in catalogue.pairs() if e.namespace == namespace]
    for key in ENVIRONMENT_LABELS:
        if labels.get(key):
            found = [(s, e) for s, e in found if e.name == labels[key]]
    for key in SERVICE_LABELS:
        if labels.get(key):
            found = [(s, e) for s, e in found
                     if labels[key] in (s.stable_deployment, s.canary_deployment, s.name)]
    return found


def place_of(labels: dict[str, str], catalogue: Catalogue) -> Place | None:
    """The pair an alert belongs to (pure): None when none matches, :data:`AMBIGUOUS` when several do.

    The ``namespace`` label must be an environment's namespace; ``cluster`` / ``environment``, when the
    alert carries them, must equal the environment's name; ``service`` / ``deployment``, when carried,
    must be the service's stable or canary Deployment or its catalogue name.
    """
    found = candidates(labels, catalogue)
    if not found:
        return None
    if len(found) > 1:
        return AMBIGUOUS
    service, env = found[0]
    return Place(service=service.name, environment=env.name)


def pairs_of(alerts: Sequence[Alert], catalogue: Catalogue) -> list[list[str]]:
    """Every ``[service, environment]`` any of a group's alerts fits: whose rights an action on its card needs."""
    found = {(s.name, e.name) for a in alerts for s, e in candidates(a.labels, catalogue)}
    return [list(pair) for pair in sorted(found)]


def group_place(alerts: Sequence[Alert], catalogue: Catalogue) -> Place:
    """The pair of a group's alerts (all of which belong to some pair): theirs when it is one and the same,
    else :data:`AMBIGUOUS` (never a guess)."""
    places = {place_of(a.labels, catalogue) for a in alerts}
    if len(places) == 1:
        [place] = places
        if place is not None:
            return place
    return AMBIGUOUS


def bakes(labels: dict[str, str], catalogue: Catalogue, service: str, environment: str) -> bool:
    """Whether an alert counts in the bake window of a release of ``service`` in ``environment`` (pure).

    Only an alert of exactly that pair (:func:`place_of`) counts: with environments that share a namespace
    name it must carry ``cluster`` or ``environment`` equal to the release's environment, so an alert of
    staging (or one that does not say where it fired) never rolls back production.
    """
    return place_of(labels, catalogue) == Place(service=service, environment=environment)


def spread(alerts: Sequence[Alert]) -> dict[str, list[str]]:
    """The :data:`ENVIRONMENT_LABELS` some of the alerts carry, but not all with one value: their values
    ("" for an alert without it), for a silence that matches those and no other (pure)."""
    out: dict[str, list[str]] = {}
    for key in ENVIRONMENT_LABELS:
        values = {a.labels.get(key, "") for a in alerts}
        if len(values) > 1:
            out[key] = sorted(values)
    return out


def scope(alerts: Sequence[Alert]) -> dict[str, str]:
    """The :data:`SCOPE_LABELS` every one of the alerts carries with the same value (pure)."""
    out: dict[str, str] = {}
    for key in SCOPE_LABELS:
        values = {a.labels.get(key, "") for a in alerts}
        if len(values) == 1 and "" not in values:
            out[key] = values.pop()
    return out
