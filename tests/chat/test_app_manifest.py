"""app.yaml is a valid Slack app manifest asking for exactly the scopes the code needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "crds" / "slack-app-manifest.schema.json"

# Web API method -> the bot scope Slack requires for it (api.slack.com/methods).
SCOPES = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "files_upload_v2": "files:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "views.publish": None,  # no scope: the App Home feature (app.yaml features.app_home)
    "views.open": None,  # no scope: a modal opened with a trigger id
    "conversations.info": "channels:read",
}
CALL = re.compile(r"""_call\(\s*["']([a-z]+\.[\w.]+|files_upload_v2)["']""")


def manifest() -> dict:
    return yaml.safe_load((ROOT / "app.yaml").read_text())


def methods_called() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        found |= set(CALL.findall(path.read_text()))
    for path in (ROOT / "commands").rglob("*.py"):
        found |= set(CALL.findall(path.read_text()))
    return found


def test_code_calls_only_known_methods() -> None:
    called = methods_called()
    assert {"chat.postMessage", "chat.update", "files_upload_v2", "usergroups.users.list"} <= called
    unknown = called - set(SCOPES)
    assert not unknown, f"add the scope of {unknown} to SCOPES and app.yaml"


def test_scopes_are_exactly_what_the_code_uses() -> None:
    needed = {SCOPES[m] for m in methods_called() if SCOPES[m]} | {"commands"}
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed


def test_slash_command_interactivity_and_socket_mode_flag() -> None:
    data = manifest()
    (command,) = data["features"]["slash_commands"]
    assert command["command"] == "/hello"
    assert command["description"] and command["usage_hint"]
    assert command["url"].endswith("/slack/events")
    assert data["settings"]["interactivity"]["is_enabled"] is True
    assert data["settings"]["interactivity"]["request_url"] == command["url"]
    assert data["settings"]["socket_mode_enabled"] is False
    assert data["features"]["bot_user"]["display_name"]


def test_events_subscribed_are_the_events_the_bot_listens_to() -> None:
    """The removal events are subscribed (the bot stops posting where it was removed), and every event
    subscribed has a listener: Slack sends nothing else, and anything else would be acked unused."""
    events = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_home_opened", "app_uninstalled", "tokens_revoked"} <= events
    source = (ROOT / "bot" / "chat" / "listeners.py").read_text()
    listened = set(re.findall(r"""app\.event\(["']([a-z_]+)["']\)""", source))
    assert events == listened, (events, listened)


def test_manifest_validates_against_slack_schema() -> None:
    if not SCHEMA.exists():
        pytest.skip(f"Slack manifest schema validation skipped: {SCHEMA} is not beside the checkout")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(manifest(), schema)
