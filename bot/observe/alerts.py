"""Alerts from Alertmanager: the webhook's payload parsed, alert groups stored, one card per group.

Alertmanager posts a notification (webhook body version "4") to ``POST /alertmanager`` each time an
alert group starts firing, changes, repeats or resolves. :func:`parse` turns the body into a
:class:`Notification` (pure; raises :class:`AlertPayloadError` with a short reason for a body it
cannot use). An alert belongs to the service when its labels name the service's namespace
(``namespace`` == ``HELLO_NAMESPACE``) or the service (``service`` == the stable Deployment's name);
the others are ignored with a log line.

With a catalogue of several services (``HELLO_SERVICES``) an alert belongs to the catalogue's service
and environment (a *pair*) that :func:`place_of` finds: the environment's namespace is the alert's
``namespace`` label and, when the alert carries them, its ``cluster`` / ``environment`` label is the
environment's name and its ``service`` / ``deployment`` label is the service's stable or canary
Deployment (or the service's name). Alerts of no pair are ignored with a log line; a group whose
alerts do not all fall on one and the same pair is *ambiguous* (:func:`group_place`): its card goes
to ``HELLO_ALERT_CHANNEL`` (the default target) and acts on no service. A group of one pair is posted
in the service's first channel, names the service and environment, and its buttons act on them.

Alert groups live in the ConfigMap :data:`CONFIGMAP` (one key ``group.<id>`` per Alertmanager group
key, JSON; the :data:`KEEP_GROUPS` most recently changed are kept, firing ones first, and every text
in them is cut, so the ConfigMap stays far under its 1 MiB limit), written only through the
compare-and-swap :class:`~bot.cluster.store.ConfigMapStore`. That write decides who posts the card:
the first notification of a group stores a *claim*; of several replicas receiving the same
notification exactly one wins it and posts, the others find the claim, wait for the winner's message
ts and edit that message. Repeats edit the card; ``resolved`` turns it green with the duration.

For the bake window (and anyone else), :class:`AlertStore` answers what fires now::

    store = services.alerts.store          # or AlertStore(services.cluster)
    for group in await store.firing():     # list[AlertGroup], oldest first
        group.key        # Alertmanager's group key (str)
        group.status     # "firing"
        group.severity   # highest severity of its alerts: "critical" > "warning" > "info" > ""
        group.alertname  # str
        group.starts_at  # datetime (UTC): when its earliest alert started
        group.channel, group.ts   # the card (ts "" until posted)

:meth:`AlertStore.get`, :meth:`AlertStore.groups` and :meth:`AlertStore.change` read and change
single groups (the card's buttons use them).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.chat.messenger import SlackError
from bot.chat.supervise import Supervisor
from bot.cluster.kube import Cluster
from bot.cluster.store import ConfigMapStore
from bot.core import times
from bot.core.errors import ClusterError, CommandError, DependencyUnavailable, PermissionDenied
from bot.core.retry import Backoff, never, retry
from bot.core.target import Target
from bot.core.text import cut, foreign
from bot.core.times import iso, parse_time

if TYPE_CHECKING:
    from bot.core.catalogue import Catalogue
    from bot.core.policy import Policy
    from bot.core.services import Services

log = logging.getLogger(__name__)

CONFIGMAP = "hello-chatops-alerts"
PREFIX = "group."
KEEP_GROUPS = 30
KEEP_ALERTS = 20  # alerts kept per group (the card says how many there were in all)
TEXT_LIMIT = 400  # characters kept of an annotation
GROUP_LABELS_LIMIT = 2048  # bytes of JSON: Alertmanager groups by a few short labels
SEVERITY_RANK = {"critical": 4, "error": 3, "warning": 2, "info": 1}
CLAIM_GRACE = timedelta(seconds=30)  # a claim without a posted card is taken over after this
WAIT_FOR_CARD = 35.0  # seconds a replica that lost the claim waits for the winner's message
SILENCE_MINUTES = 60


class AlertPayloadError(ValueError):
    """The webhook body is not a usable Alertmanager notification; the message says why (our words only)."""


# ---------------------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str = ""

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


@dataclass(frozen=True)
class Notification:
    group_key: str
    status: str
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertPayloadError(f"{what} is not an object")
    return {str(k): str(v) for k, v in value.items()}


def _time(value: Any) -> datetime | None:
    """Alertmanager's RFC 3339 times; its "zero" time (``0001-01-01T00:00:00Z``) means none."""
    if not value or not isinstance(value, str) or value.startswith("0001-"):
        return None
    return parse_time(value)


def parse(payload: Any) -> Notification:
    """A webhook body (decoded JSON) as a :class:`Notification`; raises :class:`AlertPayloadError`."""
    if not isinstance(payload, dict):
        raise AlertPayloadError("the body is not a JSON object")
    if payload.get("version") != "4":
        raise AlertPayloadError("not an Alertmanager webhook of version 4")
    key = payload.get("groupKey")
    if not isinstance(key, str) or not key:
        raise AlertPayloadError("no groupKey")
    status = payload.get("status")
    if status not in ("firing", "resolved"):
        raise AlertPayloadError("status is neither firing nor resolved")
    raw_alerts = payload.get("alerts")
    if not isinstance(raw_alerts, list):
        raise AlertPayloadError("alerts is not a list")
    alerts = []
    for raw in raw_alerts:
        if not isinstance(raw, dict):
            raise AlertPayloadError("an alert is not an object")
        alerts.append(Alert(
            fingerprint=str(raw.get("fingerprint") or ""),
            status="resolved" if raw.get("status") == "resolved" else "firing",
            labels=_strings(raw.get("labels"), "an alert's labels"),
            annotations=_strings(raw.get("annotations"), "an alert's annotations"),
            starts_at=_time(raw.get("startsAt")), ends_at=_time(raw.get("endsAt")),
            generator_url=str(raw.get("generatorURL") or ""),
        ))
    truncated = payload.get("truncatedAlerts")
    return Notification(
        group_key=key, status=status, receiver=str(payload.get("receiver") or ""),
        group_labels=_strings(payload.get("groupLabels"), "groupLabels"),
        common_labels=_strings(payload.get("commonLabels"), "commonLabels"),
        common_annotations=_strings(payload.get("commonAnnotations"), "commonAnnotations"),
        external_url=str(payload.get("externalURL") or ""), alerts=tuple(alerts),
        truncated_alerts=truncated if isinstance(truncated, int) and truncated > 0 else 0,
    )


def belongs(alert: Alert, namespace: str, service: str) -> bool:
    """Whether ``alert`` is about the service: its ``namespace`` or ``service`` label names it."""
    return alert.labels.get("namespace") == namespace or alert.labels.get("service") == service


def ours(notification: Notification, namespace: str, service: str) -> Notification | None:
    """The notification with only the service's alerts, or None when none of them is the service's."""
    kept = tuple(a for a in notification.alerts if belongs(a, namespace, service))
    if not kept:
        return None
    if len(kept) == len(notification.alerts):
        return notification
    return Notification(**{**notification.__dict__, "alerts": kept})


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


def place_of(labels: dict[str, str], catalogue: Catalogue) -> Place | None:
    """The pair an alert belongs to (pure): None when none matches, :data:`AMBIGUOUS` when several do.

    The ``namespace`` label must be an environment's namespace; ``cluster`` / ``environment``, when the
    alert carries them, must equal the environment's name; ``service`` / ``deployment``, when carried,
    must be the service's stable or canary Deployment or its catalogue name.
    """
    namespace = labels.get("namespace", "")
    if not namespace:
        return None
    found = [(s, e) for s, e in catalogue.pairs() if e.namespace == namespace]
    for key in ENVIRONMENT_LABELS:
        if labels.get(key):
            found = [(s, e) for s, e in found if e.name == labels[key]]
    for key in SERVICE_LABELS:
        if labels.get(key):
            found = [(s, e) for s, e in found
                     if labels[key] in (s.stable_deployment, s.canary_deployment, s.name)]
    if not found:
        return None
    if len(found) > 1:
        return AMBIGUOUS
    service, env = found[0]
    return Place(service=service.name, environment=env.name)


def group_place(alerts: tuple[Alert, ...] | list[Alert], catalogue: Catalogue) -> Place:
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


def scope(alerts: tuple[Alert, ...] | list[Alert]) -> dict[str, str]:
    """The :data:`SCOPE_LABELS` every one of the alerts carries with the same value (pure)."""
    out: dict[str, str] = {}
    for key in SCOPE_LABELS:
        values = {a.labels.get(key, "") for a in alerts}
        if len(values) == 1 and "" not in values:
            out[key] = values.pop()
    return out


def group_id(group_key: str) -> str:
    """A ConfigMap-key-safe id for an Alertmanager group key."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:16]


def highest(severities: list[str]) -> str:
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0), default="")


# ---------------------------------------------------------------------------------------- storing
@dataclass
class AlertGroup:
    """One Alertmanager alert group as stored (and as its card shows it)."""

    id: str
    key: str
    status: str
    alertname: str
    severity: str
    starts_at: datetime
    ends_at: datetime | None = None
    channel: str = ""
    ts: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # compact: see _compact
    alert_count: int = 0
    firing_count: int = 0
    summary: str = ""
    description: str = ""
    generator_url: str = ""
    received: datetime | None = None  # the last notification
    notifications: int = 0
    revision: int = 0  # grows with every change the card should show
    claim: str = ""  # the token of the replica that posts the card
    claimed: datetime | None = None
    acknowledged: list[dict[str, str]] = field(default_factory=list)  # [{"user", "at"}]
    silence: dict[str, str] = field(default_factory=dict)  # {"id", "user", "until"}
    chart: bool = False  # the chart was uploaded (or said to be unavailable) in the card's thread
    release_note: str = ""  # what a release did about this alert (its bake window rolled back), mrkdwn
    # several services: the catalogue's pair the group belongs to ("" for both: ambiguous, or one service)
    service: str = ""
    environment: str = ""
    ambiguous: bool = False
    scope: dict[str, str] = field(default_factory=dict)  # namespace / cluster labels its alerts share

    @property
    def place(self) -> Place | None:
        """Its pair (several services), :data:`AMBIGUOUS`, or None (one service: no catalogue file)."""
        if self.service:
            return Place(service=self.service, environment=self.environment)
        return AMBIGUOUS if self.ambiguous else None

    def silence_matchers(self) -> dict[str, str]:
        """What Silence 1h matches: the group's labels, and the namespace (and cluster) its alerts share."""
        if not self.group_labels:
            return {}
        return {**self.group_labels, **self.scope}

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("starts_at", "ends_at", "received", "claimed"):
            data[name] = iso(getattr(self, name))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AlertGroup:
        data = json.loads(text)
        for name in ("starts_at", "ends_at", "received", "claimed"):
            data[name] = parse_time(data.get(name))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _compact(alert: Alert) -> dict[str, Any]:
    """What is kept of one alert: enough to tell the alerts of a group apart (the card shows the group)."""
    return {
        "fingerprint": alert.fingerprint[:40], "status": alert.status,
        "instance": cut(alert.labels.get("instance", ""), 80),
        "starts_at": iso(alert.starts_at), "ends_at": iso(alert.ends_at),
    }


def _group_labels(labels: dict[str, str]) -> dict[str, str]:
    """The group's labels exactly (they become a silence's matchers), or {} when they are unreasonably long."""
    if len(json.dumps(labels)) > GROUP_LABELS_LIMIT:
        return {}
    return dict(labels)


def merge(group: AlertGroup | None, notification: Notification, now: datetime, channel: str,
          place: Place | None = None) -> AlertGroup:
    """The group after ``notification`` (pure): a new group, or the stored one brought up to date.

    ``place`` (several services): the pair the notification's alerts belong to, kept with the group;
    the channel is the one of its first notification (the card stays where it was posted).
    """
    alerts = notification.alerts
    firing = [a for a in alerts if a.status == "firing"]
    starts = [a.starts_at for a in alerts if a.starts_at is not None]
    ends = [a.ends_at for a in alerts if a.ends_at is not None]
    first = alerts[0] if alerts else None
    shown = firing[0] if firing else first
    annotations = {**(shown.annotations if shown else {}), **notification.common_annotations}
    if group is None:
        group = AlertGroup(id=group_id(notification.group_key), key=notification.group_key, status="firing",
                           alertname="", severity="", starts_at=min(starts, default=now), channel=channel)
    group.status = notification.status
    group.alertname = cut(notification.common_labels.get("alertname")
                          or notification.group_labels.get("alertname")
                          or (first.labels.get("alertname", "") if first else "") or "alert", 120)
    group.severity = highest([a.severity for a in (firing or list(alerts))]) or group.severity
    if starts:
        group.starts_at = min([*starts, group.starts_at])
    group.ends_at = max(ends) if notification.status == "resolved" and ends else (
        now if notification.status == "resolved" else None)
    group.group_labels = _group_labels(notification.group_labels)
    group.alerts = [_compact(a) for a in alerts[:KEEP_ALERTS]]
    group.alert_count = len(alerts) + notification.truncated_alerts
    group.firing_count = len(firing)
    group.summary = cut(annotations.get("summary", ""), TEXT_LIMIT)
    group.description = cut(annotations.get("description", ""), TEXT_LIMIT)
    group.generator_url = (shown.generator_url if shown else "")[:1000]
    group.received = now
    group.notifications += 1
    group.revision += 1
    if place is not None:
        group.service, group.environment, group.ambiguous = place.service, place.environment, place.ambiguous
        group.scope = scope(alerts)
    return group


def _pruned(groups: dict[str, AlertGroup]) -> list[AlertGroup]:
    """The groups worth keeping: firing ones first, then the most recently changed, at most KEEP_GROUPS."""
    never = datetime.min.replace(tzinfo=UTC)
    ranked = sorted(groups.values(), key=lambda g: (g.firing, g.received or never), reverse=True)
    return ranked[:KEEP_GROUPS]


class AlertStore:
    """The alert groups in the ConfigMap :data:`CONFIGMAP`, changed only by compare-and-swap."""

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], name: str = CONFIGMAP) -> None:
        self._store = ConfigMapStore(cluster, name)
        self.name = name

    @staticmethod
    def _groups(data: dict[str, str]) -> dict[str, AlertGroup]:
        out: dict[str, AlertGroup] = {}
        for key, value in data.items():
            if key.startswith(PREFIX):
                try:
                    group = AlertGroup.from_json(value)
                except (ValueError, TypeError, KeyError):
                    log.warning("ignoring unreadable alert group %s in configmaps/%s", key, CONFIGMAP)
                    continue
                out[group.id] = group
        return out

    async def groups(self) -> list[AlertGroup]:
        """Every stored group, newest first."""
        never = datetime.min.replace(tzinfo=UTC)
        found = self._groups(await self._store.read() or {})
        return sorted(found.values(), key=lambda g: g.received or never, reverse=True)

    async def firing(self) -> list[AlertGroup]:
        """The groups firing now (as Alertmanager last said), oldest first."""
        return sorted((g for g in await self.groups() if g.firing), key=lambda g: g.starts_at)

    async def get(self, group: str) -> AlertGroup | None:
        """A group by its id (:func:`group_id`) or its Alertmanager group key."""
        found = self._groups(await self._store.read() or {})
        return found.get(group) or found.get(group_id(group))

    async def transact(self, decide: Callable[[dict[str, AlertGroup]], tuple[Any, bool]]) -> Any:
        """Read, let ``decide`` change the groups (returning (result, changed)), write; redone on a conflict."""

        def mutate(data: dict[str, str]) -> Any:
            groups = self._groups(data)
            result, changed = decide(groups)
            if changed:
                for key in [k for k in data if k.startswith(PREFIX)]:
                    del data[key]
                data.update({PREFIX + g.id: g.to_json() for g in _pruned(groups)})
            return result

        return await self._store.update(mutate)

    async def change(self, group: str, apply: Callable[[AlertGroup], Any]) -> Any:
        """Apply ``apply`` to one stored group (it may raise to change nothing); None when it is unknown."""

        def decide(groups: dict[str, AlertGroup]) -> tuple[Any, bool]:
            found = groups.get(group)
            if found is None:
                return None, False
            return apply(found), True

        return await self.transact(decide)


# ---------------------------------------------------------------------------------------- cards
@dataclass
class Received:
    """What :meth:`AlertCards.receive` stored: the group and whether this replica posts its card."""

    group: AlertGroup
    post: bool
    token: str
    arrived: float  # time.perf_counter() when the webhook arrived


class AlertCards:
    """The bot's side of Alertmanager: store notifications, post and edit the cards, the card's buttons.

    ``services.alerts`` is one of these; ``/alertmanager`` calls :meth:`accept` (pure) and
    :meth:`receive` (the store) before answering, then :meth:`show` runs after the answer.
    """

    def __init__(self, services: Services, *, clock: Callable[[], datetime] | None = None,
                 wait_for_card: float = WAIT_FOR_CARD) -> None:
        self.services = services
        self.clock = clock or times.now
        self.store = AlertStore(services.cluster)
        self.wait_for_card = wait_for_card
        self.supervisor = Supervisor()
        self._locks: dict[str, asyncio.Lock] = {}
        self.posted_seconds: list[float] = []  # webhook arrived -> card posted, per card this replica posted

    # -- the webhook
    def accept(self, payload: Any) -> Notification | None:
        """Parse a webhook body (raises :class:`AlertPayloadError`); None when no alert is the service's."""
        notification = parse(payload)
        if self.services.targets.named:
            return self._accept_several(notification)
        config = self.services.config
        kept = ours(notification, config.namespace, config.stable_deployment)
        if kept is None or len(kept.alerts) < len(notification.alerts):
            names = sorted({cut(a.labels.get("alertname", "?"), 60) for a in notification.alerts
                            if not belongs(a, config.namespace, config.stable_deployment)})
            log.info("ignoring %d alert(s) not about %s in namespace %s: %s",
                     len(notification.alerts) - (len(kept.alerts) if kept else 0), config.stable_deployment,
                     config.namespace, ", ".join(names)[:200])
        return kept

    def _accept_several(self, notification: Notification) -> Notification | None:
        """:meth:`accept` with a catalogue of several services: the alerts of some pair (:func:`place_of`)."""
        catalogue = self.services.catalogue
        assert catalogue is not None
        kept = tuple(a for a in notification.alerts if place_of(a.labels, catalogue) is not None)
        if len(kept) < len(notification.alerts):
            names = sorted({cut(a.labels.get("alertname", "?"), 60) for a in notification.alerts if a not in kept})
            log.info("ignoring %d alert(s) of no service and environment of the catalogue: %s",
                     len(notification.alerts) - len(kept), ", ".join(names)[:200])
        if not kept:
            return None
        if len(kept) == len(notification.alerts):
            return notification
        return Notification(**{**notification.__dict__, "alerts": kept})

    def place(self, notification: Notification) -> Place | None:
        """The pair a notification's group belongs to (several services), else None."""
        if not self.services.targets.named or self.services.catalogue is None:
            return None
        return group_place(notification.alerts, self.services.catalogue)

    def channel_for(self, place: Place | None) -> str:
        """Where a group's card goes: its service's first channel, else ``HELLO_ALERT_CHANNEL`` (or the first
        ops channel); an ambiguous group always goes there."""
        if place is not None and place.service and self.services.catalogue is not None:
            channels = self.services.catalogue.service(place.service).channels
            if channels:
                return channels[0]
        return self.services.config.alert_target

    def target_of(self, group: AlertGroup) -> Target:
        """The group's service and environment (the bot's own without one)."""
        if group.service and self.services.targets.named:
            return self.services.target(group.service, group.environment)
        return self.services.targets.default

    async def receive(self, notification: Notification, arrived: float | None = None) -> Received | None:
        """Store the notification; returns what to show, or None when no channel is configured."""
        arrived = time.perf_counter() if arrived is None else arrived
        place = self.place(notification)
        channel = self.channel_for(place)
        if not channel:
            log.warning("alert %s not posted: no channel (set HELLO_ALERT_CHANNEL or HELLO_OPS_CHANNELS)",
                        cut(notification.group_labels.get("alertname", "?"), 60))
            return None
        now = self.clock()
        token = uuid.uuid4().hex

        def decide(groups: dict[str, AlertGroup]) -> tuple[tuple[AlertGroup, bool], bool]:
            gid = group_id(notification.group_key)
            group = merge(groups.get(gid), notification, now, channel, place)
            groups[gid] = group
            post = False
            if not group.ts and (not group.claim or (group.claimed and now - group.claimed > CLAIM_GRACE)):
                group.claim, group.claimed, post = token, now, True
            return (group, post), True

        group, post = await self.store.transact(decide)
        return Received(group=group, post=post, token=token, arrived=arrived)

    @property
    def tasks(self) -> set[asyncio.Task]:
        """The cards being posted or edited."""
        return self.supervisor.tasks

    def spawn(self, received: Received) -> asyncio.Task:
        """Post or edit the card of ``received`` after Alertmanager has had its answer (supervised)."""
        return self.supervisor.spawn(self.show(received), f"alert_card {received.group.id}", kind="alert_card")

    async def drain(self, timeout: float = 30.0) -> None:
        await self.supervisor.drain(timeout)

    async def show(self, received: Received) -> None:
        """Post the card (the claim's winner) or edit it (everyone else); never raises."""
        try:
            if received.post:
                await self._post(received)
            else:
                await self._edit_when_posted(received)
        except Exception:
            log.exception("cannot show the card of alert group %s", received.group.id)

    def _lock(self, gid: str) -> asyncio.Lock:
        return self._locks.setdefault(gid, asyncio.Lock())

    async def _post(self, received: Received) -> None:
        gid = received.group.id
        async with self._lock(gid):
            group = await self.store.get(gid)
            if group is None:
                return
            mine = group.claim == received.token and not group.ts
            if mine and not await self._post_card(group, received):
                return
        if not mine:
            await self._edit_when_posted(received)
            return
        await self._chart(gid)

    async def _post_card(self, group: AlertGroup, received: Received) -> bool:
        """Post the card of a group this replica claimed; False (claim given back) when Slack refuses."""
        gid = group.id
        text, blocks = await self.card(group)
        try:
            ts = await self.services.messenger.post(group.channel, text, blocks)
        except SlackError as exc:
            log.warning("cannot post the card of alert %s in %s: %s", gid, group.channel, exc.error)

            def release(g: AlertGroup) -> None:
                if g.claim == received.token and not g.ts:
                    g.claim, g.claimed = "", None

            await self.store.change(gid, release)
            return False
        seconds = time.perf_counter() - received.arrived
        self.posted_seconds.append(seconds)
        log.info("alert card %s posted in %s %.3f s after the webhook arrived", gid, group.channel, seconds)
        await self.store.change(gid, lambda g: setattr(g, "ts", g.ts or ts))
        await self._refresh(gid, shown=group.revision)
        return True

    async def _edit_when_posted(self, received: Received) -> None:
        """Edit the card once the replica that claimed it has posted it; post it here if that replica is gone.

        Looks again after 0.05 s, growing by half up to 0.5 s, for ``wait_for_card`` seconds at most."""
        gid = received.group.id

        async def settled() -> bool:
            group = await self.store.get(gid)
            if group is None:
                return True
            if group.ts:
                async with self._lock(gid):
                    await self._refresh(gid)
                return True
            now = self.clock()
            if group.claimed is None or now - group.claimed > CLAIM_GRACE:  # the winner is gone: take over
                token = uuid.uuid4().hex

                def take(g: AlertGroup) -> bool:
                    if g.ts or (g.claimed is not None and now - g.claimed <= CLAIM_GRACE):
                        return False
                    g.claim, g.claimed = token, now
                    return True

                if await self.store.change(gid, take):
                    await self._post(Received(group=group, post=True, token=token, arrived=received.arrived))
                    return True
            return False

        waiting = Backoff(first=0.05, factor=1.5, most=0.5, attempts=None, patience=self.wait_for_card)
        if not await retry(settled, backoff=waiting, when=never, until=bool):
            log.warning("alert card %s was never posted by the replica that claimed it", gid)

    async def _refresh(self, gid: str, shown: int = -1) -> None:
        """Edit the card until it shows the stored group's latest revision."""
        for _ in range(5):
            group = await self.store.get(gid)
            if group is None or not group.ts or group.revision == shown:
                return
            text, blocks = await self.card(group)
            try:
                await self.services.messenger.update(group.channel, group.ts, text, blocks)
            except SlackError as exc:
                log.warning("cannot edit the card of alert %s: %s", gid, exc.error)
                return
            shown = group.revision

    async def _chart(self, gid: str) -> None:
        """The chart around the alert's start, in the card's thread; says so when Prometheus cannot draw it."""
        group = await self.store.get(gid)
        if group is None or not group.ts or group.chart:
            return
        from bot.observe import alert_card

        note = ""
        png: bytes | None = None
        try:
            png = await alert_card.chart(self.services, group, self.clock())
            if png is None:
                note = "No traffic around the alert's start: no chart."
        except DependencyUnavailable as exc:
            note = f"No chart: {foreign(str(exc), 200)}"
        except Exception:
            log.exception("cannot draw the chart of alert %s", gid)
            note = "The chart could not be drawn."
        messenger = self.services.messenger
        try:
            if png is not None:
                await messenger.upload(group.channel, png, f"alert-{gid}.png",
                                       f"{group.alertname} around {alert_card.when(group.starts_at)}",
                                       thread_ts=group.ts)
            else:
                await messenger.post(group.channel, note, thread_ts=group.ts)
        except SlackError as exc:
            log.warning("cannot upload the chart of alert %s: %s", gid, exc.error)
            return
        await self.store.change(gid, lambda g: setattr(g, "chart", True))

    async def card(self, group: AlertGroup) -> tuple[str, list[dict]]:
        from bot.observe import alert_card

        context = await alert_card.gather(self.services, group)
        return alert_card.render_card(group, context, self.clock())

    # -- buttons
    async def from_card(self, gid: str, channel: str, ts: str) -> AlertGroup:
        """The group whose card was clicked; refuses a click from any other message (right after posting
        the card's ts may not be stored yet: then the clicked one, in the card's channel, is taken)."""
        group = await self.store.get(gid)
        if group is None:
            raise CommandError("This alert is not known any more: nothing was changed.")
        if channel != group.channel or not ts or (group.ts and ts != group.ts):
            raise PermissionDenied("This click did not come from the alert's card: nothing was changed.")
        return group

    async def checked(self, gid: str, channel: str, ts: str,
                      check: Callable[[Policy], Awaitable[None]]) -> AlertGroup:
        """The clicked group (:meth:`from_card`) after ``check`` of the policy of its service and environment
        (one service: the bot's policy, checked before the card is looked at, as ever)."""
        if not self.services.targets.named:
            await check(self.services.policy)
            return await self.from_card(gid, channel, ts)
        group = await self.from_card(gid, channel, ts)
        await check(self.target_of(group).policy)
        return group

    async def acknowledge(self, gid: str, user: str, channel: str, ts: str) -> None:
        """Record that ``user`` looks at the alert; the card shows it."""
        group = await self.checked(gid, channel, ts, lambda policy: policy.check_read(user))
        now = self.clock()

        def ack(g: AlertGroup) -> None:
            if all(a.get("user") != user for a in g.acknowledged):
                g.acknowledged = [*g.acknowledged, {"user": user, "at": iso(now)}][-5:]
                g.revision += 1

        await self.store.change(gid, ack)
        await self._audit("Acknowledged", group, user, "looking at it")
        async with self._lock(gid):
            await self._refresh(gid)

    async def note_release(self, alertname: str, note: str, service: str = "", environment: str = "") -> int:
        """A release acted on an alert (the bake window rolled back): the cards of its firing groups say so.

        ``service`` / ``environment`` (several services): only the groups of that pair. Returns how many
        cards were given the note; ``note`` is bot-written mrkdwn.
        """
        groups = [g for g in await self.store.firing() if g.alertname == alertname
                  and (not service or (g.service, g.environment) == (service, environment))]
        for group in groups:

            def mark(g: AlertGroup) -> None:
                if g.release_note != note:
                    g.release_note, g.revision = note, g.revision + 1

            await self.store.change(group.id, mark)
            async with self._lock(group.id):
                await self._refresh(group.id)
        return len(groups)

    async def silence(self, gid: str, user: str, channel: str, ts: str, minutes: int = SILENCE_MINUTES) -> str:
        """Silence the group's alerts for ``minutes`` through Alertmanager's API v2; returns the silence id."""
        from bot.observe import alertmanager

        group = await self.checked(gid, channel, ts,
                                   lambda policy: policy.check_change(user, channel, "silence alerts"))
        url = self.services.config.alertmanager_url
        if not url:
            raise CommandError("Silencing needs the Alertmanager's address: set HELLO_ALERTMANAGER_URL.")
        matchers = group.silence_matchers()
        if not matchers:
            raise CommandError("This alert group's labels are too long to silence from Slack: silence it in "
                               "Alertmanager. Nothing was changed.")
        now = self.clock()
        until = now + timedelta(minutes=minutes)
        try:
            silence_id = await alertmanager.create_silence(
                url, matchers, now, until, created_by=f"{user} (hello-chatops)",
                comment=f"silenced from Slack by {user} for {minutes} min (alert group {gid})")
        except DependencyUnavailable as exc:
            raise CommandError(f"Alertmanager did not create the silence: {foreign(str(exc), 200)}. "
                               "Nothing was changed.") from None

        def note(g: AlertGroup) -> None:
            g.silence = {"id": silence_id, "user": user, "until": iso(until)}
            g.revision += 1

        await self.store.change(gid, note)
        await self._audit("Silenced", group, user, f"for {minutes} min until {until:%H:%M} UTC",
                          {"silence": silence_id, "minutes": minutes})
        async with self._lock(gid):
            await self._refresh(gid)
        return silence_id

    async def _audit(self, phase: str, group: AlertGroup, user: str, note: str,
                     facts: dict[str, Any] | None = None) -> None:
        audit = self.services.audit
        if audit is None or not hasattr(audit, "record_alert"):
            return
        try:
            summary = f"alert {foreign(group.alertname, 80)} ({foreign(group.severity or 'no severity', 20)})"
            await audit.record_alert(phase, user=user, summary=summary,
                                     group=group.id, channel=group.channel, note=note, facts=facts or {})
        except (ClusterError, DependencyUnavailable):
            log.exception("cannot audit %s of alert %s", phase, group.id)
