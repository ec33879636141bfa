"""Two replicas editing one release message: when the release is taken over, the edit of the replica that lost it,
held by Slack's rate limit, must not land after the new driver's final state."""

from __future__ import annotations

from bot.chat.messenger import Messenger, make_client
from bot.core import config as config_module
from bot.release.rollout import MessageEditor
from sandbox.slack import SlackEmulator
from tests.harness.wait import until


async def _two_editors(slack: SlackEmulator, base_env: dict[str, str]) -> tuple[MessageEditor, MessageEditor, str]:
    config = config_module.load(base_env)
    first, second = Messenger(make_client(config)), Messenger(make_client(config))
    ts = await first.post("C1", "Deploy: v1 → v2 — Running…")
    return MessageEditor(first, "C1", ts, interval=0), MessageEditor(second, "C1", ts, interval=0), ts


def _updates(slack: SlackEmulator) -> list[int]:
    return [call["status"] for call in slack.calls if call["method"] == "chat.update"]


async def test_an_abandoned_editors_held_edit_never_lands_over_the_new_drivers_final_state(
        slack: SlackEmulator, base_env: dict[str, str]) -> None:
    lost, taken, ts = await _two_editors(slack, base_env)
    slack.rate_limit("chat.update", times=1, retry_after=1)
    await lost.show("Deploy: v1 → v2 — Running… baking, 9 min left", [])
    await until(lambda: _updates(slack) == [429], "the first replica's edit held by the limit")
    lost.abandon()  # its claim was lost: the other replica drives the release now
    await taken.final("Deploy: v1 → v2 — Superseded by rollback `r2`", [])
    assert await taken.sent(10)
    # the held edit is cancelled, not waiting out its Retry-After: nothing of the first replica's can land later
    assert await lost.sent(1) and lost.messenger.edits_pending == 0
    (message,) = [m for m in slack.messages("C1") if m.ts == ts]
    assert message.text == "Deploy: v1 → v2 — Superseded by rollback `r2`"
    assert _updates(slack) == [429, 200]


async def test_without_abandoning_the_held_edit_lands_last(slack: SlackEmulator, base_env: dict[str, str]) -> None:
    """What abandoning prevents: the held edit, sent once its Retry-After passed, shows the older state."""
    lost, taken, ts = await _two_editors(slack, base_env)
    slack.rate_limit("chat.update", times=1, retry_after=1)
    await lost.show("Deploy: v1 → v2 — Running… baking, 9 min left", [])
    await until(lambda: _updates(slack) == [429], "the first replica's edit held by the limit")
    await taken.final("Deploy: v1 → v2 — Superseded by rollback `r2`", [])
    assert await taken.sent(10) and await lost.sent(10)
    (message,) = [m for m in slack.messages("C1") if m.ts == ts]
    assert message.text == "Deploy: v1 → v2 — Running… baking, 9 min left"
