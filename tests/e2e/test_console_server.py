"""The console's JSON/SSE bridge, over the real bot and the Slack emulator (no browser)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.console.server import ConsoleServer, split_command, usage_hint
from sandbox.run import ROLES, SANDBOX_ENV, Sandbox
from sandbox.stack import BOT_TOKEN, Stack


@pytest.fixture
async def console() -> AsyncIterator[tuple[Stack, ConsoleServer, aiohttp.ClientSession]]:
    async with Stack(env=SANDBOX_ENV) as stack:
        server = await ConsoleServer(stack.slack, roles=ROLES, links=[{"label": "Prometheus", "url": ""}]).start()
        try:
            async with aiohttp.ClientSession(base_url=server.url) as http:
                yield stack, server, http
        finally:
            await server.stop()


async def post(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(path, json=body) as response:
        return response.status, await response.json()


def test_command_splitting_and_usage_hint() -> None:
    assert split_command(" /hello canary v2 10% ") == ("/hello", "canary v2 10%")
    assert split_command("/hello") == ("/hello", "")
    assert split_command("hello there") is None
    assert "status" in usage_hint() and "canary" in usage_hint()


async def test_page_and_config(console) -> None:  # type: ignore[no-untyped-def]
    _, _, http = console
    for path, kind in (("/", "text/html"), ("/console.js", "application/javascript"), ("/console.css", "text/css")):
        async with http.get(path) as response:
            assert response.status == 200 and response.content_type == kind
            assert len(await response.read()) > 500
    async with http.get("/api/config") as response:
        config = await response.json()
    assert config["usage_hint"] == usage_hint()
    assert config["channel"] == "C1"
    assert {u["name"]: u["role"] for u in config["users"]} == {"dana": "deployer", "avery": "approver",
                                                              "sam": "no rights"}


async def test_slash_command_reaches_the_bot_and_its_answer_shows(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    status, body = await post(http, "/api/command", {"user": "U3", "channel": "C1", "text": "/hello help"})
    assert (status, body["ok"]) == (200, True)
    await stack.slack.wait_for(lambda m: getattr(m, "user", None) == "U3" and "/hello status" in m.text, 10)
    async with http.get("/api/state") as response:
        state = await response.json()
    answers = [e for e in state["ephemerals"]["C1"] if e["user"] == "U3"]
    assert answers and "/hello status" in answers[-1]["text"]
    # Nothing was posted in the channel for everyone: help is private.
    assert state["messages"]["C1"] == []


async def test_refusals_are_explained(console) -> None:  # type: ignore[no-untyped-def]
    _, _, http = console
    status, body = await post(http, "/api/command", {"user": "U1", "text": "/deploy v2"})
    assert status == 400 and "/deploy is not a valid command" in body["error"]
    status, body = await post(http, "/api/command", {"user": "U9", "text": "/hello status"})
    assert status == 400
    status, body = await post(http, "/api/click", {"user": "U2", "message_ts": "1.000001", "action_id": "approve"})
    assert status == 404 and "no message" in body["error"]


async def test_events_stream_changes(console) -> None:  # type: ignore[no-untyped-def]
    _, _, http = console
    async with http.get("/api/events") as stream:
        assert stream.content_type == "text/event-stream"
        hello = await stream.content.readuntil(b"\n\n")
        assert hello.startswith(b"event: hello")
        status, _ = await post(http, "/api/message", {"user": "U1", "text": "shipping *v2* today"})
        assert status == 200
        async with asyncio.timeout(5):
            record = await stream.content.readuntil(b"\n\n")
    lines = dict(line.split(": ", 1) for line in record.decode().strip().splitlines())
    assert lines["event"] == "message_posted"
    event = json.loads(lines["data"])
    assert event["message"]["user"] == "U1" and event["message"]["text"] == "shipping *v2* today"


async def test_uploaded_files_are_served_for_img_tags(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    client = AsyncWebClient(token=BOT_TOKEN, base_url=stack.slack.api_url)
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    answer = await client.files_upload_v2(channel="C1", content=png, filename="chart.png", title="chart")
    file_id = answer["files"][0]["id"] if "files" in answer else answer["file"]["id"]
    async with http.get(f"/files/{file_id}/chart.png") as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == png
    async with http.get("/files/F404/none.png") as response:
        assert response.status == 404


async def test_the_state_page_says_when_the_bot_was_rate_limited(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    assert stack.slack.limits.enabled  # the sandbox's emulator enforces Slack's documented limits
    async with http.get("/api/state") as response:
        assert (await response.json())["rate_limited"]["count"] == 0
    stack.slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    ts = await stack.replicas[0].services.messenger.post("C1", "after a wait")
    assert [m.text for m in stack.slack.messages("C1") if m.ts == ts] == ["after a wait"]
    async with http.get("/api/state") as response:
        limited = (await response.json())["rate_limited"]
    assert limited["count"] == 1 and limited["recent"][0]["method"] == "chat.postMessage"
    assert limited["line"].startswith("The app was rate-limited once; last: chat.postMessage")
    async with http.get("/") as response:
        assert 'id="ratelimit"' in await response.text()


# ------------------------------------------------------------- forms and the Home tab (issue 18)
def has_approve(view: Any) -> bool:
    return any(b.get("type") == "actions" and any(e.get("action_id") == "approve" for e in b.get("elements", []))
               for b in view.blocks)


async def test_the_form_shows_its_errors_then_asks_for_approval(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    status, _ = await post(http, "/api/command", {"user": "U1", "channel": "C1", "text": "/hello deploy"})
    assert status == 200
    form = await stack.slack.wait_for_modal("U1", timeout=10)
    async with http.get("/api/state") as response:
        shown = (await response.json())["views"]["modals"]["U1"][-1]
    assert shown["id"] == form.id and shown["title"]["text"] == "Deploy"
    assert [b["block_id"] for b in shown["blocks"] if b["type"] == "input"] == ["recent", "version", "reason"]
    assert [o["text"]["text"] for o in shown["blocks"][0]["element"]["options"]] == ["v1 (running)"]

    # A full-width digit: the bot answers with response_action errors, shown under the block.
    wide = {"user": "U1", "view_id": form.id, "values": {"version": "v\uff12"}}
    status, answer = await post(http, "/api/submit", wide)
    assert (status, answer["ok"], answer["outcome"]) == (200, True, "errors"), answer
    assert "ASCII" in answer["errors"]["version"]
    assert stack.slack.modal_errors("U1") == answer["errors"]
    # Neither a recent version nor a typed one: the bot asks for one under the select.
    empty = {"recent": None, "version": ""}
    status, answer = await post(http, "/api/submit", {"user": "U1", "view_id": form.id, "values": empty})
    assert (status, answer["outcome"]) == (200, "errors") and list(answer["errors"]) == ["recent"], answer
    # Both: under the typed version.
    both = {"recent": "v1", "version": "v2"}
    status, answer = await post(http, "/api/submit", {"user": "U1", "view_id": form.id, "values": both})
    assert (status, answer["outcome"]) == (200, "errors") and list(answer["errors"]) == ["version"], answer

    typed = {"recent": None, "version": "v2"}
    status, answer = await post(http, "/api/submit", {"user": "U1", "view_id": form.id, "values": typed})
    assert (status, answer["outcome"]) == (200, "closed"), answer
    assert stack.slack.modal("U1") is None
    approval = await stack.slack.wait_for(approval_with_button, 20)
    assert "v2" in approval.text and "U1" in approval.text


async def test_cancel_closes_the_form(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    await post(http, "/api/command", {"user": "U1", "channel": "C1", "text": "/hello canary"})
    form = await stack.slack.wait_for_modal("U1", timeout=10)
    assert list(form.input_blocks()) == ["recent", "version", "percent", "reason"]
    status, answer = await post(http, "/api/close_view", {"user": "U1", "view_id": form.id})
    assert (status, answer["ok"]) == (200, True)
    assert stack.slack.modal("U1") is None
    status, answer = await post(http, "/api/close_view", {"user": "U1", "view_id": form.id})
    assert status == 404 and not answer["ok"]
    assert stack.slack.messages("C1") == []


async def test_a_view_pushed_over_another(console) -> None:  # type: ignore[no-untyped-def]
    """Only the top view can be used; Cancel goes back one view, closing with ``clear`` closes them all."""
    stack, _, http = console
    views = stack.slack.views

    def spec(title: str) -> dict[str, Any]:
        return {"type": "modal", "title": {"type": "plain_text", "text": title},
                "close": {"type": "plain_text", "text": "Back"}, "blocks": []}

    for clear in (False, True):
        root = views.open("U3", spec("First"))
        top = views.push("U3", spec("Second"))
        status, answer = await post(http, "/api/close_view", {"user": "U3", "view_id": root.id})
        assert (status, answer["ok"]) == (409, False)
        status, answer = await post(http, "/api/close_view", {"user": "U3", "view_id": top.id, "clear": clear})
        assert (status, answer["ok"]) == (200, True)
        assert stack.slack.modal("U3") is (None if clear else root)


async def test_home_lists_the_request_and_approves_it(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    await post(http, "/api/command", {"user": "U1", "channel": "C1", "text": "/hello deploy v2"})
    approval = await stack.slack.wait_for(approval_with_button, 20)
    status, answer = await post(http, "/api/home", {"user": "U2"})
    assert (status, answer["ok"]) == (200, True)
    # The Home is published on opening, and again once the request is recorded with its message.
    home = await stack.slack.wait_for_home("U2", has_approve, timeout=15)
    async with http.get("/api/state") as response:
        assert (await response.json())["views"]["homes"]["U2"]["id"] == home.id
    block = next(b for b in home.blocks if b.get("type") == "actions")
    button = block["elements"][0]
    status, answer = await post(http, "/api/view_click", {
        "user": "U2", "view_id": home.id, "action_id": "approve", "block_id": block["block_id"],
        "value": button["value"]})
    assert (status, answer["ok"]) == (200, True), answer
    done = await stack.slack.wait_for(
        lambda m: getattr(m, "ts", "") == approval.ts and "runs `v2`" in m.text, 40)
    assert "2/2 ready" in done.text
    # Nothing waits for avery any more.
    await stack.slack.wait_for_home("U2", lambda view: not has_approve(view), timeout=15)


async def test_form_and_home_routes_refuse_what_they_cannot_do(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, http = console
    await post(http, "/api/command", {"user": "U1", "channel": "C1", "text": "/hello deploy"})
    form = await stack.slack.wait_for_modal("U1", timeout=10)
    await post(http, "/api/home", {"user": "U2"})
    home = await stack.slack.wait_for_home("U2", timeout=10)
    sent = len(stack.slack.sender.sent)
    refused = [
        ("/api/home", {"user": "U9"}, 400),
        ("/api/home", {}, 400),
        ("/api/submit", {"user": "U9", "view_id": form.id, "values": {}}, 400),
        ("/api/submit", {"user": "U1", "values": {"version": "v2"}}, 400),
        ("/api/submit", {"user": "U1", "view_id": ["V1"], "values": {}}, 400),
        ("/api/submit", {"user": "U1", "view_id": form.id, "values": ["v2"]}, 400),
        ("/api/submit", {"user": "U1", "view_id": form.id, "values": {"version": {"x": 1}}}, 400),
        ("/api/submit", {"user": "U1", "view_id": form.id, "values": {"nowhere": "v2"}}, 400),
        ("/api/submit", {"user": "U1", "view_id": "V9999999999", "values": {"version": "v2"}}, 404),
        ("/api/submit", {"user": "U2", "view_id": form.id, "values": {"version": "v2"}}, 404),  # dana's form
        ("/api/submit", {"user": "U2", "view_id": home.id, "values": {}}, 404),  # a Home is no form
        ("/api/close_view", {"user": "U2", "view_id": form.id}, 404),
        ("/api/close_view", {"user": "U1"}, 400),
        ("/api/close_view", {"user": "U1", "view_id": form.id, "clear": "yes"}, 400),
        ("/api/view_click", {"user": "U2", "view_id": home.id}, 400),  # no action_id
        ("/api/view_click", {"user": "U2", "view_id": home.id, "action_id": "approve", "value": 7}, 400),
        ("/api/view_click", {"user": "U2", "view_id": "V9999999999", "action_id": "approve"}, 404),
        ("/api/view_click", {"user": "U1", "view_id": home.id, "action_id": "approve"}, 404),  # avery's Home
        ("/api/view_click", {"user": "U2", "view_id": home.id, "action_id": "launch"}, 404),  # no such button
    ]
    for path, body, expected in refused:
        status, answer = await send(http, path, body)
        assert (status, answer["ok"]) == (expected, False), (path, body, answer)
        assert answer["error"]
    for path in ("/api/home", "/api/submit", "/api/close_view", "/api/view_click"):
        status, answer = await send(http, path, "[1, 2")
        assert (status, answer["ok"]) == (400, False), path
    # What another site would make dana submit, avery click or cancel: refused before it is read.
    forged = [("/api/submit", {"user": "U1", "view_id": form.id, "values": {"version": "v2"}}),
              ("/api/close_view", {"user": "U1", "view_id": form.id}),
              ("/api/view_click", {"user": "U2", "view_id": home.id, "action_id": "approve"})]
    for path, body in forged:
        for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/"}, {"Sec-Fetch-Site": "cross-site"}):
            status, answer = await send(http, path, body, **headers)
            assert (status, answer["ok"]) == (403, False), (path, headers)
    assert len(stack.slack.sender.sent) == sent  # nothing reached the bot
    assert stack.slack.modal("U1") is form and stack.slack.modal_errors("U1") == {}


# ------------------------------------------------------------- requests from other sites (issue 12, 2)
EVIL = "http://evil.example"


async def send(http: aiohttp.ClientSession, path: str, body: dict[str, Any] | str, **headers: str
               ) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (a dict as JSON, a str as it is) with extra ``headers``; the answer must be JSON."""
    data = body if isinstance(body, str) else json.dumps(body)
    headers.setdefault("Content-Type", "application/json")
    async with http.post(path, data=data, headers=headers) as response:
        assert response.content_type == "application/json", (path, response.status, await response.text())
        return response.status, await response.json()


def approval_with_button(message: Any) -> bool:
    return getattr(message, "channel", "") == "C1" and any(
        element.get("action_id") == "approve"
        for block in getattr(message, "blocks", None) or [] if block.get("type") == "actions"
        for element in block.get("elements", []))


async def test_a_page_on_another_site_cannot_approve_or_deploy(console) -> None:  # type: ignore[no-untyped-def]
    """The issue's attack: a page elsewhere made avery approve and dana deploy. Now nothing reaches the bot."""
    stack, _, http = console
    status, _ = await post(http, "/api/command", {"user": "U1", "text": "/hello canary v2 10%"})
    assert status == 200
    approval = await stack.slack.wait_for(approval_with_button, 20)
    sent = list(stack.slack.sender.sent)
    click = {"user": "U2", "channel": "C1", "message_ts": approval.ts, "action_id": "approve"}
    deploy = {"user": "U1", "channel": "C1", "text": "/hello deploy v2"}
    forged = [
        ("/api/click", click, {"Origin": EVIL}),
        ("/api/command", deploy, {"Origin": EVIL}),
        ("/api/command", deploy, {"Origin": "null"}),  # a sandboxed iframe or a file:// page
        ("/api/click", click, {"Referer": f"{EVIL}/cat-pictures"}),  # no Origin, a foreign Referer
        ("/api/command", deploy, {"Sec-Fetch-Site": "cross-site"}),
        ("/api/home", {"user": "U2"}, {"Origin": EVIL}),
    ]
    for path, body, headers in forged:
        status, answer = await send(http, path, body, **headers)
        assert (status, answer["ok"]) == (403, False), (path, headers, answer)
        assert answer["error"]
    # Nothing was sent to the bot, and the approval still waits for its click.
    assert stack.slack.sender.sent == sent
    current = stack.slack.workspace.find_message("C1", approval.ts)
    assert current is not None and approval_with_button(current) and current.text == approval.text


async def test_messages_from_other_origins_change_nothing(console) -> None:  # type: ignore[no-untyped-def]
    stack, server, http = console
    before = stack.slack.state()
    body = {"user": "U1", "channel": "C1", "text": "forged"}
    port = server.port
    for headers in (
        {"Origin": EVIL},
        {"Origin": f"http://localhost:{port + 1 if port < 65535 else port - 1}"},  # same site, another origin
        {"Origin": f"https://127.0.0.1:{port}"},
        {"Referer": f"{EVIL}/"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": server.url, "Sec-Fetch-Site": "cross-site"},
    ):
        status, answer = await send(http, "/api/message", body, **headers)
        assert (status, answer["ok"]) == (403, False), (headers, answer)
    assert stack.slack.state() == before
    assert stack.slack.sender.sent == []


async def test_only_json_bodies_are_accepted(console) -> None:  # type: ignore[no-untyped-def]
    """A cross-site form or a ``text/plain`` fetch (no CORS preflight) carries no JSON Content-Type: 415."""
    stack, _, http = console
    before = stack.slack.state()
    as_json = json.dumps({"user": "U1", "channel": "C1", "text": "/hello deploy v2"})
    multipart = '--x\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--x--\r\n'
    for content_type, data in (
        ("text/plain", as_json),
        ("text/plain;charset=UTF-8", as_json),
        ("application/x-www-form-urlencoded", "user=U1&channel=C1&text=%2Fhello+deploy+v2"),
        ("multipart/form-data; boundary=x", multipart),
        ("application/octet-stream", as_json),
    ):
        for path in ("/api/command", "/api/message", "/api/click", "/api/home", "/api/view_click", "/api/submit",
                     "/api/close_view"):
            status, answer = await send(http, path, data, **{"Content-Type": content_type})
            assert (status, answer["ok"]) == (415, False), (path, content_type, answer)
            assert "application/json" in answer["error"]
    async with http.post("/api/message", data=as_json.encode(), skip_auto_headers=["Content-Type"]) as response:
        assert response.status == 415  # no Content-Type at all
    assert stack.slack.state() == before
    assert stack.slack.sender.sent == []


async def test_a_forged_host_is_refused_on_every_route(console) -> None:  # type: ignore[no-untyped-def]
    """DNS rebinding: the browser talks to 127.0.0.1 but names the attacker's host in ``Host``."""
    stack, server, http = console
    before = stack.slack.state()
    port = server.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1 if port < 65535 else port - 1}",
                 f"127.0.0.1.evil.example:{port}", f"localhost.:{port}"):
        for path in ("/", "/console.js", "/api/config", "/api/state", "/api/events", "/files/F1/chart.png",
                     "/healthz", "/nowhere"):
            async with http.get(path, headers={"Host": host}) as response:
                assert response.status == 421, (host, path, response.status)
                answer = await response.json()
                assert answer["ok"] is False and answer["error"]
        status, answer = await send(http, "/api/message", {"user": "U1", "text": "forged"}, Host=host)
        assert status == 421 and answer["ok"] is False
    assert stack.slack.state() == before


async def test_the_consoles_own_requests_still_work(console) -> None:  # type: ignore[no-untyped-def]
    """What the console page itself sends (same origin, JSON), under each name of the loopback address."""
    stack, server, http = console
    port = server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LocalHost:{port}"):
        origin = f"http://{host}"
        async with http.get("/api/state", headers={"Host": host}) as response:
            assert response.status == 200
        status, answer = await send(
            http, "/api/message", {"user": "U1", "channel": "C1", "text": f"hello from {host}"},
            Host=host, Origin=origin, Referer=f"{origin}/", **{"Sec-Fetch-Site": "same-origin",
                                                                 "Content-Type": "application/json;charset=UTF-8"})
        assert (status, answer["ok"]) == (200, True), (host, answer)
    texts = [m["text"] for m in stack.slack.state()["messages"]["C1"]]
    assert texts == [f"hello from {h}" for h in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}",
                                                 f"LocalHost:{port}")]
    # A command from the page reaches the bot and is answered.
    status, answer = await send(http, "/api/command", {"user": "U3", "channel": "C1", "text": "/hello help"},
                                Origin=server.url, Referer=f"{server.url}/", **{"Sec-Fetch-Site": "same-origin"})
    assert (status, answer["ok"]) == (200, True)
    await stack.slack.wait_for(lambda m: getattr(m, "user", None) == "U3" and "/hello status" in m.text, 10)


async def test_the_page_may_not_be_framed_by_another_site(console) -> None:  # type: ignore[no-untyped-def]
    """A page elsewhere could frame the console and lure a click on Approve (clickjacking)."""
    _, _, http = console
    async with http.get("/") as response:
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_page_sends_json() -> None:
    """Every POST the page makes declares ``Content-Type: application/json`` (else the server answers 415)."""
    script = (Path(__file__).resolve().parents[2] / "sandbox" / "console" / "console.js").read_text()
    posts = [m.start() for m in re.finditer(r'method:\s*"POST"', script)]
    assert posts
    for at in posts:
        call = script[at:script.index("})", at)]
        assert '"Content-Type": "application/json"' in call, call


async def test_the_console_listens_on_loopback_only(console) -> None:  # type: ignore[no-untyped-def]
    stack, _, _ = console
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.com", ""):
        with pytest.raises(ValueError, match="loopback"):
            server = ConsoleServer(stack.slack, host=host)
            try:
                await server.start()
            finally:
                await server.stop()
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(host="0.0.0.0")
    if not socket.has_ipv6:
        return
    try:
        server = await ConsoleServer(stack.slack, host="::1").start()
    except OSError:  # no IPv6 loopback on this machine: the IPv4 one is checked above
        return
    try:
        assert server.url == f"http://[::1]:{server.port}"
        async with aiohttp.ClientSession(base_url=server.url) as http, http.get("/api/state") as response:
            assert response.status == 200
    finally:
        await server.stop()
