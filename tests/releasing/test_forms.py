"""`/hello deploy` and `/hello canary` with no version open a form; its errors show in the form."""

from __future__ import annotations

from tests.releasing.conftest import Chat


async def _modal(chat: Chat, user: str, timeout: float = 10.0):  # -> ViewRecord
    try:
        return await chat.slack.wait_for_modal(user, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"no form opened for {user}") from None


async def test_the_deploy_form_shows_a_bad_version_in_the_form_then_asks_for_approval(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy")
    modal = await _modal(chat, "U1")
    assert modal.spec["title"]["text"] == "Deploy"
    assert "Recent versions: v1" in str(modal.spec["blocks"])  # from the ReplicaSet history

    reply = await chat.slack.submit_view("U1", modal.id, {"version": "v２"})  # a full-width 2
    assert reply.outcome == "errors"
    assert "not a version I can deploy" in chat.slack.modal_errors("U1")["version"]
    assert chat.slack.messages("C1") == []  # nothing asked

    reply = await chat.slack.submit_view("U1", modal.id, {"version": "v2", "reason": "fix the \"login\" bug"})
    assert reply.outcome == "closed"
    request = await chat.approval()
    assert "Deploy" in request.text and "v2" in request.text
    assert 'fix the "login" bug' in str(request.blocks)  # the form's reason, quotes and all


async def test_the_canary_form_with_a_share_asks_for_a_manual_canary(chat: Chat) -> None:
    await chat.send("U1", "/hello canary")
    modal = await _modal(chat, "U1")
    assert modal.spec["title"]["text"] == "Start a canary"
    reply = await chat.slack.submit_view("U1", modal.id, {"version": "v2", "percent": "20"})
    assert reply.outcome == "closed"
    request = await chat.approval()
    assert "v2 at 20%" in request.text


async def test_someone_who_may_not_deploy_gets_no_form_but_the_reason(chat: Chat) -> None:
    await chat.send("U3", "/hello deploy")
    await chat.private("U3", "not a deployer")
    assert chat.slack.modal("U3") is None


async def test_a_required_reason_left_out_is_shown_under_the_reason_field(release) -> None:  # type: ignore[no-untyped-def]
    async with release(env={"HELLO_REQUIRE_REASON": "true"}) as chat:
        await chat.send("U1", "/hello deploy")
        modal = await _modal(chat, "U1")
        reason = next(b for b in modal.spec["blocks"] if b["block_id"] == "reason")
        assert reason["optional"] is False
        reply = await chat.slack.submit_view("U1", modal.id, {"version": "v2", "reason": "ship it"})
        assert reply.outcome == "closed"
        await chat.approval()
