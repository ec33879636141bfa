"""The audit trail: one record per request, decision and outcome of a change.

Each record is written three ways:

- a Kubernetes Event on the object the change is about (the Deployment, Mapping or Certificate),
  reason ``Hello<Verb><Phase>`` (e.g. ``HelloDeployApproved``), ``source.component: hello-chatops``,
  label ``app.kubernetes.io/managed-by: hello-chatops`` and the full record as JSON in the
  ``hello-chatops/audit`` annotation, so :meth:`Audit.recent` can read the trail back from the
  cluster;
- one JSON log line on the ``bot.audit`` logger (``extra={"audit": {...}}``);
- a line in the audit channel(s), when ``HELLO_AUDIT_CHANNEL`` is set.

Every record carries the change's reason as the requester gave it (``change_reason``; the key
``reason`` is the Event's reason, ``HelloDeployApproved``): in the JSON, in the Event's message
(``… because "fix the login bug"``) and in the audit channel's line.

A request's outcome (``Succeeded``, ``Failed``) is recorded once: its Event is named after the request and
the outcome, so a driver that takes over from one that died while writing it finds it there and neither
writes, logs nor posts it again.

A failure to write one of them is logged and never stops the change being audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.chat.messenger import Messenger, SlackError
from bot.core import times
from bot.core.audit_entry import AuditEntry as Entry
from bot.core.errors import ClusterError, Conflict, DependencyUnavailable
from bot.core.target import Target, Targets
from bot.core.text import foreign
from bot.core.times import iso, parse_time

if TYPE_CHECKING:
    from bot.core.config import Config
    from bot.release.approvals import Record

log = logging.getLogger("bot.release.audit")

COMPONENT = "hello-chatops"
MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION = "hello-chatops/audit"
SELECTOR = f"{MANAGED_BY}={COMPONENT}"
# Which changes become chart markers, and of what kind.
MARKER_KINDS = {"Deploy": "deploy", "Canary": "canary", "Rollback": "rollback", "Promote": "promote",
                "Abort": "canary", "EnvPromote": "deploy"}
MARKER_WORDS = {"EnvPromote": "promoted"}  # a marker's first word, when not the verb in lower case
WARNING_PHASES = ("Failed", "Rejected", "Expired")
OUTCOMES = ("Succeeded", "Failed")  # a request's outcome: recorded once, whoever reports it


class Audit:
    """The audit trail (:class:`bot.core.ports.AuditTrail`): records written, entries (:class:`Entry`) read back.

    ``targets`` say where a record's Event goes and which namespaces are read back; ``config`` names the audit
    channels and the bot's own objects; ``messenger`` posts to those channels.
    """

    def __init__(self, config: Config, messenger: Messenger, targets: Targets, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config, self.messenger, self.targets = config, messenger, targets
        self.clock = clock or times.now

    async def record(self, phase: str, record: Record, *, user: str, note: str = "",
                     facts: dict[str, Any] | None = None, target: Target | None = None) -> dict[str, Any]:
        """Audit ``phase`` (Requested, Approved, Rejected, Expired, Succeeded, Failed) of a request; its Event goes
        to ``target`` (the request's, resolved here from its names when the caller has not)."""
        change = record.change
        entry = {
            "at": iso(self.clock()),
            "reason": f"Hello{change.verb}{phase}",
            "verb": change.verb,
            "action": change.action,
            "phase": phase,
            "user": user,
            "requester": record.requester,
            "approver": record.approver,
            "summary": change.summary,
            "request_id": record.id,
            "channel": record.channel,
            "object": f"{change.target.get('kind', '')}/{change.target.get('name', '')}",
            "note": note,
            "change_reason": change.reason,
            "service": change.service,
            "environment": change.environment,
            "facts": {**{k: v for k, v in change.params.facts().items() if isinstance(v, str | int)}, **(facts or {})},
        }
        where = target or self.targets.get(change.service, change.environment)
        return await self._write(entry, change.target, where, once=phase in OUTCOMES)

    async def record_alert(self, phase: str, *, user: str, summary: str, group: str, channel: str,
                           note: str = "", facts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Audit what someone did from an alert card (``Silenced``, ``Acknowledged``): reason ``HelloAlert<Phase>``."""
        deployment = self.config.stable_deployment
        entry = self._action("Alert", phase, user=user, summary=summary, request_id=f"alert-{group}",
                             channel=channel, object=f"Deployment/{deployment}", note=note, facts=facts)
        return await self._write(entry, {"kind": "Deployment", "name": deployment})

    async def record_hold(self, verb: str, phase: str, *, user: str, summary: str, channel: str,
                          change_reason: str = "", facts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Audit a lock or freeze set or lifted in chat (``verb`` Lock | Freeze, ``phase`` Set | Lifted).

        Reason ``Hello<Verb><Phase>`` (``HelloFreezeSet``); the Event is on the holds ConfigMap.
        """
        name = self.config.holds_configmap
        entry = self._action(verb, phase, user=user, summary=summary,
                             request_id=f"{verb.lower()}-{secrets.token_hex(4)}", channel=channel,
                             object=f"ConfigMap/{name}", facts=facts, action=verb.lower(),
                             change_reason=change_reason)
        return await self._write(entry, {"apiVersion": "v1", "kind": "ConfigMap", "name": name})

    def _action(self, verb: str, phase: str, *, user: str, summary: str, request_id: str, channel: str,
                object: str, note: str = "", facts: dict[str, Any] | None = None, **more: str) -> dict[str, Any]:
        """The record of something a person did in chat that is not a change request (no approver)."""
        return {
            "at": iso(self.clock()),
            "reason": f"Hello{verb}{phase}",
            "verb": verb,
            "phase": phase,
            "user": user,
            "requester": user,
            "approver": "",
            "summary": summary,
            "request_id": request_id,
            "channel": channel,
            "object": object,
            "note": note,
            **more,
            "facts": {k: v for k, v in (facts or {}).items() if isinstance(v, str | int)},
        }

    async def _write(self, entry: dict[str, Any], obj: dict[str, str], where: Target | None = None, *,
                     once: bool = False) -> dict[str, Any]:
        """Write the record's Event, log the record and post it to the audit channel.

        With ``once`` (a request's outcome) the Event's name is the request's and the phase's, so the record
        is made once even when a driver that died while writing it is followed by another: whoever finds
        the Event already there neither logs nor posts it again.
        """
        if not await self._event(entry, obj, where or self.targets.default, once=once):
            log.info("%s %s: recorded already", entry["reason"], entry["request_id"])
            return entry
        log.info("%s %s by %s: %s", entry["reason"], entry["request_id"], entry["user"], entry["summary"],
                 extra={"audit": entry})
        await self._post(entry)
        return entry

    async def _event(self, entry: dict[str, Any], target: dict[str, str], where: Target, *,
                     once: bool = False) -> bool:
        """The audit Event, in the namespace (and cluster) of the object the change is about (``where``); False
        when a record made ``once`` is there already."""
        config = where.config
        stamp = entry["at"][:19] + "Z"
        name = target.get("name") or config.stable_deployment
        suffix = f"{entry['request_id']}.{entry['phase']}".lower() if once else secrets.token_hex(8)
        message = f"{entry['verb']} {entry['phase'].lower()} by {entry['user']}: {entry['summary']}"
        if entry["note"]:
            message += f" ({entry['note']})"
        if entry.get("change_reason"):
            message += f' because "{entry["change_reason"]}"'
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{name}.{suffix}",
                "namespace": config.namespace,
                "labels": {MANAGED_BY: COMPONENT, "hello-chatops/request": entry["request_id"] or "none"},
                "annotations": {ANNOTATION: _json(entry)},
            },
            "involvedObject": {"apiVersion": target.get("apiVersion", "apps/v1"),
                               "kind": target.get("kind", "Deployment"), "name": name,
                               "namespace": config.namespace},
            "reason": entry["reason"],
            "message": message[:1024],
            "type": "Warning" if entry["phase"] in WARNING_PHASES else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": config.identity or COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            cluster = await where.cluster()
            await cluster.events.create(body)
        except Conflict as exc:
            if once and exc.reason == "AlreadyExists":
                return False
            log.warning("cannot write the audit Event %s: %s", entry["reason"], exc)
        except ClusterError as exc:
            log.warning("cannot write the audit Event %s: %s", entry["reason"], exc)
        return True

    async def _post(self, entry: dict[str, Any]) -> None:
        channels = [c for c in self.config.audit_channel.split(",") if c]
        if not channels:
            return
        text = (f":memo: `{entry['reason']}` by <@{entry['user']}>: {entry['summary']}"
                + (f" — {entry['note']}" if entry["note"] else "")
                + (f" — reason: “{foreign(entry['change_reason'], 300)}”" if entry.get("change_reason") else "")
                + f" (request `{entry['request_id']}`)")
        for channel in channels:
            try:
                await self.messenger.post(channel, text[:3000])
            except SlackError as exc:
                log.warning("cannot post to the audit channel %s: %s", channel, exc)

    async def entries(self, target: Target | None = None) -> list[Entry]:
        """Every audit record kept in the Events of a target's namespace (default the bot's own), newest first, as
        the API server has them now (what a decision reads: a promotion's soak)."""
        cluster = await (target or self.targets.default).cluster()
        return _entries(await cluster.events.list(SELECTOR))

    async def shown(self, target: Target | None = None) -> list[Entry]:
        """:meth:`entries` for display only (Home, the last changes, history, delivery figures, chart markers):
        from the namespace's watch cache of the audit Events once it has listed and while its watch is kept (no
        API read; a record written a moment ago, by this replica or another, may show a moment later), else
        from the API server. The cache holds the Events the API server keeps (they expire, an hour by default,
        and leave the cache too), so both show the same records."""
        cluster = await (target or self.targets.default).cluster()
        return _entries(await cluster.events.shown(SELECTOR))

    async def everywhere(self) -> tuple[list[Entry] | None, list[str]]:
        """The audit records of every service in every environment (each cluster and namespace read once, from its
        watch cache when it has one: :meth:`shown`), newest first, and what could not be read; ``None`` when
        nothing could be read at all. For display only.

        Without a catalogue file this is :meth:`shown` of the bot's own namespace.
        """
        places: dict[tuple[str, bool, str], Target] = {}
        for target in [self.targets.default, *self.targets.every()]:  # one read per cluster and namespace
            config = target.config
            places.setdefault((config.kube_context, config.kube_in_cluster, config.namespace), target)
        problems: list[str] = []

        async def read(target: Target) -> list[Entry]:
            config = target.config
            try:
                return await self.shown(target)
            except DependencyUnavailable as exc:
                where = config.namespace + (f" in {config.kube_context}" if config.kube_context else "")
                problems.append(f"audit trail of {where}: {exc}")
                return []

        parts = await asyncio.gather(*(read(t) for t in places.values()))
        if len(problems) == len(places):
            return None, problems  # nothing read: no figures rather than figures of nothing
        seen, out = set(), []
        for entry in (e for part in parts for e in part):
            key = (entry.at, entry.reason, entry.request_id, entry.summary)
            if key not in seen:
                seen.add(key)
                out.append(entry)
        out.sort(key=lambda e: e.at, reverse=True)
        return out, problems

    async def recent(self, n: int = 20, target: Target | None = None) -> list[Entry]:
        """The ``n`` newest audit records of ``target`` (default the bot's own), newest first, for display
        (:meth:`shown`)."""
        return (await self.shown(target))[:n]

    async def markers(self, start: datetime, end: datetime, target: Target | None = None) -> list[Any]:
        """Chart markers (:class:`bot.charts.Marker`) for the changes that finished between start and end."""
        from bot.observe.charts import Marker

        out = []
        for entry in reversed(await self.shown(target)):
            kind = MARKER_KINDS.get(entry.verb)
            if kind is None or entry.phase not in ("Succeeded", "Failed") or not start <= entry.at <= end:
                continue
            version = entry.facts.get("version") or ""
            word = MARKER_WORDS.get(entry.verb, entry.verb.lower())
            label = " ".join(p for p in (word, str(version)) if p)
            if entry.verb == "Canary" and "percent" in entry.facts:
                label += f" {entry.facts['percent']}%"
            if entry.phase == "Failed":
                label += " (failed)"
            out.append(Marker(at=entry.at, label=label, kind=kind))
        return out


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _entries(events: list[dict]) -> list[Entry]:
    """The audit records of ``events`` (the API's JSON), newest first."""
    out = [entry for entry in map(_entry, events) if entry is not None]
    out.sort(key=lambda e: e.at, reverse=True)
    return out


def _entry(event: dict) -> Entry | None:
    raw = ((event.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    data: dict[str, Any] = {}
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
    at = parse_time(data.get("at")) or parse_time(event.get("lastTimestamp")) \
        or parse_time((event.get("metadata") or {}).get("creationTimestamp"))
    if at is None:
        return None
    inv = event.get("involvedObject") or {}
    return Entry(
        at=at, reason=str(event.get("reason", data.get("reason", ""))), verb=str(data.get("verb", "")),
        phase=str(data.get("phase", "")), user=str(data.get("user", "")),
        summary=str(data.get("summary", event.get("message", ""))), request_id=str(data.get("request_id", "")),
        object=str(data.get("object") or f"{inv.get('kind', '')}/{inv.get('name', '')}"),
        note=str(data.get("note", "")), facts=dict(data.get("facts") or {}),
        message=str(event.get("message") or ""), requester=str(data.get("requester", "")),
        change_reason=str(data.get("change_reason") or ""),
        action=str(data.get("action") or ""),
        service=str(data.get("service") or ""), environment=str(data.get("environment") or ""),
    )
