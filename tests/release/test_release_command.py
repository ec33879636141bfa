"""`/hello release`: the releases running now and one release step by step; status and history show them."""

from __future__ import annotations

import json
from typing import Any

from tests.harness.chat import Chat, button


def _id(message: Any) -> str:
    return str(button(message, "approve")["value"])


async def test_a_running_release_is_listed_with_its_step_then_shown_step_by_step(release: Any) -> None:
    async with release(kube={"pod_ready_seconds": 1.5}) as chat:
        chat: Chat
        await chat.send("U1", "/hello deploy v2")
        request = await chat.approval()
        rid = _id(request)
        plan = json.dumps(request.blocks, ensure_ascii=False)
        assert "Plan: Set `helloworld` to `helloworld:v2` → Rolling out" in plan  # fixed before approval
        await chat.click("U2", request, "approve")
        await chat.wait(lambda m: m.ts == request.ts and ":hourglass_flowing_sand: Rolling out"
                        in json.dumps(m.blocks, ensure_ascii=False))

        await chat.send("U3", "/hello release")
        listed = await chat.private("U3", "Releases running")
        assert f"step 2/2: Rolling out · request `{rid}`" in listed.text

        await chat.send("U3", "/hello status")
        status = await chat.message_saying("helloworld status")
        assert "*Running now*" in json.dumps(status.blocks) and rid in json.dumps(status.blocks)

        await chat.finished(request)
        await chat.settle()
        await chat.send("U3", f"/hello release {rid}")
        shown = await chat.message_saying("Deploy: helloworld: v1 → v2 — succeeded")
        blocks = json.dumps(shown.blocks, ensure_ascii=False)
        assert ":white_check_mark: 1. Set `helloworld` to `helloworld:v2` ·" in blocks
        assert ":white_check_mark: 2. Rolling out ·" in blocks and "2/2 ready" in blocks
        assert "approved by <@U2>" in blocks and "runs `v2`" in blocks

        await chat.send("U3", "/hello release")
        await chat.private("U3", "No release is running.")


async def test_an_unknown_or_malformed_release_id_is_refused(chat: Chat) -> None:
    await chat.send("U3", "/hello release 0123456789")
    await chat.private("U3", "There is no release `0123456789`")
    await chat.send("U3", "/hello release <!channel>")
    refused = await chat.private("U3", "is not a request id")
    assert "&lt;!channel&gt;" in refused.text
