"""Requests are objects of their own and the lock is an object per service and environment; requests that an
earlier version kept in one shared ConfigMap are adopted with their lock."""

from __future__ import annotations

import json

from bot.release.requests import lock_name
from tests.harness.chat import NS, Chat


def _objects(chat: Chat, component: str) -> list[dict]:
    return [cm for cm in chat.kube.list("", "v1", "configmaps", NS)
            if cm["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]


async def test_a_request_is_an_object_of_its_own_and_the_lock_names_it(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    await chat.approval()
    await chat.settle()
    [stored] = _objects(chat, "request")
    record = json.loads(stored["data"]["request.json"])
    assert stored["metadata"]["name"] == f"{chat.config.state_configmap}-request-{record['id']}"
    assert record["state"] == "pending" and record["ts"]
    [lock] = _objects(chat, "lock")
    assert lock["metadata"]["name"] == f"{chat.config.state_configmap}-lock"
    assert json.loads(lock["data"]["lock.json"]) == {"holder": record["id"], "queue": []}
    assert chat.kube.get("", "v1", "configmaps", NS, chat.config.state_configmap) is None  # no shared document


def test_lock_names_are_valid_object_names_and_distinct() -> None:
    names = {lock_name("hello-chatops-state", key) for key in
             [("", ""), ("greeter", "production"), ("greeter", "staging"), ("Greeter", "production")]}
    assert len(names) == 4
    assert all(len(n) <= 253 and n == n.lower() and n.replace("-", "").isalnum() for n in names)


async def test_requests_of_the_shared_configmap_are_adopted_with_their_lock(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    await chat.settle()
    # as an earlier version stored it: one key per request in the shared ConfigMap, and no lock object
    [stored] = _objects(chat, "request")
    record = stored["data"]["request.json"]
    rid = json.loads(record)["id"]
    for cm in _objects(chat, "request") + _objects(chat, "lock"):
        chat.kube.delete("", "v1", "configmaps", NS, cm["metadata"]["name"])
    chat.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": chat.config.state_configmap, "namespace": NS},
                     "data": {f"request.{rid}": record}})

    assert await chat.stack.services.approvals.store.adopt_legacy() == [rid]
    assert await chat.stack.services.approvals.store.adopt_legacy() == []  # once
    assert chat.kube.get("", "v1", "configmaps", NS, chat.config.state_configmap) is None
    await chat.send("U1", "/hello deploy v3")  # the adopted request holds the lock
    await chat.private("U1", "One change at a time")
    await chat.click("U2", request, "approve")
    await chat.finished(request)
    assert chat.container()["image"] == chat.image("v2")
