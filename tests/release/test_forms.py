"""`/hello deploy` and `/hello canary` with no version open a form; its errors show in the form."""

from __future__ import annotations

import json

from bot.chat import forms
from bot.chat.views import form
from sandbox.slack.content import check_view
from tests.harness.chat import Chat


def _block(modal: dict, block_id: str) -> dict:
    return next(b for b in modal["blocks"] if b["block_id"] == block_id)


def test_the_form_offers_the_recent_versions_newest_first_with_the_running_one_marked() -> None:
    modal = form.modal("deploy", "C1", ["v3", "v2", "v3", "", "v1"], running="v2")
    assert [b["block_id"] for b in modal["blocks"]] == ["recent", "version", "reason"]
    select = _block(modal, "recent")
    assert select["element"]["type"] == "static_select" and select["optional"] is True
    options = select["element"]["options"]
    assert [o["value"] for o in options] == ["v3", "v2", "v1"]  # each once, in the order given
    assert [o["text"]["text"] for o in options] == ["v3", "v2 (running)", "v1"]
    typed = _block(modal, "version")
    assert typed["element"]["type"] == "plain_text_input" and typed["optional"] is True
    assert typed["label"]["text"] == "Or another version"
    check_view(modal, kinds=("modal",))  # as Slack would take it


def test_without_history_the_version_is_only_typed_and_required() -> None:
    modal = form.modal("canary", "C1", [])
    assert [b["block_id"] for b in modal["blocks"]] == ["version", "percent", "reason"]
    typed = _block(modal, "version")
    assert typed["optional"] is False and typed["label"]["text"] == "Version"
    assert "static_select" not in str(modal)


def test_the_select_keeps_slacks_limits() -> None:
    long = "v1." + "9" * 80  # a label longer than 75 characters, a value Slack still carries
    too_long = "v2." + "9" * 150  # a value Slack cannot carry: left out, never cut into another version
    many = [f"v{n}" for n in range(150, 0, -1)]
    modal = form.modal("deploy", "C1", [long, too_long, *many], running=long)
    options = _block(modal, "recent")["element"]["options"]
    assert len(options) == form.MAX_OPTIONS == 100
    assert options[0]["value"] == long and too_long not in [o["value"] for o in options]
    assert options[0]["text"]["text"].endswith("… (running)") and len(options[0]["text"]["text"]) == 75
    assert [o["value"] for o in options[1:]] == many[:99]  # the newest hundred, in order
    check_view(modal, kinds=("modal",))


def test_exactly_one_of_the_select_and_the_typed_version() -> None:
    assert forms.version_errors({"recent": "v1", "version": "", "reason": ""}) == {}
    assert forms.version_errors({"recent": "", "version": "v2"}) == {}
    assert forms.version_errors({"recent": "", "version": ""}) == {"recent": forms.PICK_ONE}
    assert forms.version_errors({"recent": "v1", "version": "v2"}) == {"version": forms.NOT_BOTH}
    assert forms.version_errors({"version": ""}) == {}  # no select: the client requires the typed version
    assert forms.command_text("deploy", {"recent": "v1", "version": ""}) == "deploy v1"
    bad = "`v1_` is not a version I can deploy"
    assert forms.error_block(bad, {"recent": "v1_", "version": ""}) == "recent"  # under the field that gave it
    assert forms.error_block(bad, {"recent": "", "version": "v1_"}) == "version"
    assert forms.error_block("a percent from 1 to 99", {"recent": "v1"}) == "percent"


async def _modal(chat: Chat, user: str, timeout: float = 10.0):  # -> ViewRecord
    try:
        return await chat.slack.wait_for_modal(user, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"no form opened for {user}") from None


async def test_the_deploy_form_shows_a_bad_version_in_the_form_then_asks_for_approval(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy")
    modal = await _modal(chat, "U1")
    assert modal.spec["title"]["text"] == "Deploy"
    options = next(b for b in modal.spec["blocks"] if b["block_id"] == "recent")["element"]["options"]
    assert options == [{"text": {"type": "plain_text", "text": "v1 (running)"}, "value": "v1"}]  # ReplicaSet history

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


async def test_a_version_chosen_from_the_history_is_asked_for(chat: Chat) -> None:
    deployed = await chat.approve("U1", "/hello deploy v2")  # the history is now v1, then v2 (running)
    await chat.send("U1", "/hello deploy")
    modal = await _modal(chat, "U1")
    options = next(b for b in modal.spec["blocks"] if b["block_id"] == "recent")["element"]["options"]
    assert [(o["value"], o["text"]["text"]) for o in options] == [("v2", "v2 (running)"), ("v1", "v1")]

    reply = await chat.slack.submit_view("U1", modal.id, {"recent": "v1", "reason": "back to v1"})
    assert reply.outcome == "closed"
    chosen = {"type": "static_select", "selected_option": options[1]}  # as Slack sends it in view.state.values
    assert modal.values["recent"] == {"recent": chosen}
    request = await chat.approval(exclude=[deployed.ts])
    assert "v2 → v1" in request.text and "back to v1" in str(request.blocks)


async def test_neither_or_both_versions_are_shown_in_the_form_and_nothing_is_asked(chat: Chat) -> None:
    await chat.send("U1", "/hello canary")
    modal = await _modal(chat, "U1")

    reply = await chat.slack.submit_view("U1", modal.id, {"percent": "10"})
    assert reply.outcome == "errors"
    assert chat.slack.modal_errors("U1") == {"recent": forms.PICK_ONE}

    reply = await chat.slack.submit_view("U1", modal.id, {"recent": "v1", "version": "v2"})
    assert reply.outcome == "errors"
    assert chat.slack.modal_errors("U1") == {"version": forms.NOT_BOTH}

    reply = await chat.slack.submit_view("U1", modal.id, {"recent": None, "version": "v2!"})
    assert reply.outcome == "errors" and list(chat.slack.modal_errors("U1")) == ["version"]
    assert chat.slack.messages("C1") == []  # nothing asked

    reply = await chat.slack.submit_view("U1", modal.id, {"version": "v2"})
    assert reply.outcome == "closed"
    assert "v2 at 10%" in (await chat.approval()).text  # the share typed before stayed in the form


# ---------------------------------------------------------------- several services (a catalogue file)


def test_with_one_service_the_form_carries_no_target() -> None:
    modal = form.modal("deploy", "C1", ["v1"], running="v1")
    assert json.loads(modal["private_metadata"]) == {"command": "deploy", "channel": "C1"}
    assert all(b["block_id"] not in (form.TARGET, form.WHERE) for b in modal["blocks"])
    view = {"private_metadata": modal["private_metadata"]}
    assert forms.target(view, {"recent": "v1"}) == ("", "")
    assert forms.target_errors({"recent": "v1"}) == {}
    assert forms.command_text("deploy", {"recent": "v1", "reason": "ok"}) == "deploy v1 ok"


def test_a_resolved_service_is_kept_in_the_metadata_and_named_in_a_context_line() -> None:
    modal = form.modal("canary", "CGREET", ["v2", "v1"], running="v2", service="greeter", environment="production")
    assert json.loads(modal["private_metadata"]) == {"command": "canary", "channel": "CGREET",
                                                     "service": "greeter", "environment": "production"}
    first = modal["blocks"][0]
    assert first["type"] == "context" and first["block_id"] == form.WHERE
    assert first["elements"][0]["text"] == "For *greeter* in *production*"
    assert [b["block_id"] for b in modal["blocks"][1:]] == ["recent", "version", "percent", "reason"]
    assert form.TARGET not in str(modal["blocks"])  # nothing to choose
    check_view(modal, kinds=("modal",))
    values = {"recent": "v1", "version": "", "percent": "10", "reason": "try it"}
    service, environment = forms.target(modal, values)
    assert (service, environment) == ("greeter", "production")
    assert forms.command_text("canary", values, service, environment) == "canary greeter production v1 10% 'try it'"


def test_where_nothing_names_the_service_a_select_of_pairs_comes_first_and_is_required() -> None:
    pairs = [("helloworld", "staging"), ("helloworld", "production"), ("greeter", "staging"),
             ("greeter", "staging")]
    modal = form.modal("deploy", "C1", pairs=pairs)
    assert json.loads(modal["private_metadata"]) == {"command": "deploy", "channel": "C1"}
    assert [b["block_id"] for b in modal["blocks"]] == ["target", "version", "reason"]
    select = _block(modal, "target")
    assert select["optional"] is False and select["element"]["type"] == "static_select"
    assert [(o["value"], o["text"]["text"]) for o in select["element"]["options"]] == [
        ("helloworld staging", "helloworld / staging"), ("helloworld production", "helloworld / production"),
        ("greeter staging", "greeter / staging")]  # each once, in catalogue order
    assert _block(modal, "version")["optional"] is False  # no versions to choose from: typed
    check_view(modal, kinds=("modal",))

    values = {"target": "greeter staging", "version": "v2", "reason": "fix the login bug"}
    assert forms.target_errors(values) == {}
    service, environment = forms.target(modal, values)
    assert forms.command_text("deploy", values, service, environment) == \
        "deploy greeter staging v2 'fix the login bug'"
    assert forms.target_errors({"target": "", "version": "v2"}) == {"target": forms.PICK_TARGET}
    assert forms.error_block("there is no service gone; services: a, b", {"target": "gone x", "version": "v2"}) \
        == "target"
    assert forms.error_block("`v2!` is not a version I can deploy", {"target": "a b", "version": "v2!"}) == "version"


def test_many_pairs_are_grouped_by_service_within_slacks_limits() -> None:
    pairs = [(f"service{s}", f"env{e}") for s in range(30) for e in range(5)]  # 150 pairs: over 100 options
    long = ("s" * 80, "production")  # a label over 75 characters
    modal = form.modal("deploy", "C1", pairs=[long, *pairs])
    element = _block(modal, "target")["element"]
    assert "options" not in element
    groups = element["option_groups"]
    assert len(groups) == 31 and all(len(g["options"]) <= form.MAX_OPTIONS for g in groups)
    assert groups[0]["label"]["text"] == "s" * 74 + "…"
    assert groups[0]["options"][0]["value"] == f"{'s' * 80} production"
    assert len(groups[0]["options"][0]["text"]["text"]) == 75
    assert [o["value"] for o in groups[1]["options"]] == [f"service0 env{e}" for e in range(5)]
    check_view(modal, kinds=("modal",))


async def test_a_form_slack_holds_back_past_the_triggers_life_is_not_opened_late_and_the_person_is_told(
        chat: Chat) -> None:
    chat.slack.add_fault("views.open", status=429, retry_after=5)  # the trigger lives 3 s
    await chat.send("U1", "/hello deploy")
    await chat.private("U1", "could not open within the 3 s")
    assert [c["status"] for c in chat.slack.calls if c["method"] == "views.open"] == [429]
    assert chat.slack.modal("U1") is None
