"""The App Home tab: what waits for this user (with the buttons), what runs, the service, the changes."""

from __future__ import annotations

import json
from typing import Any

from tests.releasing.conftest import Chat


async def _home(chat: Chat, user: str, needle: str, timeout: float = 10.0) -> Any:
    """Open Home as ``user`` and wait until the published view says ``needle``."""
    await chat.slack.open_home(user)
    try:
        return await chat.slack.wait_for_home(
            user, lambda home: needle in json.dumps(home.spec, ensure_ascii=False), timeout)
    except TimeoutError:
        home = chat.slack.home(user)
        raise AssertionError(f"{user}'s Home never said {needle!r}: {home and home.spec}") from None


async def test_an_approver_sees_the_request_on_home_and_approves_it_there(chat: Chat) -> None:
    await chat.send("U1", "/hello deploy v2")
    request = await chat.approval()
    home = await _home(chat, "U2", "requested by <@U1> in")
    spec = json.dumps(home.spec, ensure_ascii=False)
    assert "*Deploy* helloworld: v1 → v2" in spec and "requested by <@U1>" in spec
    assert "approve other people's requests" in spec
    assert "*stable* `v1` 2/2 ready" in spec  # the service as it runs
    assert "Delivery, last 30 days:" in spec
    requester_home = await _home(chat, "U1", "Nothing waits for your approval.")  # not their own request
    assert "ask for deploys" in json.dumps(requester_home.spec)

    value = next(e["value"] for b in home.spec["blocks"] if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == "approve")
    await chat.slack.click_view("U2", home.id, action_id="approve", value=value)
    await chat.finished(request)
    await chat.settle()
    assert chat.container()["image"] == chat.image("v2")
    # the approver's Home is kept current: the request is gone, the change is listed
    await _home(chat, "U2", "Nothing waits for your approval.")
    refreshed = await _home(chat, "U2", "Succeeded by <@U2>")
    assert "helloworld: v1 → v2" in json.dumps(refreshed.spec, ensure_ascii=False)


async def test_home_lists_the_firing_alerts(release: Any) -> None:
    from tests.releasing.test_alert_cards import ENV, card_saying, notification, webhook

    async with release(env=ENV) as chat:
        await webhook(chat, notification())
        await card_saying(chat, "Firing: HelloworldHighErrorRate")
        home = await _home(chat, "U3", "Firing alerts")
        assert "*HelloworldHighErrorRate*" in json.dumps(home.spec)
