"""Watch caches against the API emulator: list then watch, resume after a dropped stream, relist on 410 Gone,
bookmarks, a change made behind the bot's back, a watch that is refused (403) shown as stale, and the audit
Events shown from their cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cluster.cache import AUDIT, AUDIT_SELECTOR, DEPLOYMENTS, configmaps
from bot.cluster.httproutes import HTTPROUTE
from bot.cluster.informer import Informer, State
from bot.cluster.kube import Cluster
from bot.core.config import Config, Traffic
from bot.observe.status import assess
from bot.wiring import follow
from sandbox.kube import KubeEmulator
from sandbox.slack import Message
from sandbox.stack import MANIFESTS, Stack
from tests.harness.wait import until

NS = "hello"


def set_image(emulator: KubeEmulator, image: str, name: str = "helloworld") -> None:
    deploy = emulator.get("apps", "v1", "deployments", NS, name)
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = image
    emulator.apply(deploy)


def touch_configmaps(emulator: KubeEmulator, count: int) -> None:
    """Changes the deployments' watch does not see (they still move the cluster's resourceVersion on)."""
    for index in range(count):
        emulator.apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": f"noise-{index}", "namespace": NS}, "data": {"n": str(index)}})


def deployments_reads(emulator: KubeEmulator) -> int:
    return emulator.requests[("list", "deployments")] + emulator.requests[("get", "deployments")]


@pytest.fixture
async def connect(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await connect(**emulator_options)``: a seeded emulator and a Cluster of namespace hello on it."""
    opened: list[tuple[KubeEmulator, Cluster]] = []

    async def make(traffic: Traffic | None = None, **options: Any) -> tuple[KubeEmulator, Cluster]:
        emulator = KubeEmulator(tick=0.05, pod_ready_seconds=0.05, **options)
        await emulator.start()
        emulator.seed(MANIFESTS)
        kubeconfig = emulator.write_kubeconfig(tmp_path / f"kubeconfig-{len(opened)}", namespace=NS)
        config = Config(slack_bot_token="xoxb-test", slack_signing_secret="s", kubeconfig=str(kubeconfig),
                        namespace=NS, traffic=traffic or Traffic())
        cluster = await Cluster.connect(config)
        opened.append((emulator, cluster))
        return emulator, cluster

    yield make
    for emulator, cluster in opened:
        await cluster.close()
        await emulator.stop()


async def informer_of(cluster: Cluster, **options: Any) -> Informer:
    informer = Informer(cluster.caches._watch_client(), NS, DEPLOYMENTS, **options)
    informer.start()
    await asyncio.wait_for(informer.synced.wait(), 15)
    return informer


def image_of(informer: Informer, name: str = "helloworld") -> str:
    obj = informer.get(name) or {}
    return obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("image", "")


async def test_a_dropped_watch_resumes_from_its_last_version_without_listing_again(connect) -> None:
    emulator, cluster = await connect()
    informer = await informer_of(cluster)
    try:
        assert {"helloworld", "helloworld-canary"} <= set(informer.objects)
        await until(lambda: informer.watches == 1, "the first watch")
        assert emulator.drop_watches("deployments") == 1
        set_image(emulator, "helloworld:v7")  # made while the stream is down: replayed on resume
        await until(lambda: image_of(informer) == "helloworld:v7", "the change made while the watch was down")
        assert informer.lists == 1 and informer.watches == 2
        assert emulator.requests[("list", "deployments")] == 1
        assert informer.state.state is State.WATCHING
    finally:
        await informer.stop()


async def test_a_version_no_longer_kept_is_listed_again(connect) -> None:
    emulator, cluster = await connect(history=3)
    informer = await informer_of(cluster)
    try:
        await until(lambda: informer.watches == 1, "the first watch")
        emulator.drop_watches("deployments")
        touch_configmaps(emulator, 5)  # the informer's version leaves the kept history: its resume is 410 Gone
        emulator.delete("apps", "v1", "deployments", NS, "helloworld-canary")
        await until(lambda: informer.lists == 2, "a second list after 410 Gone")
        await until(lambda: "helloworld-canary" not in informer.objects, "the relist to replace the cache")
        assert "helloworld" in informer.objects
        set_image(emulator, "helloworld:v8")
        await until(lambda: image_of(informer) == "helloworld:v8", "the watch after the relist")
    finally:
        await informer.stop()


async def test_bookmarks_keep_a_quiet_watch_resumable(connect) -> None:
    emulator, cluster = await connect(history=20, bookmark_seconds=0.05)
    informer = await informer_of(cluster)
    try:
        await until(lambda: informer.watches == 1, "the first watch")
        touch_configmaps(emulator, 30)  # nothing the watch picks, but the history moves past its last event
        newest = emulator.store.resource_version
        await until(lambda: int(informer.resource_version) >= newest, "a bookmark with the newest version")
        emulator.drop_watches("deployments")
        set_image(emulator, "helloworld:v9")
        await until(lambda: image_of(informer) == "helloworld:v9", "the resumed watch")
        assert informer.lists == 1  # resumed from the bookmark: no 410, no relist
    finally:
        await informer.stop()


async def test_status_reads_the_cache_and_sees_a_change_made_behind_the_bots_back(connect) -> None:
    emulator, cluster = await connect()
    cluster.follow()
    first = await until(lambda: cluster.from_cache(events=True), "the service's caches to list")
    assert first.cached and first.stable is not None and first.stable.version == "v1"
    assert first.stable_route is not None and first.certificate is not None
    reads = deployments_reads(emulator)
    set_image(emulator, "helloworld:v5")
    state = await until(lambda: (s := cluster.from_cache(events=True)) and s.stable.version == "v5" and s,
                        "the change in the next status")
    assert (await cluster.deployed()).stable.version == "v5"
    assert deployments_reads(emulator) == reads  # read from the cache, not the API server
    assert state.stale == "" and not any("stale" in w for w in assess(state, state.certificate.not_after))
    states = {s.kind: s.state for s in cluster.watch_states()}
    assert states == {"deployments": State.WATCHING, "mappings": State.WATCHING, "certificates": State.WATCHING,
                      "events": State.WATCHING, "audit events": State.WATCHING}


async def test_a_gateway_api_services_route_is_read_from_the_cache_of_its_httproute(connect) -> None:
    traffic = Traffic(router="gateway-api", route="helloworld", rule="split", stable_service="helloworld",
                      canary_service="helloworld-canary")
    emulator, cluster = await connect(traffic)
    for doc in yaml.safe_load_all((MANIFESTS / "gateway-api" / "httproute.yaml").read_text()):
        emulator.apply(doc)
    cluster.follow()
    first = await until(lambda: cluster.from_cache(events=True), "the service's caches to list")
    assert first.canary_route is not None and first.canary_route.kind == "HTTPRoute"
    route = emulator.get(*HTTPROUTE, NS, "helloworld")  # the owner sets the weights by hand
    refs = next(r for r in route["spec"]["rules"] if r.get("name") == "split")["backendRefs"]
    for ref in refs:
        ref["weight"] = 30 if ref["name"] == "helloworld-canary" else 70
    emulator.apply(route)
    state = await until(lambda: (s := cluster.from_cache(events=True)) and s.canary_route
                        and s.canary_route.weight == 30 and s, "the new weights in the next status")
    assert state.stable_route is not None and state.stable_route.weight == 70
    assert {s.kind for s in cluster.watch_states()} == {"deployments", "httproutes", "certificates", "events",
                                                        "audit events"}


async def test_a_refused_watch_keeps_the_last_figures_and_says_they_may_be_stale(connect) -> None:
    emulator, cluster = await connect()
    cluster.follow()
    await until(lambda: cluster.from_cache(events=False), "the service's caches to list")
    emulator.add_fault("watch", "deployments", status=403, count=None)
    emulator.add_fault("list", "deployments", status=403, count=None)
    emulator.drop_watches("deployments")
    await until(lambda: any(s.state is State.FAILING for s in cluster.watch_states()), "the watch to fail")
    state = await cluster.deployed()
    assert state.cached and state.stable is not None and state.stable.version == "v1"  # the last figures
    assert state.stale.startswith("figures may be stale: the watch of deployments has failed since ")
    assert "the bot is not allowed to watch deployments (403 Forbidden)" in state.stale
    assert "old" in state.stale
    assert state.stale in assess(state, state.certificate.not_after)
    failing = next(s for s in cluster.watch_states() if s.kind == "deployments")
    assert "failing since" in failing.line() and "403 Forbidden" in failing.line()
    emulator.clear_faults()
    await until(lambda: cluster.from_cache(events=False).stale == "", "the watch to recover", timeout=30)


async def test_hello_status_reads_the_caches_serving_started_and_shows_a_change_made_behind_its_back() -> None:
    async with Stack() as stack:
        await follow(stack.services)  # as serving's warm-up does
        cluster = await stack.services.cluster()
        await until(lambda: cluster.from_cache(), "the caches to list")
        await until(lambda: all(s.watches for s in cluster.watch_states()), "the watches to open")
        mapping = stack.kube.get("getambassador.io", "v3alpha1", "mappings", NS, "helloworld-canary")
        mapping["spec"]["weight"] = 30  # by hand, not through the bot
        stack.kube.apply(mapping)
        await until(lambda: cluster.from_cache().canary_route.weight == 30, "the change in the cache")
        watched = ("deployments", "mappings", "certificates", "events")
        before = {key: n for key, n in stack.kube.requests.items() if key[1] in watched}
        await stack.command("U3", "/hello status")
        message = await stack.wait_message(lambda m: isinstance(m, Message) and m.text.startswith("helloworld status"))
        assert "canary v1 at 30%" in message.text
        await stack.settle()
        after = {key: n for key, n in stack.kube.requests.items() if key[1] in watched}
        assert after == before  # nothing of the service was asked of the API server


async def test_a_label_selected_cache_follows_only_the_objects_with_those_labels(connect) -> None:
    emulator, cluster = await connect()
    informer = cluster.cache_of(configmaps("app.kubernetes.io/component=request,hello-chatops.io/state=mine"))
    assert cluster.cache_of(configmaps("app.kubernetes.io/component=request,hello-chatops.io/state=mine")) is informer

    def record(name: str, owner: str) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "data": {"n": name},
                "metadata": {"name": name, "namespace": NS,
                             "labels": {"app.kubernetes.io/component": "request", "hello-chatops.io/state": owner}}}

    emulator.apply(record("before", "mine"))
    await asyncio.wait_for(informer.synced.wait(), 15)
    assert set(informer.objects) == {"before"}
    await until(lambda: informer.watches == 1, "the first watch")
    emulator.apply(record("theirs", "another-bot"))  # another bot's record in the same namespace
    emulator.apply(record("after", "mine"))
    await until(lambda: "after" in informer.objects, "the new record")
    moved = record("before", "another-bot")  # its labels no longer match: gone from the cache
    emulator.apply(moved)
    await until(lambda: "before" not in informer.objects, "the record whose labels changed to leave")
    assert set(informer.objects) == {"after"} and informer.lists == 1
    assert ("configmaps", "configmaps[app.kubernetes.io/component=request,hello-chatops.io/state=mine]") == (
        informer.source.kind, informer.source.key)


def event(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": NS, "labels": labels},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "helloworld", "namespace": NS},
            "reason": "HelloDeploySucceeded", "message": name, "type": "Normal"}


async def test_the_audit_events_are_shown_from_their_cache_once_listed_else_from_the_api_server(connect) -> None:
    emulator, cluster = await connect()
    audit = dict([AUDIT_SELECTOR.split("=")])
    emulator.apply(event("helloworld.before", audit))
    emulator.apply(event("helloworld.other", {"app": "someone-else"}))  # not the audit trail's

    def lists() -> int:
        return emulator.requests[("list", "events")]

    def shown_names(events: list[dict]) -> list[str]:
        return sorted(e["metadata"]["name"] for e in events)

    assert shown_names(await cluster.events.shown(AUDIT_SELECTOR)) == ["helloworld.before"]
    assert lists() == 1  # no cache yet: the API server
    cluster.follow()  # as serving does for every namespace of the catalogue
    informer = cluster.cache_of(AUDIT)
    await until(lambda: cluster.from_cache() and cluster.caches.current(NS, AUDIT.key), "the caches to list")
    await until(lambda: informer.watches, "the audit events' watch")
    read = lists()
    emulator.apply(event("helloworld.after", audit))  # written by another replica
    await until(lambda: "helloworld.after" in informer.objects, "the new audit event in the cache")
    assert shown_names(await cluster.events.shown(AUDIT_SELECTOR)) == ["helloworld.after", "helloworld.before"]
    assert lists() == read  # from the cache
    emulator.delete("", "v1", "events", NS, "helloworld.before")  # as the API server does when an Event expires
    await until(lambda: "helloworld.before" not in informer.objects, "the expired event to leave the cache")
    assert shown_names(await cluster.events.shown(AUDIT_SELECTOR)) == ["helloworld.after"]

    emulator.add_fault("watch", "events", status=403, count=None)
    emulator.drop_watches("events")
    await until(lambda: informer.state.state is State.FAILING, "the audit events' watch to fail")
    emulator.apply(event("helloworld.unwatched", audit))
    assert shown_names(await cluster.events.shown(AUDIT_SELECTOR)) == ["helloworld.after", "helloworld.unwatched"]
    assert lists() == read + 1  # a cache whose watch is not kept is not shown: the API server is read
    emulator.clear_faults()


async def test_a_snapshot_is_built_once_per_change_of_the_objects_it_reads(connect) -> None:
    emulator, cluster = await connect()
    cluster.follow()
    first = await until(lambda: (s := cluster.from_cache(events=False)) and s.stable.rolled_out
                        and s.canary.rolled_out and s.certificate.ready and s, "the service rolled out, in the caches")
    with_events = cluster.from_cache(events=True)
    assert cluster.from_cache(events=False) is first  # nothing changed: the same snapshot, not built again
    touch_configmaps(emulator, 3)  # objects it does not read
    await until(lambda: emulator.get("", "v1", "configmaps", NS, "noise-2"), "the noise")
    assert cluster.from_cache(events=False) is first
    warning = {**event("helloworld.slow", {}), "type": "Warning", "reason": "BackOff", "message": "restarting"}
    emulator.apply(warning)  # read only by a snapshot with Events
    changed = await until(lambda: (s := cluster.from_cache(events=True)) is not with_events and s,
                          "the warning in the snapshot with Events")
    assert [w.reason for w in changed.warnings] == ["BackOff"]
    assert cluster.from_cache(events=False) is first
    mapping = emulator.get("getambassador.io", "v3alpha1", "mappings", NS, "helloworld-canary")
    mapping["spec"]["weight"] = 25
    emulator.apply(mapping)
    moved = await until(lambda: (s := cluster.from_cache(events=False)).canary_route.weight == 25 and s,
                        "the new weight in the next snapshot")
    assert moved is not first and first.canary_route.weight != 25
    assert cluster.from_cache(events=False) is moved
    assert moved.stable is first.stable and moved.certificate is first.certificate  # their objects did not change
    set_image(emulator, "helloworld:v6", "helloworld-canary")
    again = await until(lambda: (s := cluster.from_cache(events=False)).canary.version == "v6" and s,
                        "the canary's new version in the next snapshot")
    assert again.stable is first.stable and again.canary is not first.canary and again.canary_route.weight == 25
