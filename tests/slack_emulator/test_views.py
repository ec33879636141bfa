"""Views in the emulator: views.open/push/update/publish with Slack's trigger, stack, hash and size
rules; view_submission / view_closed / block_actions from views and app_home_opened sent to the app
(a recording app, and a real Bolt app over HTTP and Socket Mode)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator
from sandbox.slack.views import TRIGGER_TTL

from .conftest import SECRET, TOKEN, Recorder

APP_TOKEN = "xapp-1-A0001-views"


class FakeClock:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN, app_token=APP_TOKEN, clock=clock) as emulator:
        yield emulator


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def modal(title: str = "Deploy", *, inputs: bool = False, **extra: Any) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "block_id": "intro",
            "text": {"type": "mrkdwn", "text": "Pick a version"},
            "accessory": {"type": "button", "action_id": "more", "text": plain("More"), "value": "m"},
        }
    ]
    if inputs:
        blocks += [
            {
                "type": "input",
                "block_id": "version",
                "label": plain("Version"),
                "element": {"type": "plain_text_input", "action_id": "text"},
            },
            {
                "type": "input",
                "block_id": "env",
                "label": plain("Environment"),
                "element": {
                    "type": "static_select",
                    "action_id": "pick",
                    "options": [{"text": plain(e), "value": e} for e in ("staging", "production")],
                },
            },
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": plain("Reason"),
                "element": {"type": "plain_text_input", "action_id": "why", "multiline": True},
            },
        ]
    view = {"type": "modal", "title": plain(title), "close": plain("Cancel"), "blocks": blocks, **extra}
    if inputs:
        view.setdefault("submit", plain("Deploy"))
    return view


def home(n: int = 1) -> dict[str, Any]:
    rows = [{"type": "section", "text": {"type": "mrkdwn", "text": f"row {i}"}} for i in range(n)]
    return {"type": "home", "blocks": rows}


async def command_trigger(emu: SlackEmulator, recorder: Recorder, user: str = "U1") -> str:
    await emu.send_command(user=user, text="deploy")
    return recorder.received[-1].form["trigger_id"]


async def api_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as err:
        await call
    return dict(err.value.response.data)


# ---- views.open: trigger ids ------------------------------------------------------------------
async def test_trigger_id_is_single_use_and_expires_after_three_seconds(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder, clock: FakeClock
) -> None:
    trigger = await command_trigger(emu, recorder)
    clock.advance(TRIGGER_TTL - 0.1)
    opened = await client.views_open(trigger_id=trigger, view=modal())
    view = opened["view"]
    assert view["id"].startswith("V") and view["type"] == "modal" and view["root_view_id"] == view["id"]
    assert view["hash"] and view["team_id"] == "T0001" and view["blocks"][0]["block_id"] == "intro"
    assert [v.id for v in emu.modal_stack("U1")] == [view["id"]]

    assert (await api_error(client.views_open(trigger_id=trigger, view=modal())))["error"] == "exchanged_trigger_id"

    late = await command_trigger(emu, recorder)
    clock.advance(TRIGGER_TTL + 0.1)
    assert (await api_error(client.views_open(trigger_id=late, view=modal())))["error"] == "expired_trigger_id"

    forged = "12345.98765.abcd2358fdea"
    assert (await api_error(client.views_open(trigger_id=forged, view=modal())))["error"] == "invalid_trigger_id"
    missing = await api_error(client.api_call("views.open", json={"view": modal()}))
    assert missing["error"] == "invalid_arguments"
    other = AsyncWebClient(token="xoxb-someone-else", base_url=emu.api_url)
    fresh = await command_trigger(emu, recorder)
    assert (await api_error(other.views_open(trigger_id=fresh, view=modal())))["error"] == "invalid_auth"
    assert [v.id for v in emu.modal_stack("U1")] == [view["id"]]


async def test_clicks_and_commands_over_socket_mode_carry_registered_triggers(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.response import SocketModeResponse

    got: list[dict[str, Any]] = []

    async def listener(sm: SocketModeClient, req: Any) -> None:
        got.append(req.payload)
        await sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    sm = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=emu.api_url))
    sm.socket_mode_request_listeners.append(listener)
    await sm.connect()
    try:
        await emu.wait_socket_connected(timeout=5)
        await emu.send_command(user="U3", text="deploy", via="socket")
        opened = await client.views_open(trigger_id=got[-1]["trigger_id"], view=modal())
        assert emu.modal("U3") is not None and emu.modal("U3").id == opened["view"]["id"]
    finally:
        await sm.close()


async def test_invalid_views_are_refused_with_slacks_messages_and_keep_the_trigger(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    trigger = await command_trigger(emu, recorder)
    long_title = await api_error(client.views_open(trigger_id=trigger, view=modal("A title far too long for Slack")))
    assert long_title["error"] == "invalid_arguments"
    assert any("/view/title" in m and "24" in m for m in long_title["response_metadata"]["messages"])

    too_many = modal()
    too_many["blocks"] = [{"type": "divider"}] * 101
    too_many["private_metadata"] = "x" * 3001
    msgs = (await api_error(client.views_open(trigger_id=trigger, view=too_many)))["response_metadata"]["messages"]
    assert any("100" in m and "/view/blocks" in m for m in msgs)

    no_submit = modal(inputs=True)
    del no_submit["submit"]
    msgs = (await api_error(client.views_open(trigger_id=trigger, view=no_submit)))["response_metadata"]["messages"]
    assert any("submit" in m for m in msgs)
    home_here = await api_error(client.views_open(trigger_id=trigger, view=home()))
    assert home_here["error"] == "invalid_arguments"
    assert emu.modal_stack("U1") == []

    await client.views_open(trigger_id=trigger, view=modal())  # refusals did not spend the trigger
    assert len(emu.modal_stack("U1")) == 1


async def test_select_options_over_slacks_limits_are_refused(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    trigger = await command_trigger(emu, recorder)
    view = modal(inputs=True)
    select = view["blocks"][2]["element"]
    select["options"][0]["text"]["text"] = "s" * 76
    select["options"][1]["value"] = "p" * 151
    select["initial_option"] = {"text": plain("qa"), "value": "qa"}
    msgs = (await api_error(client.views_open(trigger_id=trigger, view=view)))["response_metadata"]["messages"]
    assert any("76" in m and "/view/blocks/2/element/options/0/text/text" in m for m in msgs), msgs
    assert any("151" in m and "/view/blocks/2/element/options/1/value" in m for m in msgs), msgs
    assert any("/view/blocks/2/element/initial_option" in m for m in msgs), msgs

    view = modal(inputs=True)
    view["blocks"][2]["element"]["initial_option"] = view["blocks"][2]["element"]["options"][1]
    opened = (await client.views_open(trigger_id=trigger, view=view))["view"]
    assert emu.modal("U1").id == opened["id"]  # an initial option that is one of the options is fine


# ---- views.push / views.update ----------------------------------------------------------------
async def test_push_from_inside_a_modal_stacks_at_most_three_views(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    assert (await api_error(client.views_push(trigger_id=await command_trigger(emu, recorder), view=modal())))[
        "error"
    ] == "not_found"
    root = (await client.views_open(trigger_id=await command_trigger(emu, recorder), view=modal("Root")))["view"]
    ids = [root["id"]]
    for title in ("Second", "Third", "Fourth"):
        click = await emu.click_view("U1", ids[-1], action_id="more")
        assert click.status == 200
        payload = recorder.received[-1].payload
        assert payload["type"] == "block_actions" and payload["container"] == {"type": "view", "view_id": ids[-1]}
        assert payload["view"]["id"] == ids[-1] and payload["actions"][0]["action_id"] == "more"
        if title == "Fourth":
            error = await api_error(client.views_push(trigger_id=payload["trigger_id"], view=modal(title)))
            assert error["error"] == "push_limit_reached"
            break
        pushed = (await client.views_push(trigger_id=payload["trigger_id"], view=modal(title)))["view"]
        assert pushed["previous_view_id"] == ids[-1] and pushed["root_view_id"] == root["id"]
        ids.append(pushed["id"])
    assert [v.title for v in emu.modal_stack("U1")] == ["Root", "Second", "Third"]

    with pytest.raises(LookupError):
        await emu.click_view("U1", root["id"], action_id="more")  # hidden under the pushed views
    assert await emu.close_view("U1") is None  # no notify_on_close: nothing sent
    assert [v.title for v in emu.modal_stack("U1")] == ["Root", "Second"]
    await emu.close_view("U1", clear=True)
    assert emu.modal_stack("U1") == [] and emu.modal("U1") is None


async def test_update_by_view_id_or_external_id_with_hash(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    view = (
        await client.views_open(
            trigger_id=await command_trigger(emu, recorder), view=modal("First", external_id="deploy-U1")
        )
    )["view"]
    assert view["external_id"] == "deploy-U1"
    updated = (await client.views_update(view_id=view["id"], hash=view["hash"], view=modal("Second")))["view"]
    assert updated["id"] == view["id"] and updated["hash"] != view["hash"]
    assert emu.modal("U1").title == "Second"

    stale = await api_error(client.views_update(view_id=view["id"], hash=view["hash"], view=modal("Third")))
    assert stale["error"] == "hash_conflict" and emu.modal("U1").title == "Second"
    by_ext = (await client.views_update(external_id="deploy-U1", view=modal("Third", external_id="deploy-U1")))["view"]
    assert by_ext["id"] == view["id"] and emu.modal("U1").title == "Third"

    assert (await api_error(client.views_update(view_id="V0000009999", view=modal())))["error"] == "not_found"
    assert (await api_error(client.views_update(external_id="nope", view=modal())))["error"] == "not_found"
    duplicate = await api_error(
        client.views_open(trigger_id=await command_trigger(emu, recorder, "U2"), view=modal(external_id="deploy-U1"))
    )
    assert duplicate["error"] == "duplicate_external_id"

    await emu.close_view("U1")
    assert (await api_error(client.views_update(view_id=view["id"], view=modal())))["error"] == "not_found"


# ---- views.publish ------------------------------------------------------------------------------
async def test_publish_home_within_slacks_limits(emu: SlackEmulator, client: AsyncWebClient) -> None:
    first = (await client.views_publish(user_id="U1", view=home(3)))["view"]
    assert first["type"] == "home" and first["id"].startswith("V") and emu.home("U1").id == first["id"]
    again = (await client.views_publish(user_id="U1", view=home(100), hash=first["hash"]))["view"]
    assert again["id"] == first["id"] and again["hash"] != first["hash"] and len(emu.home("U1").blocks) == 100

    assert (await api_error(client.views_publish(user_id="U1", view=home(1), hash=first["hash"])))[
        "error"
    ] == "hash_conflict"
    over = await api_error(client.views_publish(user_id="U1", view=home(101)))
    assert over["error"] == "invalid_arguments" and any("100" in m for m in over["response_metadata"]["messages"])
    big = home(1)
    big["private_metadata"] = "x" * 3000
    big["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 2900}} for _ in range(95)]
    assert (await api_error(client.views_publish(user_id="U1", view=big)))["error"] == "view_too_large"
    assert (await api_error(client.views_publish(user_id="U1", view=modal())))["error"] == "invalid_arguments"
    with_submit = {**home(1), "submit": plain("Go")}
    assert (await api_error(client.views_publish(user_id="U1", view=with_submit)))["error"] == "invalid_arguments"
    unknown = await api_error(client.views_publish(user_id="U404", view=home()))
    assert unknown["error"] == "invalid_arguments" and unknown["response_metadata"]["messages"] == ["invalid `user_id`"]
    assert len(emu.home("U1").blocks) == 100

    async with SlackEmulator(bot_token=TOKEN, home_tab=False) as no_home:
        api = AsyncWebClient(token=TOKEN, base_url=no_home.api_url)
        assert (await api_error(api.views_publish(user_id="U1", view=home())))["error"] == "not_enabled"


# ---- view_submission / view_closed with a recording app -----------------------------------------
async def test_view_submission_payload_and_response_actions(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    answers: list[web.Response] = []
    recorder.answer = lambda r: answers.pop(0) if answers else web.Response(status=200)
    view = (
        await client.views_open(
            trigger_id=await command_trigger(emu, recorder),
            view=modal(inputs=True, callback_id="deploy", private_metadata='{"service": "helloworld"}'),
        )
    )["view"]

    before = len(recorder.received)
    incomplete = await emu.submit_view("U1", values={"version": "v2"})
    assert incomplete.outcome == "incomplete"
    assert emu.modal_errors("U1") == {"env": "Please complete this required field."}
    assert len(recorder.received) == before  # the client did not send it

    answers.append(web.json_response({"response_action": "update", "view": modal("Check", inputs=True)}))
    reply = await emu.submit_view("U1", view["id"], {"version": "v2", "env": "production"})
    sent = recorder.received[-1].payload
    assert sent["type"] == "view_submission" and sent["view"]["callback_id"] == "deploy"
    assert sent["view"]["private_metadata"] == '{"service": "helloworld"}' and sent["trigger_id"]
    assert sent["user"]["id"] == "U1" and sent["response_urls"] == []
    values = sent["view"]["state"]["values"]
    assert values["version"] == {"text": {"type": "plain_text_input", "value": "v2"}}
    assert values["env"]["pick"]["selected_option"]["value"] == "production"
    assert values["reason"] == {"why": {"type": "plain_text_input", "value": None}}
    assert reply.outcome == "updated" and emu.modal("U1").title == "Check" and emu.modal("U1").id == view["id"]
    assert emu.modal("U1").values["version"]["text"]["value"] == "v2"  # same block and action ids: kept

    answers.append(web.json_response({"response_action": "push", "view": modal("Confirm", inputs=True)}))
    assert (await emu.submit_view("U1", values={"env": "staging"})).outcome == "pushed"
    assert [v.title for v in emu.modal_stack("U1")] == ["Check", "Confirm"]
    assert (await emu.submit_view("U1", values={"version": "v3", "env": "staging"})).outcome == "closed"
    assert [v.title for v in emu.modal_stack("U1")] == ["Check"]

    answers.append(web.json_response({"response_action": "errors", "errors": {"intro": "not an input"}}))
    wrong = await emu.submit_view("U1")
    assert wrong.outcome == "failed" and "intro" in (emu.modal("U1").problem or "")
    answers.append(web.Response(status=500))
    assert (await emu.submit_view("U1")).outcome == "failed" and emu.modal("U1").problem == "HTTP 500"
    answers.append(web.json_response({"response_action": "clear"}))
    assert (await emu.submit_view("U1")).outcome == "cleared" and emu.modal_stack("U1") == []


async def test_a_submission_nobody_receives_keeps_the_modal_open(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    await client.views_open(trigger_id=await command_trigger(emu, recorder), view=modal(inputs=True))
    reply = await emu.submit_view("U1", values={"version": "v2", "env": "staging"}, via="socket")
    assert reply.text == "dispatch_failed" and reply.outcome == "failed"
    assert "dispatch_failed" in (emu.modal("U1").problem or "")
    assert emu.modal("U1").values["version"]["text"]["value"] == "v2"  # what the user typed stays


async def test_view_closed_is_sent_only_when_asked(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    await client.views_open(trigger_id=await command_trigger(emu, recorder), view=modal(notify_on_close=True))
    reply = await emu.close_view("U1")
    assert reply is not None and reply.status == 200
    payload = recorder.received[-1].payload
    assert payload["type"] == "view_closed" and payload["is_cleared"] is False
    assert payload["view"]["notify_on_close"] is True and payload["user"]["id"] == "U1"
    assert emu.modal_stack("U1") == []


async def test_changes_are_announced_and_in_the_state(
    emu: SlackEmulator, client: AsyncWebClient, recorder: Recorder
) -> None:
    events: list[dict[str, Any]] = []
    emu.subscribe(events.append)
    view = (await client.views_open(trigger_id=await command_trigger(emu, recorder), view=modal(inputs=True)))["view"]
    recorder.answer = lambda r: web.json_response({"response_action": "errors", "errors": {"version": "bad"}})
    await emu.submit_view("U1", values={"version": "x", "env": "staging"})
    await client.views_publish(user_id="U2", view=home())
    kinds = [e["type"] for e in events]
    assert kinds == ["modal_opened", "modal_errors", "home_published"]
    assert events[1]["view"]["errors"] == {"version": "bad"} and events[1]["stack"][0]["id"] == view["id"]
    state = emu.state()["views"]
    assert [v["id"] for v in state["modals"]["U1"]] == [view["id"]] and state["homes"]["U2"]["type"] == "home"


# ---- a real Bolt app --------------------------------------------------------------------------------
def build_bolt(api_url: str, closed: list[str]) -> AsyncApp:
    app = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=api_url))

    @app.command("/hello")
    async def hello(ack, body, client) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"], view=modal(inputs=True, callback_id="deploy", notify_on_close=True)
        )

    @app.view("deploy")
    async def submitted(ack, view, body, client) -> None:
        version = view["state"]["values"]["version"]["text"]["value"]
        if not version.startswith("v"):
            await ack(response_action="errors", errors={"version": f"{version} is not a version like v2"})
            return
        await ack()
        await client.chat_postMessage(channel="C1", text=f"deploying {version} for <@{body['user']['id']}>")

    @app.view_closed("deploy")
    async def closed_(ack, body) -> None:
        await ack()
        closed.append(body["view"]["id"])

    @app.event("app_home_opened")
    async def home_opened(event, client) -> None:
        seen = "again" if event.get("view") else "first"
        await client.views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [{"type": "section", "text": plain(seen)}]}
        )

    return app


@pytest.fixture
async def bolt_http(emu: SlackEmulator) -> AsyncIterator[list[str]]:
    closed: list[str] = []
    bolt = build_bolt(emu.api_url, closed)

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    emu.request_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield closed
    await runner.cleanup()


async def test_bolt_modal_shows_errors_then_closes_on_a_clean_submit(emu: SlackEmulator, bolt_http: list[str]) -> None:
    assert (await emu.send_command(user="U1", text="deploy")).status == 200
    shown = await emu.wait_for_modal("U1", timeout=5)
    assert shown.callback_id == "deploy"

    bad = await emu.submit_view("U1", values={"version": "banana", "env": "staging"})
    assert bad.status == 200 and bad.outcome == "errors"
    assert emu.modal_errors("U1") == {"version": "banana is not a version like v2"}
    assert emu.modal("U1").id == shown.id

    good = await emu.submit_view("U1", values={"version": "v2"})  # the environment chosen before is kept
    assert good.outcome == "closed" and emu.modal("U1") is None
    msg = await emu.wait_for(lambda m: m.text.startswith("deploying"), timeout=5)
    assert msg.text == "deploying v2 for <@U1>"

    await emu.send_command(user="U1", text="deploy")
    again = await emu.wait_for_modal("U1", lambda v: v.id != shown.id, timeout=5)
    assert (await emu.close_view("U1")).status == 200
    assert bolt_http == [again.id]


async def test_bolt_home_over_http(emu: SlackEmulator, bolt_http: list[str]) -> None:
    assert (await emu.open_home("U2")).status == 200
    first = await emu.wait_for_home("U2", timeout=5)
    assert first.blocks[0]["text"]["text"] == "first"
    sent = emu.surfaces.events[-1]
    assert sent["type"] == "event_callback" and sent["event"]["tab"] == "home" and "view" not in sent["event"]

    await emu.open_home("U2")
    assert emu.surfaces.events[-1]["event"]["view"]["id"] == first.id
    again = await emu.wait_for_home("U2", lambda v: v.blocks[0]["text"]["text"] == "again", timeout=5)
    assert again.id == first.id

    await emu.open_home("U3", tab="messages")
    assert emu.surfaces.events[-1]["event"]["tab"] == "messages" and "view" not in emu.surfaces.events[-1]["event"]
    await emu.wait_for_home("U3", timeout=5)


async def test_bolt_modal_and_home_over_socket_mode(emu: SlackEmulator) -> None:
    closed: list[str] = []
    bolt = build_bolt(emu.api_url, closed)
    handler = AsyncSocketModeHandler(bolt, APP_TOKEN, web_client=AsyncWebClient(base_url=emu.api_url))
    await handler.connect_async()
    try:
        await emu.wait_socket_connected(timeout=5)
        assert (await emu.open_home("U1", via="socket")).status == 200
        home_view = await emu.wait_for_home("U1", timeout=5)
        assert home_view.blocks[0]["text"]["text"] == "first"
        assert emu.socket.acks and emu.sender.sent[-1]["kind"] == "event_callback"

        await emu.send_command(user="U1", text="deploy", via="socket")
        await emu.wait_for_modal("U1", timeout=5)
        bad = await emu.submit_view("U1", values={"version": "2", "env": "production"}, via="socket")
        assert bad.outcome == "errors" and emu.modal_errors("U1") == {"version": "2 is not a version like v2"}
        good = await emu.submit_view("U1", values={"version": "v2"}, via="socket")
        assert good.outcome == "closed" and emu.modal_stack("U1") == []
        await emu.wait_for(lambda m: m.text == "deploying v2 for <@U1>", timeout=5)
    finally:
        await handler.close_async()


def test_payload_values_helper_refuses_unknown_blocks_and_options() -> None:
    from sandbox.slack.view_state import build_values

    blocks = modal(inputs=True)["blocks"]
    with pytest.raises(LookupError):
        build_values(blocks, {"nope": "v2"})
    with pytest.raises(ValueError):
        build_values(blocks, {"env": "qa"})
    values, errors = build_values(blocks, {"version": "v2", "env": "staging", "reason": "fix"})
    assert errors == {} and json.loads(json.dumps(values))["reason"]["why"]["value"] == "fix"
