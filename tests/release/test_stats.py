"""`/hello stats`: delivery figures from the audit trail, answered in the channel with a chart."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from matplotlib.image import imread

from bot.core.config import Config
from bot.core.errors import UsageError
from commands import stats

Chat = Any
CONFIG = Config(slack_bot_token="xoxb-test", slack_signing_secret="secret")


def test_the_range_is_30_days_unless_asked() -> None:
    assert stats.parse([], CONFIG).range == "30d"
    assert stats.parse(["90D"], CONFIG).range == "90d"
    assert not stats.parse(["7d"], CONFIG).mutating
    for bad in (["1h"], ["30d", "90d"], ["３0d"]):
        with pytest.raises(UsageError):
            stats.parse(bad, CONFIG)
    # a service's name first (several services); checked against the catalogue when the command runs
    assert (stats.parse(["greeter"], CONFIG).service, stats.parse(["greeter"], CONFIG).range) == ("greeter", "30d")
    assert (stats.parse(["greeter", "7d"], CONFIG).service, stats.parse(["greeter", "7d"], CONFIG).range) == (
        "greeter", "7d")
    for bad in (["greeter", "7d", "x"], ["greeter", "greeter"], ["7d", "greeter"]):
        with pytest.raises(UsageError):
            stats.parse(bad, CONFIG)


async def newest_upload(chat: Chat, before: int) -> Any:
    deadline = asyncio.get_running_loop().time() + 30
    while len(chat.slack.files) <= before or not list(chat.slack.files.values())[-1].completed:
        assert asyncio.get_running_loop().time() < deadline, "no chart was uploaded"
        await asyncio.sleep(0.05)
    return list(chat.slack.files.values())[-1]


async def test_stats_answers_with_the_figures_and_a_chart(chat: Chat, tmp_path) -> None:
    deployed = await chat.approve("U1", '/hello deploy v2 "fix the login bug"')
    rolled = await chat.approve("U1", '/hello rollback "login still broken"', exclude=[deployed.ts])
    await chat.approve("U1", '/hello deploy v3 "fix it properly"', exclude=[deployed.ts, rolled.ts])
    before = len(chat.slack.files)
    await chat.send("U3", "/hello stats")  # read-only: anyone may
    reply = await chat.message_saying("Delivery, last 30 days")
    blocks = json.dumps(reply.blocks, ensure_ascii=False)
    assert "*Deployment frequency*\\n2 in 30 days" in blocks
    assert "*Change failure rate*\\n50% (1 of 2 changes)" in blocks  # v2 was rolled back, v3 was not
    assert "*Time to restore*\\nmedian " in blocks and "(1 restored)" in blocks
    assert "*Request to live*\\nmedian " in blocks and "(2 deployments)" in blocks
    assert "deploy `v2`: rolled back, restored in" in blocks
    assert "the audit trail holds records since" in blocks and "JSON audit log lines are the durable record" in blocks
    assert "change failure rate 50%" in reply.text

    upload = await newest_upload(chat, before)
    png = chat.slack.file_bytes(upload.id)
    (tmp_path / "stats.png").write_bytes(png)
    image = imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (650, 1200)
    assert upload.title == "helloworld delivery, last 30 days (UTC)"
    assert upload.channels == ["C1"]


async def test_stats_on_an_empty_trail_says_so(chat: Chat) -> None:
    await chat.send("U3", "/hello stats 90d")
    reply = await chat.message_saying("Delivery, last 90 days")
    blocks = json.dumps(reply.blocks, ensure_ascii=False)
    assert "0 in 90 days" in blocks and "the audit trail holds no records" in blocks
    assert "*Change failure rate*\\n–" in blocks
    await chat.send("U3", "/hello stats greeter")  # no catalogue: there is no service to name
    await chat.private("U3", "there is one service here")


def test_text_from_the_trail_is_escaped_in_the_answer() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.observe import delivery
    from bot.release.audit import Entry

    now = datetime(2026, 12, 1, tzinfo=UTC)
    forged = [Entry(at=now - timedelta(hours=h), reason="x", verb="Deploy", phase=phase, user="U1", summary="s",
                    request_id="<!channel>", action="deploy", facts={"version": "<https://evil.example|v2>"})
              for h, phase in ((3, "Requested"), (2, "Approved"), (1, "Failed"))]
    lines = stats.failure_lines(delivery.compute(forged, end=now, days=30))
    assert len(lines) == 1
    assert "<!channel>" not in lines[0] and "<https://" not in lines[0]
    assert "&lt;!channel&gt;" in lines[0] and "&lt;https://evil.example|v2&gt;" in lines[0]
