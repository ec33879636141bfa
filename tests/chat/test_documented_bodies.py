"""Every kind of request Slack documents, signed as Slack signs it, sent to the running bot.

The bodies are written here from Slack's documentation of interaction payloads (block_actions,
view_submission, view_closed, shortcut, message_action, block_suggestion, interactive_message,
dialog_submission), of the Events API (url_verification, event_callback) and of slash commands
(ssl_check, Enterprise Grid and direct-message invocations). Whatever the bot does with them, it answers
no 5xx, logs no error and no traceback, and leaves no task exception unretrieved (the autouse watch of
tests/asyncio_checks.py); a request it has no listener for gets what Slack expects, with one debug line.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.chat import metrics
from sandbox.slack import SlackEmulator
from sandbox.slack.client import signed_headers
from tests.harness.bot import SECRET, Bot

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TEAM = {"id": "T0001", "domain": "hello-chatops"}
USER = {"id": "U2", "username": "bob", "name": "bob", "team_id": "T0001"}
CHANNEL = {"id": "C1", "name": "ops"}


def unreachable_url() -> str:
    """A response URL nothing listens on (a port bound and closed again: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/commands/T0001/1/unreachable"


def reachable_url(slack: SlackEmulator, channel: str = "C1", user: str = "U2") -> str:
    target = slack.webapi.new_response_target(channel=channel, user=user)
    return f"{slack.workspace.base_url}/response/{target.id}"


def interaction(payload: dict[str, Any]) -> tuple[bytes, str]:
    """An interaction payload as Slack sends it: form-encoded, the JSON in ``payload``."""
    return urlencode({"payload": json.dumps(payload)}).encode(), FORM


def event(inner: dict[str, Any], **outer: Any) -> tuple[bytes, str]:
    """An Events API ``event_callback`` wrapping ``inner``."""
    body = {"token": "verification-token", "team_id": "T0001", "api_app_id": "A0001", "event": inner,
            "type": "event_callback", "event_id": f"Ev{time.time_ns()}", "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": "T0001", "user_id": "UBOT", "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False, **outer}
    return json.dumps(body).encode(), JSON


def command(response_url: str, **fields: str) -> tuple[bytes, str]:
    body = {"token": "verification-token", "team_id": "T0001", "team_domain": "hello-chatops",
            "channel_id": "C1", "channel_name": "ops", "user_id": "U2", "user_name": "bob",
            "command": "/hello", "text": "status", "api_app_id": "A0001", "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": "13345224609.738474920.8088930838d88f008e0"}
    body.update(fields)
    return urlencode(body).encode(), FORM


def message(ts: str, action_id: str, value: str) -> dict[str, Any]:
    """A message with one button, as a ``block_actions`` payload carries the message clicked in."""
    return {"type": "message", "ts": ts, "bot_id": "B0999", "text": "someone else's message",
            "blocks": [{"type": "actions", "block_id": "b1", "elements": [
                {"type": "button", "action_id": action_id, "value": value,
                 "text": {"type": "plain_text", "text": "Go"}}]}]}


def block_actions(response_url: str | None, action_id: str, value: str, **extra: Any) -> tuple[bytes, str]:
    payload: dict[str, Any] = {
        "type": "block_actions", "team": TEAM, "user": USER, "api_app_id": "A0001",
        "token": "verification-token", "trigger_id": "12466734323.1395872398", "enterprise": None,
        "is_enterprise_install": False,
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C1",
                      "is_ephemeral": False},
        "channel": CHANNEL, "message": message("1700000000.000100", action_id, value),
        "state": {"values": {}},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                     "text": {"type": "plain_text", "text": "Go"}, "action_ts": f"{time.time():.6f}"}],
    }
    if response_url is not None:
        payload["response_url"] = response_url
    payload.update(extra)
    return interaction(payload)


def modal(callback_id: str) -> dict[str, Any]:
    return {"id": "V0FOREIGN", "team_id": "T0001", "type": "modal", "callback_id": callback_id,
            "private_metadata": "", "title": {"type": "plain_text", "text": "Not ours"},
            "blocks": [{"type": "input", "block_id": "in", "label": {"type": "plain_text", "text": "Why"},
                        "element": {"type": "plain_text_input", "action_id": "why"}}],
            "state": {"values": {"in": {"why": {"type": "plain_text_input", "value": "<!channel> hi"}}}},
            "hash": "156772938.1827394", "root_view_id": "V0FOREIGN", "app_id": "A0001", "bot_id": "B0001",
            "notify_on_close": True, "clear_on_close": False, "external_id": ""}


# name -> (body, content type) built against the running emulator; expect: what the answer must be
Body = Callable[[SlackEmulator], tuple[bytes, str]]
BODIES: dict[str, Body] = {
    "block_actions from a message the bot does not know, response_url unreachable":
        lambda s: block_actions(unreachable_url(), "deploy_now", "x"),
    "block_actions approving a request that does not exist, response_url unreachable":
        lambda s: block_actions(unreachable_url(), "approve", "no-such-request"),
    "block_actions in the Home tab (no response_url)":
        lambda s: block_actions(None, "foreign_home_button", "x",
                                container={"type": "view", "view_id": "V0HOME"},
                                view={"id": "V0HOME", "type": "home", "blocks": [], "callback_id": ""},
                                channel=None, message=None),
    "block_actions from a message the bot does not know, response_url reachable":
        lambda s: block_actions(reachable_url(s), "deploy_now", "x"),
    "view_submission of a modal that is not the bot's":
        lambda s: interaction({"type": "view_submission", "team": TEAM, "user": USER, "api_app_id": "A0001",
                               "token": "verification-token", "trigger_id": "12321423423.333",
                               "view": modal("someone_elses_modal"), "response_urls": [],
                               "is_enterprise_install": False, "enterprise": None}),
    "view_closed":
        lambda s: interaction({"type": "view_closed", "team": TEAM, "user": USER, "api_app_id": "A0001",
                               "token": "verification-token", "view": modal("someone_elses_modal"),
                               "is_cleared": False, "is_enterprise_install": False, "enterprise": None}),
    "global shortcut":
        lambda s: interaction({"type": "shortcut", "token": "verification-token", "action_ts": "1581106241.371594",
                               "team": TEAM, "user": USER, "callback_id": "shortcut_create_task",
                               "trigger_id": "944799105734.773906753841.38b5894552bdd4a780554ee59d1f3638"}),
    "message shortcut (message_action)":
        lambda s: interaction({"type": "message_action", "token": "verification-token",
                               "action_ts": "1581106241.371594", "team": TEAM, "user": USER, "channel": CHANNEL,
                               "callback_id": "add_note", "trigger_id": "13345224609.738474920.8088930838",
                               "message_ts": "1700000000.000200", "response_url": unreachable_url(),
                               "message": {"type": "message", "user": "U3", "ts": "1700000000.000200",
                                           "text": "<@U1> *bold* & <!here>"}}),
    "attachment button (interactive_message)":
        lambda s: interaction({"type": "interactive_message", "actions": [
                                   {"name": "game", "type": "button", "value": "chess"}],
                               "callback_id": "wopr_game", "team": TEAM, "channel": CHANNEL, "user": USER,
                               "action_ts": "1700000000.111", "message_ts": "1700000000.000300",
                               "attachment_id": "1", "token": "verification-token", "is_app_unfurl": False,
                               "original_message": {"text": "Would you like to play a game?", "attachments": [
                                   {"callback_id": "wopr_game", "text": "Choose", "actions": [
                                       {"name": "game", "text": "Chess", "type": "button", "value": "chess"}]}]},
                               "response_url": unreachable_url(), "trigger_id": "13345224609.738474920.80889"}),
    "dialog_submission":
        lambda s: interaction({"type": "dialog_submission", "submission": {"name": "Sigourney", "email": "x@y.z"},
                               "callback_id": "employee_offsite_1138b", "state": "vegetarian",
                               "team": TEAM, "user": USER, "channel": CHANNEL, "action_ts": "936893340.702759",
                               "token": "verification-token", "response_url": unreachable_url()}),
    "block_suggestion (external select)":
        lambda s: interaction({"type": "block_suggestion", "user": USER, "container": {
                                   "type": "message", "message_ts": "1700000000.000400", "channel_id": "C1",
                                   "is_ephemeral": False}, "api_app_id": "A0001", "token": "verification-token",
                               "action_id": "pick_service", "block_id": "b1", "value": "hel", "team": TEAM,
                               "channel": CHANNEL, "enterprise": None, "is_enterprise_install": False}),
    "event app_mention":
        lambda s: event({"type": "app_mention", "user": "U2", "text": "<@UBOT> deploy <!channel>",
                         "ts": "1700000000.000500", "channel": "C1", "event_ts": "1700000000.000500"}),
    "event message":
        lambda s: event({"type": "message", "channel": "C1", "user": "U2", "text": "hello there",
                         "ts": "1700000000.000600", "event_ts": "1700000000.000600", "channel_type": "channel"}),
    "event message in a DM":
        lambda s: event({"type": "message", "channel": "D0001", "user": "U2", "text": "hi bot",
                         "ts": "1700000000.000700", "event_ts": "1700000000.000700", "channel_type": "im"}),
    "event app_home_opened":
        lambda s: event({"type": "app_home_opened", "user": "U2", "channel": "D0001", "tab": "home",
                         "event_ts": "1700000000.000800"}),
    "event app_home_opened (messages tab)":
        lambda s: event({"type": "app_home_opened", "user": "U2", "channel": "D0001", "tab": "messages",
                         "event_ts": "1700000000.000900"}),
    "event of a type Slack may add tomorrow":
        lambda s: event({"type": "brand_new_event", "event_ts": "1700000000.001000", "stuff": {"a": [1]}}),
    "url_verification":
        lambda s: (json.dumps({"token": "verification-token", "type": "url_verification",
                               "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}).encode(), JSON),
    "ssl_check":
        lambda s: (urlencode({"ssl_check": "1", "token": "verification-token"}).encode(), FORM),
    "Enterprise Grid slash command":
        lambda s: command(reachable_url(s), enterprise_id="E0001", enterprise_name="Acme Corp",
                          is_enterprise_install="false", team_id="T0001"),
    "Enterprise Grid org-wide install slash command, response_url unreachable":
        lambda s: command(unreachable_url(), enterprise_id="E0001", enterprise_name="Acme Corp",
                          is_enterprise_install="true", team_id="T0001"),
    "slash command in a direct message":
        lambda s: command(reachable_url(s, channel="D0001"), channel_id="D0001", channel_name="directmessage"),
    "slash command in a DM, response_url unreachable":
        lambda s: command(unreachable_url(), channel_id="D0001", channel_name="directmessage"),
    # last: after these the bot stops publishing in this workspace
    "event tokens_revoked (people's tokens only)":
        lambda s: event({"type": "tokens_revoked", "tokens": {"oauth": ["U2"]}}),
    "event app_uninstalled":
        lambda s: event({"type": "app_uninstalled"}),
    "event tokens_revoked":
        lambda s: event({"type": "tokens_revoked", "tokens": {"oauth": ["U2"], "bot": ["UBOT"]}}),
}
UNHANDLED = {"view_submission of a modal that is not the bot's", "view_closed", "global shortcut",
             "message shortcut (message_action)", "attachment button (interactive_message)", "dialog_submission",
             "block_suggestion (external select)", "event app_mention", "event message", "event message in a DM",
             "event of a type Slack may add tomorrow"}


async def send(bot: Bot, body: bytes, content_type: str) -> tuple[int, str]:
    headers = signed_headers(SECRET, body, content_type=content_type)
    async with aiohttp.ClientSession() as http, http.post(f"{bot.server.url}/slack/events", data=body,
                                                          headers=headers) as r:
        return r.status, await r.text()


def response_url_errors() -> float:
    return sum(sample.value for m in metrics.REGISTRY.collect() if m.name == "hello_chatops_slack_api_errors"
               for sample in m.samples if sample.name.endswith("_total")
               and sample.labels.get("method") == "response_url")


async def settle(bot: Bot) -> None:
    """Wait until the work every request started has ended (each supervisor drained, with a deadline)."""
    from bot.chat.supervise import BACKGROUND

    await bot.dispatcher.drain(timeout=30)
    await bot.services.home.supervisor.drain(timeout=30)
    await BACKGROUND.drain(timeout=30)


async def test_every_documented_body_is_answered_without_5xx_or_unhandled_exception(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    before = response_url_errors()
    answers: dict[str, tuple[int, str]] = {}
    with caplog.at_level(logging.DEBUG, logger="bot"), caplog.at_level(logging.DEBUG, logger="slack_bolt"):
        for name, build in BODIES.items():
            answers[name] = await send(bot, *build(bot.slack))
        await settle(bot)
    assert not [n for n, (status, _) in answers.items() if status >= 500], answers
    assert {n: s for n, (s, _) in answers.items() if s != 200} == {}

    assert json.loads(answers["url_verification"][1]) == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    for name in UNHANDLED - {"block_suggestion (external select)"}:
        assert answers[name][1] == "", (name, answers[name])
    assert json.loads(answers["block_suggestion (external select)"][1]) == {"options": []}

    records = caplog.records
    troubles = [f"{r.name}: {r.getMessage()[:300]}" for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not troubles, troubles
    assert not [r for r in records if "Unhandled request" in r.getMessage()]  # Bolt's long warning, with code
    unused = [r.getMessage() for r in records if r.name == "bot.chat.app" and "no listener" in r.getMessage()]
    assert len(unused) == len(UNHANDLED), unused
    assert all(r.levelno == logging.DEBUG for r in records if "no listener" in r.getMessage())

    # the replies that could not reach Slack: each one warning line with a reference, counted
    background = [r.getMessage() for r in records if r.name == "bot.chat.supervise"]
    assert background and all("reference" in line and "\n" not in line for line in background), background
    assert response_url_errors() >= before + 3  # two foreign clicks and the Home click had nowhere to answer

    # the reachable ones were answered: the foreign button, and each command (the cluster is away here)
    posts = [p for p in bot.slack.response_posts]
    assert any("not handled by this bot" in json.dumps(p) for p in posts), posts
    assert bot.slack.home("U2") is not None  # app_home_opened published the Home
    assert bot.services.messenger.stopped  # and app_uninstalled stopped that


async def test_app_uninstalled_stops_home_publishes_and_is_logged_once(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.slack.open_home("U2")
    await settle(bot)
    published = [c for c in bot.slack.calls if c["method"] == "views.publish"]
    assert published and not bot.services.messenger.stopped

    with caplog.at_level(logging.DEBUG, logger="bot"):
        # a revocation of people's tokens only leaves the bot's token working
        status, _ = await send(bot, *event({"type": "tokens_revoked", "tokens": {"oauth": ["U2"]}}))
        assert status == 200 and not bot.services.messenger.stopped
        for inner in ({"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}}):
            status, text = await send(bot, *event(inner))
            assert (status, text) == (200, "")
        await bot.slack.open_home("U2")
        bot.services.home.changed()  # a change would republish every open Home
        await settle(bot)
    assert bot.services.messenger.stopped
    assert [c for c in bot.slack.calls if c["method"] == "views.publish"] == published
    said = [r.getMessage() for r in caplog.records if "scheduled posts and Home publishes stop" in r.getMessage()]
    assert len(said) == 1 and "app_uninstalled" in said[0] and "T0001" in said[0], said
