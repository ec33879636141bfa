"""Analysed canaries in chat: the steps, a check that cannot judge, a person's Continue and Abort.

Prometheus is not running here, so every check is inconclusive ("no metrics"): the release holds the
weight and, after HELLO_ANALYSIS_MAX_INCONCLUSIVE checks, asks a person. The judge's own decisions on
real numbers are tested in test_judge.py and end to end against the real Prometheus in
tests/e2e/test_canary_analysis.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness.chat import Chat

ENV = {"HELLO_ANALYSIS_INTERVAL": "1s", "HELLO_CANARY_STEPS": "10,20", "HELLO_ANALYSIS_MAX_INCONCLUSIVE": "1"}


def _blocks(message: Any) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


async def _asking(chat: Chat, ts: str, percent: int) -> Any:
    return await chat.wait(lambda m: m.ts == ts and chat.button(m, "analysis_continue") is not None
                           and f"Analyse the canary at {percent}%" in _blocks(m), 20)


async def test_an_analysed_canary_that_cannot_be_judged_asks_a_person_then_continues_and_aborts(release: Any) -> None:
    async with release(env=ENV) as chat:
        await chat.send("U1", "/hello canary v2")
        request = await chat.approval()
        assert "10% → 20%, analysed" in request.text
        assert "Analyse the canary at 10% (step 1/2)" in _blocks(request)  # the plan, before approval
        await chat.click("U2", request, "approve")

        asking = await _asking(chat, request.ts, 10)
        assert "could not judge the canary (no metrics" in _blocks(asking)
        assert chat.mapping()["spec"]["weight"] == 10  # held
        card = await chat.wait(lambda m: getattr(m, "thread_ts", None) == request.ts and "inconclusive" in m.text)
        assert "Canary v2 at 10%: analysis inconclusive" in card.text

        await chat.click("U3", asking, "analysis_continue")  # sam may not approve
        await chat.private("U3", "Only approvers")
        await chat.click("U2", asking, "analysis_continue")
        asking = await _asking(chat, request.ts, 20)
        assert chat.mapping()["spec"]["weight"] == 20

        await chat.click("U1", asking, "analysis_abort")
        final = await chat.finished(request)
        assert "aborted by a person at 20%" in final.text
        assert "decided by <@U2>" in _blocks(final) and "decided by <@U1>" in _blocks(final)
        await chat.settle()
        assert chat.mapping()["spec"]["weight"] == 0
        assert chat.deployment("helloworld-canary")["spec"]["replicas"] == 0
        assert len(chat.audit_events("HelloCanaryFailed")) == 1


async def test_a_canary_with_a_share_is_manual_and_says_analysis_is_off(chat: Chat) -> None:
    await chat.send("U1", "/hello canary v2 10%")
    request = await chat.approval()
    assert "analysis is off" in _blocks(request)
    assert "Analyse" not in _blocks(request)
