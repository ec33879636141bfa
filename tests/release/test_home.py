"""The App Home tab: what waits for this user (with the buttons), what runs, the service, the changes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.chat.views.home import MAX_BLOCKS, HomeData, Pending, ServiceStatus, view
from tests.harness.chat import Chat


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
    from tests.harness.alerting import ENV, card_saying, notification, webhook

    async with release(env=ENV) as chat:
        await webhook(chat, notification())
        await card_saying(chat, "Firing: HelloworldHighErrorRate")
        home = await _home(chat, "U3", "Firing alerts")
        assert "*HelloworldHighErrorRate*" in json.dumps(home.spec)


# ---------------------------------------------------------------- the pure view, one service and several


def _status(service: str, environment: str) -> ServiceStatus:
    lines = ("*stable* `v1` 2/2 ready", "certificate `hello-tls`: 60 days left", ":white_check_mark: healthy")
    line = f":white_check_mark: *{service}* {environment}: stable `v1` 2/2 ready, healthy · certificate 60 days"
    return ServiceStatus(service, environment, lines, line)


def _texts(home: dict) -> list[str]:
    return [b["text"]["text"] for b in home["blocks"] if b["type"] in ("section", "header")]


def test_with_one_service_home_keeps_its_one_service_section() -> None:
    home = view(HomeData(user="U1", service=["*stable* `v1` 2/2 ready"]))
    texts = _texts(home)
    assert "The service" in texts and "Services" not in texts
    assert texts[texts.index("The service") + 1] == "*stable* `v1` 2/2 ready"


def test_several_services_get_a_section_each() -> None:
    pairs = [("helloworld", "staging"), ("helloworld", "production"), ("greeter", "staging")]
    home = view(HomeData(user="U1", services=[_status(s, e) for s, e in pairs]))
    texts = _texts(home)
    assert "The service" not in texts
    start = texts.index("Services") + 1
    assert texts[start:start + 3] == [f"*{s}* · {e}\n*stable* `v1` 2/2 ready\ncertificate `hello-tls`: 60 days left"
                                      "\n:white_check_mark: healthy" for s, e in pairs]
    assert texts[start + 3] == "Last changes"


def _full(services: list[ServiceStatus]) -> HomeData:
    """Home with everything else at its largest: ten requests with their buttons, alerts, schedules, problems."""
    pending = [Pending(id=f"r{n}", label="Deploy", summary=f"greeter (staging): v{n} → v{n + 1}", requester="U1",
                       channel="C1", expires="12:00 UTC") for n in range(12)]
    return HomeData(user="U2", may=["approve other people's requests"], pending=pending, running=["*Deploy* x"],
                    services=services, changes=["a change"], schedules=["`0 9 * * *` in <#C1>"],
                    alerts=["an alert"], delivery="Delivery, last 30 days: 3 deploys", problems=["audit: down"])


def test_when_the_sections_would_pass_100_blocks_each_pair_gets_one_line() -> None:
    items = [_status(f"service{n:02}", env) for n in range(40) for env in ("staging", "production")]
    home = view(_full(items))
    blocks = home["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    texts = _texts(home)
    listed = "\n".join(texts[texts.index("Services") + 1:texts.index("Last changes")])
    assert listed.splitlines() == [item.line for item in items]  # every pair, one line each, in order
    assert "Scheduled status posts" in texts and blocks[-1]["type"] == "context"  # nothing after it was lost
    assert sum(1 for b in blocks if b["type"] == "actions") == 10  # the requests keep their buttons


def test_more_pairs_than_even_one_line_each_can_hold_are_counted() -> None:
    items = [_status(f"service{n:04}", "production") for n in range(3000)]
    home = view(_full(items))
    assert len(home["blocks"]) == MAX_BLOCKS
    texts = _texts(home)
    section = texts[texts.index("Services") + 1:texts.index("Last changes")]
    assert all(len(text) <= 3000 for text in section)
    shown = [line for text in section for line in text.splitlines() if line.startswith(":white_check_mark:")]
    assert shown == [item.line for item in items[:len(shown)]] and 1000 < len(shown) < 3000
    assert section[-1].endswith(f"…and {3000 - len(shown)} more: `/hello status` lists every service and environment")


def test_a_pair_that_cannot_be_read_says_why_in_its_section() -> None:
    from datetime import UTC, datetime

    from bot.observe.status import OverviewLine
    from bot.release.home import _service_status

    item = _service_status(OverviewLine("greeter", "production", error="context production: connection refused"),
                           datetime.now(UTC))
    assert item.lines == (":grey_question: cannot read it: context production: connection refused",)
    assert item.line == ":grey_question: *greeter* production: context production: connection refused"
    home = view(HomeData(user="U1", services=[item]))
    assert "*greeter* · production\n:grey_question: cannot read it" in json.dumps(home, ensure_ascii=False) \
        .replace("\\n", "\n")


async def test_home_shows_a_person_outside_the_readers_only_why(release: Any) -> None:
    # HELLO_READERS names who may read: /hello status refuses the others, and so does Home (#25 item 6)
    async with release(env={"HELLO_READERS": "U1,U2"}) as chat:
        await chat.send("U1", "/hello deploy v2")
        await chat.approval()
        outsider = await _home(chat, "U3", "HELLO_READERS")
        spec = json.dumps(outsider.spec, ensure_ascii=False)
        assert "is not allowed to use read-only commands" in spec
        for secret in ("helloworld", "`v1`", "requested by", "Delivery", "certificate", "Last changes"):
            assert secret not in spec, secret
        reader = await _home(chat, "U2", "requested by <@U1> in")
        assert "*stable* `v1` 2/2 ready" in json.dumps(reader.spec, ensure_ascii=False)


def test_the_refusal_view_holds_nothing_but_the_refusal() -> None:
    home = view(HomeData(user="U9", refused="<@U9> is not allowed", may=["approve"], changes=["x"]))
    assert _texts(home) == ["hello-chatops", "<@U9> is not allowed"]


async def test_one_persons_rate_limited_home_does_not_hold_anothers(chat: Chat) -> None:
    await _home(chat, "U1", "Nothing waits for your approval.")
    await _home(chat, "U2", "Nothing waits for your approval.")
    chat.slack.add_fault("views.publish", status=429, retry_after=15)  # the next publish, whoever's it is
    await chat.send("U1", "/hello deploy v2")
    await chat.approval()  # the change republishes both Homes, one of them into the limit

    def publishes() -> list[int]:
        return [c["status"] for c in chat.slack.calls if c["method"] == "views.publish"]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while 429 not in publishes():
        assert loop.time() < deadline, f"no Home was republished: {publishes()}"
        await asyncio.sleep(0.02)
    deadline = loop.time() + 8  # well inside the limited one's Retry-After
    while 200 not in publishes()[publishes().index(429):]:
        assert loop.time() < deadline, f"the other Home waited: {publishes()}"
        await asyncio.sleep(0.02)
