"""Things going wrong: a broken image, API faults, a failing certificate issuance."""

from __future__ import annotations

import json
from typing import Any

Chat = Any


async def test_a_broken_image_is_reported_then_rolled_back(release: Any) -> None:
    # progressDeadlineSeconds 600 x 0.003 = 1.8 s in the emulator
    async with release(kube={"deadline_scale": 0.003}) as chat:
        first = chat.container()["image"]
        failed = await chat.approve("U1", "/hello deploy v3-broken")
        assert "The rollout of `v3-broken` failed" in failed.text
        blocks = str(failed.blocks)
        assert "ProgressDeadlineExceeded" in blocks
        assert "BackOff" in blocks
        assert chat.button(failed, "release_rollback") is not None
        assert chat.audit_events("HelloDeployFailed")

        await chat.click("U1", failed, "release_rollback")
        request = await chat.approval(exclude=[failed.ts])
        await chat.click("U2", request, "approve")
        final = await chat.finished(request)
        await chat.settle()
        assert "back on" in final.text
        assert chat.container()["image"] == first
        await chat.rolled_out()


async def test_a_stall_is_reported_without_waiting_for_the_deadline(release: Any) -> None:
    async with release(env={"HELLO_ROLLOUT_STALL": "1"}) as chat:
        failed = await chat.approve("U1", "/hello deploy v4-broken")
        assert "no progress for 1s" in str(failed.blocks)
        assert chat.button(failed, "release_rollback") is not None


async def test_conflicts_and_server_errors_are_retried(chat: Chat) -> None:
    chat.kube.add_fault(verb="patch", resource="deployments", status=500, count=2)
    chat.kube.add_fault(verb="update", resource="configmaps", status=409, count=2)
    chat.kube.add_fault(verb="get", resource="deployments", status=503, count=1)
    final = await chat.approve("U1", "/hello deploy v2")
    assert "runs `v2`" in final.text
    assert chat.container()["image"] == chat.image("v2")
    assert len(chat.audit_events("HelloDeployApproved")) == 1


async def test_a_half_done_canary_says_so_and_offers_abort(chat: Chat) -> None:
    chat.kube.add_fault(verb="patch", resource="mappings", status=500, count=None)
    failed = await chat.approve("U1", "/hello canary v2 10%")
    blocks = str(failed.blocks)
    assert "stopped half-way" in failed.text
    assert "Done: image `" in blocks and "ready" in blocks
    assert "Not done: weight 10%" in blocks
    assert chat.deployment("helloworld-canary")["spec"]["replicas"] == chat.config.canary_replicas
    assert chat.button(failed, "release_abort") is not None

    chat.kube.clear_faults()
    await chat.click("U1", failed, "release_abort")  # abort needs no approval
    await chat.message_saying("aborted")
    await chat.settle()
    assert chat.deployment("helloworld-canary")["spec"]["replicas"] == 0
    assert chat.mapping()["spec"]["weight"] == 0


async def test_raising_the_weight_without_a_ready_canary_is_refused(chat: Chat) -> None:
    await chat.send("U1", "/hello canary 30%")
    await chat.private("U1", "no ready pod")
    await chat.settle()
    assert chat.slack.messages("C1") == []
    assert chat.mapping()["spec"]["weight"] == 0


async def test_a_failed_renewal_is_reported_with_the_back_off(chat: Chat) -> None:
    await chat.rolled_out()
    await chat.issued()
    revision = int((chat.certificate().get("status") or {}).get("revision") or 0)
    chat.kube.cert_failures = 1
    failed = await chat.approve("U1", "/hello cert renew")
    blocks = str(failed.blocks)
    assert "was not re-issued: the issuance failed" in failed.text
    assert "failed attempts in a row: 1" in blocks
    assert "backs off and tries again at" in blocks
    status = chat.certificate()["status"]
    assert int(status.get("revision") or 0) == revision
    assert status.get("lastFailureTime")
    events = chat.audit_events("HelloCertRenewFailed")
    assert events and events[0]["type"] == "Warning"


async def test_a_kubernetes_5xx_is_an_error_with_a_reference_not_a_refusal(chat: Chat) -> None:
    from bot.chat import metrics

    def errors() -> float:
        return metrics.COMMANDS.labels(command="cert", outcome="error")._value.get()

    before = errors()
    chat.kube.add_fault(verb="get", resource="certificates", status=500, count=None)
    await chat.send("U3", "/hello cert")
    said = await chat.private("U3", "Reference:")
    assert "certificates" in said.text
    await chat.settle()
    assert errors() == before + 1


async def _stalled(chat: Chat, fault: dict[str, Any]) -> None:
    """Approve a deploy whose record meets ``fault`` from the approval on (its driver's writes): its message says
    it waits, then stops saying so."""
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    name = f"hello-chatops-state-request-{chat.button(request, 'approve')['value']}"
    approved: list[bool] = []

    def on_change(kind: str, obj: dict) -> None:  # the emulator's own hook: the fault is in place before any reply
        if (obj.get("metadata") or {}).get("name") == name and not approved \
                and json.loads((obj.get("data") or {}).get("record.json") or "{}").get("state") == "running":
            approved.append(True)
            chat.kube.add_fault(verb="update", resource="configmaps", name=name, **fault)

    unsubscribe = chat.kube.subscribe(on_change)
    await chat.click("U2", request, "approve")
    said = await chat.wait(lambda m: getattr(m, "ts", "") == request.ts
                           and "waits on the cluster" in json.dumps(m.blocks), 25)
    assert "trying again since" in json.dumps(said.blocks)
    unsubscribe()
    chat.kube.clear_faults()
    final = await chat.finished(request)
    assert "runs `v2`" in final.text and "waits on the cluster" not in json.dumps(final.blocks)


async def test_conflicts_that_keep_the_release_from_being_stored_are_said_after_10_s(chat: Chat) -> None:
    await _stalled(chat, {"status": 409, "count": None})


async def test_an_answer_slower_than_10_s_is_said_while_it_is_awaited(chat: Chat) -> None:
    await _stalled(chat, {"status": None, "delay": 13.0, "count": 1})
