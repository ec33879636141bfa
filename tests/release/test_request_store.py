"""A release is one record, an object of its own, and the lock is an object per service and environment; records
that earlier versions stored (a request object and its release's ConfigMap; or one key of a shared ConfigMap)
are read, upgraded, and carried on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.release.record import lock_name
from tests.harness.chat import NS, Chat

# the fields a request of the previous format had (a record has its plan, progress and outcome besides)
REQUEST_FIELDS = ("id", "change", "requester", "channel", "created", "expires", "state", "ts", "approver", "decided",
                  "finished", "headline", "token", "needed", "approvals", "break_glass")


def _objects(chat: Chat, component: str) -> list[dict]:
    return [cm for cm in chat.kube.list("", "v1", "configmaps", NS)
            if cm["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]


def _record(chat: Chat, rid: str) -> dict:
    cm = chat.kube.get("", "v1", "configmaps", NS, f"{chat.config.state_configmap}-request-{rid}")
    return json.loads(cm["data"]["record.json"])


async def test_a_release_is_one_object_with_its_plan_and_the_lock_names_it(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.settle()
    [stored] = _objects(chat, "request")
    record = json.loads(stored["data"]["record.json"])
    assert stored["metadata"]["name"] == f"{chat.config.state_configmap}-request-{record['id']}"
    assert record["state"] == "pending" and record["ts"] and not record["shown"]
    assert [s["kind"] for s in record["steps"]] == ["set_image", "wait_ready"]  # the plan, computed once
    [lock] = _objects(chat, "lock")
    assert lock["metadata"]["name"] == f"{chat.config.state_configmap}-lock"
    assert json.loads(lock["data"]["lock.json"]) == {"holder": record["id"], "queue": [], "who": {}}
    assert chat.kube.get("", "v1", "configmaps", NS, chat.config.state_configmap) is None  # no shared document

    await chat.click("U2", request, "approve")
    await chat.finished(request)
    await chat.settle()
    [stored] = _objects(chat, "request")  # the release is the same record, carried to its end
    done = json.loads(stored["data"]["record.json"])
    assert done["state"] == "succeeded" and done["reported"] and done["shown"] and done["approver"] == "U2"
    assert [s["state"] for s in done["steps"]] == ["done", "done"] and done["outcome"]["ok"]
    assert not [cm for cm in chat.kube.list("", "v1", "configmaps", NS)
                if cm["metadata"]["name"].startswith("hello-chatops-release-")]  # no second object


def test_lock_names_are_valid_object_names_and_distinct() -> None:
    names = {lock_name("hello-chatops-state", key) for key in
             [("", ""), ("greeter", "production"), ("greeter", "staging"), ("Greeter", "production")]}
    assert len(names) == 4
    assert all(len(n) <= 253 and n == n.lower() and n.replace("-", "").isalnum() for n in names)


async def test_requests_of_the_shared_configmap_are_adopted_with_their_lock(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.settle()
    # as the earliest versions stored it: one key per request in the shared ConfigMap, and no lock object
    [stored] = _objects(chat, "request")
    current = json.loads(stored["data"]["record.json"])
    rid = current["id"]
    old = json.dumps({k: current[k] for k in REQUEST_FIELDS})
    for cm in _objects(chat, "request") + _objects(chat, "lock"):
        chat.kube.delete("", "v1", "configmaps", NS, cm["metadata"]["name"])
    chat.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": chat.config.state_configmap, "namespace": NS},
                     "data": {f"request.{rid}": old}})

    assert await chat.stack.services.approvals.store.adopt_legacy() == [rid]
    assert await chat.stack.services.approvals.store.adopt_legacy() == []  # once
    assert chat.kube.get("", "v1", "configmaps", NS, chat.config.state_configmap) is None
    assert [s["kind"] for s in _record(chat, rid)["steps"]] == ["set_image", "wait_ready"]
    await chat.send("U1", "/hello deploy v3")  # the adopted request holds the lock
    await chat.private("U1", "One change at a time")
    await chat.click("U2", request, "approve")
    await chat.finished(request)
    assert chat.container()["image"] == chat.image("v2")


async def test_a_release_running_when_the_bot_is_upgraded_is_carried_on_from_its_two_old_objects(
        chat: Chat) -> None:
    """The previous format: a request object (``request.json``) running, and its release's own ConfigMap
    (``hello-chatops-release-<id>``) with its first step begun by a replica of the old version."""
    await chat.send("U1", '/hello deploy v2 "the login fix"')
    request = await chat.approval()
    await chat.settle()
    [stored] = _objects(chat, "request")
    current = json.loads(stored["data"]["record.json"])
    rid, now = current["id"], datetime.now(UTC).isoformat()
    steps = current["steps"]
    steps[0].update(state="running", started=now, runs=1)
    chat.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": f"hello-chatops-release-{rid}", "namespace": NS,
                                  "labels": {"app.kubernetes.io/component": "release"}},
                     "data": {"release.json": json.dumps({
                         "id": rid, "action": "deploy", "label": "Deploy", "summary": current["change"]["summary"],
                         "params": current["change"]["params"], "steps": steps, "requester": "U1", "approver": "U2",
                         "channel": current["channel"], "ts": current["ts"], "state": "running", "created": now,
                         "finished": "", "driver": "bot-old", "heartbeat": now, "problem": "", "problem_since": "",
                         "outcome": None, "reported": False, "reason": "the login fix"})}})
    old = {k: current[k] for k in REQUEST_FIELDS}
    old.update(state="running", approver="U2", decided=now, approvals=["U2"], token="t")
    chat.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": stored["metadata"]["name"], "namespace": NS,
                                  "labels": stored["metadata"]["labels"]},
                     "data": {"request.json": json.dumps(old)}})

    final = await chat.finished(request)  # the leader reads it, upgrades it and drives it from where it was
    await chat.settle()
    assert "runs `v2`" in final.text and "approved by <@U2>" in str(final.blocks)
    assert chat.container()["image"] == chat.image("v2")
    cm = chat.kube.get("", "v1", "configmaps", NS, stored["metadata"]["name"])
    assert set(cm["data"]) == {"record.json"}  # upgraded in place
    record = json.loads(cm["data"]["record.json"])
    assert record["state"] == "succeeded" and record["steps"][0]["runs"] == 2  # begun again, idempotently
    assert record["began"] == now and record["change"]["reason"] == "the login fix"
    assert chat.kube.get("", "v1", "configmaps", NS, f"hello-chatops-release-{rid}") is None
    assert len(chat.audit_events("HelloDeploySucceeded")) == 1


async def test_a_record_is_deleted_only_as_it_was_read(chat: Chat) -> None:
    # the repair deletes a stray record only unchanged since it looked (a precondition on the delete)
    await chat.send("U1", "/hello deploy v2")
    await chat.approval()
    await chat.settle()
    store = chat.stack.services.approvals.store
    (record,) = (await store.load()).values()
    name = store.name(record.id)

    def changed_meanwhile(_: Any) -> bool:
        cm = chat.kube.get("", "v1", "configmaps", NS, name)
        chat.kube.apply({**cm, "data": {**cm["data"], "note": "written by another replica"}})
        return True

    assert not await store.delete(record.id, only_if=changed_meanwhile)
    assert not await store.delete(record.id, only_if=lambda _: False)
    assert await store.get(record.id) is not None
    assert await store.delete(record.id, only_if=lambda _: True)
    assert await store.get(record.id) is None
    assert await store.delete(record.id, only_if=lambda _: True)  # none left
