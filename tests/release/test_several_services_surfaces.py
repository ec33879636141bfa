"""App Home and the forms with several services, through the emulators: two clusters (staging, production)
each holding helloworld and greeter (see test_several_services.py).

Here no service names a channel, so every channel is one where nothing says which service a form is for;
greeter's production may be changed by U4 only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.slack.state import Message
from tests.catalogues import two_services
from tests.harness.several import World, two_clusters

SHARED = two_services(greeter={"production": {"deployers": ["U4"]}})  # no channels


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[World]:
    async with two_clusters(tmp_path, catalogue=SHARED) as opened:
        yield opened


def _block(spec: dict, block_id: str) -> dict:
    return next(b for b in spec["blocks"] if b.get("block_id") == block_id)


async def _modal(world: World, user: str) -> Any:  # -> ViewRecord
    try:
        return await world.slack.wait_for_modal(user, timeout=10)
    except TimeoutError:
        raise AssertionError(f"no form opened for {user}") from None


async def _home(world: World, user: str, needle: str) -> Any:  # -> ViewRecord
    await world.slack.open_home(user)
    try:
        return await world.slack.wait_for_home(
            user, lambda home: needle in json.dumps(home.spec, ensure_ascii=False), 15)
    except TimeoutError:
        home = world.slack.home(user)
        raise AssertionError(f"{user}'s Home never said {needle!r}: {home and home.spec}") from None


async def test_a_form_where_no_service_is_named_offers_the_pairs_and_deploys_only_the_chosen_one(
        shared: World) -> None:
    world = shared
    before = world.objects()
    await world.ask("U1", "/hello deploy", "C1")
    modal = await _modal(world, "U1")
    select = _block(modal.spec, "target")
    # greeter's production is not offered: only U4 may change it
    assert [o["value"] for o in select["element"]["options"]] == [
        "helloworld staging", "helloworld production", "greeter staging"]
    assert "recent" not in [b.get("block_id") for b in modal.spec["blocks"]]  # no service yet: the version is typed

    reply = await world.slack.submit_view("U1", modal.id, {"target": "greeter staging", "version": "v2!"})
    assert reply.outcome == "errors" and list(world.slack.modal_errors("U1")) == ["version"]
    reply = await world.slack.submit_view("U1", modal.id, {"target": "greeter staging", "version": "v2",
                                                            "reason": "new greeting"})
    assert reply.outcome == "closed"
    request = await world.request("C1", "greeter (staging)")
    assert "new greeting" in str(request.blocks)
    await world.stack.click("U2", request.ts, "approve", channel="C1")
    final = await world.finished(request)
    await world.stack.settle(30)
    assert ":white_check_mark:" in str(final.blocks), final.text
    after = world.objects()
    assert {key for key in before if before[key] != after[key]} == {("staging", "greeter", "deployments", "greeter")}
    assert world.image("staging", "greeter", "greeter") == "ghcr.io/example/greeter:v2"

    # a form for a named service keeps it, and offers that service's own versions
    await world.ask("U1", "/hello canary greeter staging", "C1")
    modal = await _modal(world, "U1")
    assert _block(modal.spec, "where")["elements"][0]["text"] == "For *greeter* in *staging*"
    assert json.loads(modal.spec["private_metadata"])["service"] == "greeter"
    options = _block(modal.spec, "recent")["element"]["options"]
    assert [(o["value"], o["text"]["text"]) for o in options] == [("v2", "v2 (running)"), ("v1", "v1")]
    reply = await world.slack.submit_view("U1", modal.id, {"recent": "v1", "percent": "20"})
    assert reply.outcome == "closed"
    canary = await world.request("C1", "Canary")
    assert "greeter (staging)" in canary.text and "v1 at 20%" in canary.text

    await world.ask("U1", "/hello deploy helloworld staging", "C1")  # helloworld staging never changed: v1 only
    modal = await _modal(world, "U1")
    options = _block(modal.spec, "recent")["element"]["options"]
    assert [o["value"] for o in options] == ["v1"]


async def test_someone_who_may_change_no_service_from_here_gets_the_reason_not_a_form(shared: World) -> None:
    world = shared
    await world.ask("U3", "/hello deploy", "C1")
    await world.private("U3", "C1", "not a deployer")
    assert world.slack.modal("U3") is None


async def test_home_shows_every_service_in_every_environment_and_names_the_service_of_each_change(
        shared: World) -> None:
    world = shared
    await world.ask("U1", "/hello deploy greeter staging v2", "C1")
    first = await world.request("C1", "greeter (staging)")
    await world.stack.click("U2", first.ts, "approve", channel="C1")
    await world.finished(first)
    await world.ask("U1", "/hello deploy helloworld production v3", "C1")
    await world.request("C1", "helloworld (production)")

    home = await _home(world, "U2", "requested by <@U1>")
    texts = [b["text"]["text"] for b in home.spec["blocks"] if b["type"] in ("section", "header")]
    start = texts.index("Services") + 1
    sections = texts[start:start + 4]
    assert [s.splitlines()[0] for s in sections] == ["*helloworld* · staging", "*helloworld* · production",
                                                     "*greeter* · staging", "*greeter* · production"]
    assert "*stable* `v2` 2/2 ready" in sections[2]
    assert all("*stable* `v1`" in s for s in (sections[0], sections[1], sections[3])), sections
    assert all("days left" in s and ":white_check_mark: healthy" in s for s in sections), sections
    assert texts[start + 4] == "Last changes"
    spec = json.dumps(home.spec, ensure_ascii=False)
    assert "*Deploy* helloworld (production): v1 → v3" in spec  # waiting for U2, naming the service
    changes = texts[texts.index("Last changes") + 1]
    assert "Succeeded by <@U2>: greeter (staging): v1 → v2" in changes
    assert "Delivery, last 30 days:" in spec
    assert not [m for m in world.slack.messages("C1") if isinstance(m, Message) and "went wrong" in m.text]
