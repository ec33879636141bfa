"""Talking to the sandbox through its console's API, as the browser does: send a command, find a message,
approve a request. Shared by the sandbox tests of canaries and of the bake window; ``tools`` is the e2e
conftest's fixture of helpers."""

from __future__ import annotations

import json
from typing import Any

CHANNEL = "C3"  # #helloworld: the sandbox has two services, and helloworld's changes are asked for there


def messages(tools: Any, proc: Any, channel: str = CHANNEL) -> list[dict]:
    return tools.get_json(f"{proc.url}/api/state")["messages"][channel]


def find(tools: Any, proc: Any, predicate: Any, timeout: float, what: str) -> dict:
    """The first message of #helloworld ``predicate`` accepts, waiting up to ``timeout`` seconds."""
    return tools.wait_until(lambda: next((m for m in messages(tools, proc) if predicate(m)), None), timeout, what)


def button(message: dict, action_id: str) -> dict | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def ask_and_approve(tools: Any, proc: Any, text: str, seen: set[str]) -> dict:
    """Send ``text`` as U1 in #helloworld, click Approve as U2 on the new request (one not in ``seen``)."""
    assert tools.post_json(f"{proc.url}/api/command", {"user": "U1", "channel": CHANNEL, "text": text})["ok"]
    request = find(tools, proc, lambda m: m["ts"] not in seen and button(m, "approve"), 20, "the approval request")
    seen.add(request["ts"])
    approve = button(request, "approve")
    reply = tools.post_json(f"{proc.url}/api/click", {"user": "U2", "channel": CHANNEL, "message_ts": request["ts"],
                                                      "action_id": "approve", "value": approve["value"]})
    assert reply["ok"], reply
    return request


def text(message: dict) -> str:
    """A message's text and blocks, as one string to search."""
    return message["text"] + json.dumps(message.get("blocks") or [], ensure_ascii=False)
