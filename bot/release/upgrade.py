"""Reading the records of earlier versions, so that an upgrade loses nothing in flight.

- **Format 2**: a request was an object of its own (``<prefix>-request-<id>``, key ``request.json``, the same
  object a record lives in now) and, once approved, its release was another ConfigMap,
  ``hello-chatops-release-<id>`` (key ``release.json``: the steps and their progress, the driver, the
  outcome). The first read of such a request (:func:`request_object`) makes it one record: the request's
  fields, the release's steps and progress (or, for a request never approved, its plan computed now), written
  in place by compare-and-swap; then the release's ConfigMap is deleted.
- **Format 1**: every request was a key ``request.<id>`` of one shared ConfigMap ``<prefix>``. At start
  (:func:`shared`), each becomes a record of its own and the open ones take their lock or place as they had
  it; the keys are removed (and the ConfigMap with them when nothing else is left).

Both are idempotent: a replica cut short halfway leaves work that the next read (or start) finishes.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from bot.core.errors import Conflict
from bot.release.lifecycle import FINISHED, PENDING, QUEUED, RUNNING
from bot.release.plan import Outcome, Step
from bot.release.record import FORMAT, Record, enqueue, seat

if TYPE_CHECKING:
    from bot.release.records import Records

log = logging.getLogger(__name__)

OLD_RELEASE_PREFIX = "hello-chatops-release-"  # format 2: the ConfigMap of a release
OLD_KEY = "request.json"  # format 2: the request's key in its object
OLD_RELEASE_KEY = "release.json"  # format 2: the release's key in its ConfigMap
SHARED_PREFIX = "request."  # format 1: the keys of requests in the one shared ConfigMap


def from_request(text: str, release: dict[str, Any] | None, records: Records) -> Record:
    """A record from a request of format 1 or 2 and its release of format 2 (``None``: never approved)."""
    record = Record.from_json(text)  # the request's fields are a record's; it had no steps, progress or outcome
    record.format = FORMAT
    record.shown = record.state in FINISHED  # its message was edited by the version that ended it
    if release is None:
        record.steps = records.plan(record.change)
        return record
    record.steps = [Step.from_dict(s) for s in release.get("steps") or []] or records.plan(record.change)
    record.began = str(release.get("created") or record.decided)
    record.approver = record.approver or str(release.get("approver") or "")
    for name in ("driver", "heartbeat", "problem", "problem_since"):
        setattr(record, name, str(release.get(name) or ""))
    record.outcome = Outcome.from_dict(release["outcome"]) if release.get("outcome") else None
    record.reported = bool(release.get("reported"))
    return record


async def request_object(records: Records, name: str, text: str) -> Record | None:
    """Upgrade a request object of format 2 (and its release's ConfigMap) to one record, in place."""
    try:
        rid = str(json.loads(text)["id"])
        cluster = await records.cluster()
        old = await cluster.configmaps.get(OLD_RELEASE_PREFIX + rid)
        release = json.loads(old["data"][OLD_RELEASE_KEY]) if old and OLD_RELEASE_KEY in (old.get("data") or {}) \
            else None
        record = from_request(text, release, records)
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring the unreadable request %s", name)
        return None

    def write(data: dict[str, str]) -> str:
        if "record.json" not in data:  # not upgraded meanwhile by another replica
            data["record.json"] = record.to_json()
            data.pop(OLD_KEY, None)
        return data["record.json"]

    stored = Record.from_json(await records.replace_raw(name, write))
    await records.delete_other(OLD_RELEASE_PREFIX + rid)
    log.info("request %s upgraded to a record of its own (state %s)", rid, stored.state)
    return stored


async def shared(records: Records) -> list[str]:
    """Adopt the requests of format 1 (keys ``request.<id>`` of the shared ConfigMap ``<prefix>``); their ids."""
    cluster = await records.cluster()
    cm = await cluster.configmaps.get(records.prefix)
    data = dict((cm or {}).get("data") or {})
    found: list[Record] = []
    for key, text in data.items():
        if key.startswith(SHARED_PREFIX):
            try:
                found.append(from_request(text, None, records))
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring the unreadable request %s of %s", key, records.prefix)
    for record in sorted(found, key=lambda r: r.created):
        try:
            await records.create(record)
        except Conflict:  # adopted already, by this replica before it stopped or by another one
            pass
        if record.state in (PENDING, RUNNING):
            await records.update_lock(record.key, lambda lock, rid=record.id: seat(lock, rid))
        elif record.state == QUEUED:
            await records.update_lock(record.key, lambda lock, rid=record.id: enqueue(lock, rid))
    if found:
        def drop(values: dict[str, str]) -> None:
            for key in [k for k in values if k.startswith(SHARED_PREFIX)]:
                del values[key]

        await records.replace_raw(records.prefix, drop)
        left = await cluster.configmaps.get(records.prefix)
        if left is not None and not left.get("data"):
            await cluster.configmaps.delete(records.prefix)
    return [r.id for r in sorted(found, key=lambda r: r.created)]
