"""The views: Block Kit built one way, every message checked against Slack's limits before it leaves."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackObjectFormationError

from bot.chat.views import approval, kit, notice, schedules, status


def test_a_message_of_more_blocks_than_slack_takes_is_refused_here() -> None:
    assert len(kit.blocks([kit.divider()] * kit.MESSAGE_BLOCKS)) == 50
    with pytest.raises(ValueError, match="51 blocks: Slack accepts at most 50"):
        kit.blocks([kit.divider()] * 51)
    assert len(kit.blocks([kit.divider()] * 100, limit=kit.VIEW_BLOCKS)) == 100  # the Home tab's, a modal's


def test_texts_are_cut_to_what_slack_takes_where_they_go() -> None:
    header, section, fields, context = kit.blocks(
        kit.header("h" * 200), kit.section("s" * 4000), kit.section(fields=["f" * 2500] * 12), kit.context("c" * 4000))
    assert len(header["text"]["text"]) == 150
    assert len(section["text"]["text"]) == 3000
    assert len(fields["fields"]) == 10 and {len(f["text"]) for f in fields["fields"]} == {2000}
    assert len(context["elements"][0]["text"]) == 3000
    (row,) = kit.blocks(kit.actions([kit.button("b" * 100, "approve", value="1")]))
    assert len(row["elements"][0]["text"]["text"]) == 75


def test_a_block_slack_would_refuse_never_leaves_the_bot() -> None:
    with pytest.raises(SlackObjectFormationError):
        kit.blocks(kit.actions([kit.button("Go", "a" * 300, value="1")]))  # action ids: 255 at most
    with pytest.raises(SlackObjectFormationError):
        kit.blocks(kit.actions([kit.button("Go", "go", value="v" * 2001)]))  # values: 2000 at most
    with pytest.raises(SlackObjectFormationError):
        kit.validate([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])


def test_left_out_blocks_are_skipped_and_lists_flattened() -> None:
    out = kit.blocks(kit.header("a"), None, [kit.divider(), kit.divider()], kit.context("b"))
    assert [b["type"] for b in out] == ["header", "divider", "divider", "context"]


def test_approval_offers_approve_and_reject_carrying_the_request_id() -> None:
    blocks = approval.blocks(approval.Approval(id="abc123", requester="U1", label="Deploy", summary="v1 → v2 <b>",
                                               state_line="Waiting", plan=("Set <image>",), pending=True))
    assert blocks[0]["text"]["text"] == ":raised_hand: <@U1> asks for a *Deploy*\n*v1 → v2 &lt;b&gt;*"
    assert blocks[1]["elements"][0]["text"] == "Plan: Set &lt;image&gt;"
    row = blocks[2]
    assert row["block_id"] == "decision-abc123"
    assert [(b["action_id"], b["value"], b["style"]) for b in row["elements"]] == [
        ("approve", "abc123", "primary"), ("reject", "abc123", "danger")]
    assert blocks[-1]["elements"][0]["text"] == "Waiting · request `abc123`"


def test_the_schedule_list_escapes_the_lease_holder_it_did_not_write() -> None:
    (*_, context) = schedules.listing([], timezone="UTC", leader="<!channel> pod")
    assert context["elements"][0]["text"] == ("Times in UTC. Posted by the replica holding the lease: "
                                              "&lt;!channel&gt; pod.")


def test_the_status_overview_offers_at_most_a_hundred_services_in_its_select() -> None:
    pairs = [(f"service{n}", "production") for n in range(150)]
    _, row, _ = status.overview([f"service{n}" for n in range(150)], pairs)
    (select,) = row["elements"]
    assert select["action_id"] == row["block_id"] == "status_details"
    assert len(select["options"]) == 100 and select["options"][0]["value"] == "service0 production"


def test_a_notice_is_one_section() -> None:
    assert notice.blocks("done") == [{"type": "section", "text": {"type": "mrkdwn", "text": "done"}}]


def test_a_modal_is_checked_against_a_views_limits() -> None:
    field = kit.input_text("version", "Version", "e.g. v2", placeholder="v2")
    modal = kit.modal("cb", "A title longer than Slack's twenty-four", submit="Go", close="Cancel", metadata="{}",
                      items=[field])
    assert modal["type"] == "modal" and len(modal["title"]["text"]) == 24
    assert modal["blocks"][0]["element"] == {"type": "plain_text_input", "action_id": "version", "max_length": 100,
                                             "placeholder": {"type": "plain_text", "text": "v2"}}
    with pytest.raises(ValueError, match="101 blocks"):
        kit.modal("cb", "T", submit="Go", close="Cancel", metadata="{}", items=[field] * 101)
    with pytest.raises(SlackObjectFormationError):
        kit.modal("cb", "T", submit="Go", close="Cancel", metadata="x" * 3001, items=[field])
