"""The running releases that status, Home and `/hello release` list come from a watch cache of the bot's own
records; every decision (admission, approval, the driver, compare-and-swap) reads the API server, so a
release's steps see their own writes even while that cache lags."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from bot.cluster.informer import State as WatchState
from bot.release.actions import Change
from bot.release.lifecycle import State
from bot.release.record import Record
from bot.wiring import follow
from sandbox.slack import Message
from sandbox.stack import Stack
from tests.harness.chat import Chat


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (found := check()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return found


def records_watched(services: Any) -> bool:
    cache = services.approvals.store.cache
    return bool(cache and cache.synced.is_set() and cache.watches and cache.state.state is WatchState.WATCHING)


async def test_a_deploy_completes_while_the_records_cache_lags_and_status_shows_it_once_caught_up(release: Any
                                                                                                ) -> None:
    async with release() as chat:
        chat: Chat
        services = chat.stack.services
        await follow(services)  # as serving's warm-up does
        await until(lambda: records_watched(services), "the records' watch cache to list and watch")
        chat.kube.hold_watches("configmaps")  # the API server answers at once; its watchers hear nothing yet
        try:
            done = await chat.approve("U1", "/hello deploy v2")  # every step reads and writes the API server
            assert ":white_check_mark:" in done.text, done.text
            assert chat.container()["image"] == chat.image("v2")
            records = services.approvals.store
            stored = {r.id: r.state.value for r in (await records.load()).values()}
            assert list(stored.values()) == ["succeeded"], stored
            assert records.cache is not None and not records.cache.items()  # it never heard of the request
        finally:
            chat.kube.release_watches("configmaps")
        (rid,) = stored
        await until(lambda: any(cm["metadata"]["name"] == records.name(rid) and "succeeded" in
                                cm["data"]["record.json"] for cm in records.cache.items()), "the cache to catch up")
        assert records.cache.lists == 1  # caught up from its watch, not a relist
        await chat.send("U3", "/hello status")
        status = await chat.message_saying("helloworld status")
        assert "v2" in status.text and "Running now" not in json.dumps(status.blocks)
        await chat.send("U3", "/hello release")
        await chat.private("U3", "No release is running.")


async def test_hello_status_asks_the_api_server_nothing_once_the_caches_listed() -> None:
    async with Stack(engine=False) as stack:
        await follow(stack.services)
        cluster = await stack.services.cluster()
        await until(lambda: cluster.from_cache() and records_watched(stack.services), "the caches to list")
        await stack.command("U3", "/hello status")  # warm: models, the chart library
        await stack.wait_message(lambda m: isinstance(m, Message) and m.text.startswith("helloworld status"))
        await stack.settle()
        records = stack.services.approvals.store
        labels = dict(pair.split("=") for pair in records.selector.split(","))
        name = records.name("elsewhere1")  # a running release of this bot, stored by another replica
        stack.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name, "namespace": "hello", "labels": labels},
                          "data": {"record.json": running_record(records.plan).to_json()}})
        await until(lambda: records.cache.get(name), "the new record in the cache")
        before = stack.kube.request_count() - stack.kube.request_count("watch")
        await stack.command("U3", "/hello status")
        message = await stack.wait_message(lambda m: isinstance(m, Message) and m.text.startswith("helloworld status")
                                           and "elsewhere1" in json.dumps(m.blocks))
        await stack.settle()
        assert "Running now" in json.dumps(message.blocks)
        assert stack.kube.request_count() - stack.kube.request_count("watch") == before  # not one read


def running_record(plan: Callable[[Change], Any]) -> Record:
    """A running release of another replica, as the bot stores it."""
    change = Change(command="deploy", action="deploy", verb="Deploy", summary="helloworld: v1 → v2")
    return Record(id="elsewhere1", change=change, requester="U1", channel="C1", created="2026-12-01T00:00:00+00:00",
                  expires="2026-12-01T01:00:00+00:00", state=State.RUNNING, steps=plan(change))
