"""Several services in several clusters: commands name a service and environment, each change touches only its
own objects, locks are per service and environment, and /hello status sums them all up.

Two emulated clusters (staging, production) reached through two kubeconfig contexts, each holding helloworld
(namespace hello) and greeter (namespace greeter); the bot's own state lives in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.slack.state import Message
from tests.harness.several import APPROVE, World, two_clusters
from tests.harness.wait import until


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with two_clusters(tmp_path) as w:
        yield w



async def overview_lines(world: World, user: str) -> tuple[Message, list[str]]:
    """``/hello status`` in #C1 by ``user``: the overview and its lines, checked to be every pair in the
    catalogue's order."""
    await world.ask(user, "/hello status", "C1")
    overview = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                          and m.text.startswith("Services"), 30)
    lines = overview.text.splitlines()[1:]
    assert [line.split("*")[1] + " " + line.split("*")[2].split(":")[0].strip() for line in lines] == [
        "helloworld staging", "helloworld production", "greeter staging", "greeter production"]
    return overview, lines

async def test_a_deploy_of_one_service_in_one_environment_changes_nothing_else(world: World) -> None:
    before = world.objects()
    await world.ask("U1", "/hello deploy greeter staging v2", "CGREET")
    request = await world.request("CGREET", "greeter (staging)")
    await world.stack.click("U2", request.ts, "approve", channel="CGREET")
    final = await world.finished(request)
    await world.stack.settle(30)
    assert ":white_check_mark:" in str(final.blocks), final.text
    assert world.image("staging", "greeter", "greeter") == "ghcr.io/example/greeter:v2"
    after = world.objects()
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("staging", "greeter", "deployments", "greeter")}
    # the audit record is in the namespace of the service it is about, in its cluster
    events = world.clusters["staging"].list("", "v1", "events", "greeter")
    assert {"HelloDeployRequested", "HelloDeploySucceeded"} <= {e["reason"] for e in events}
    assert not [e for e in world.clusters["production"].list("", "v1", "events", "greeter")
                if e["reason"].startswith("HelloDeploy")]
    # history of that service shows it; another service's history does not
    await world.ask("U1", "/hello history greeter staging", "C1")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                               and "greeter (staging)" in m.text and "Release history" in m.text, 30)
    # delivery figures count every service's changes, read from each service's namespace
    await world.ask("U1", "/hello stats", "C1")
    stats = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                       and m.text.startswith("Delivery, last 30 days"), 30)
    assert stats.text.startswith("Delivery, last 30 days: 1 in 30 days"), stats.text
    for asked, channel, said in (("/hello stats greeter", "C1", "Delivery of greeter, last 30 days: 1 in 30 days"),
                                 ("/hello stats helloworld 7d", "C1", "Delivery of helloworld, last 7 days: 0 in 7"),
                                 ("/hello stats", "CGREET", "Delivery of greeter, last 30 days: 1 in 30 days")):
        await world.ask("U1", asked, channel)
        await world.slack.wait_for(lambda m, c=channel, t=said: isinstance(m, Message) and m.channel == c
                                   and m.text.startswith(t), 30)
    await world.ask("U1", "/hello stats payroll", "C1")
    await world.private("U1", "C1", "there is no service payroll; services: helloworld, greeter")


async def test_the_service_may_be_left_out_in_its_channel_and_locks_are_per_service_and_environment(
        world: World) -> None:
    # in greeter's channel, "production" alone names greeter's production
    await world.ask("U1", "/hello deploy production v3", "CGREET")
    first = await world.request("CGREET", "greeter (production)")
    # another environment and another service are not held by it
    await world.ask("U1", "/hello deploy staging v3", "CGREET")
    await world.request("CGREET", "greeter (staging)")
    await world.ask("U1", "/hello deploy helloworld production v3", "CHELLO")
    await world.request("CHELLO", "helloworld (production)")
    # the same service and environment is: one change at a time, naming the one that holds it (lock: refuse)
    await world.ask("U1", "/hello deploy helloworld production v4", "CHELLO")
    busy = await world.private("U1", "CHELLO", "One change at a time")
    assert "helloworld (production)" in busy.text and first.ts
    # a service's changes are asked for in its channels
    await world.ask("U1", "/hello deploy greeter staging v4", "CHELLO")
    refused = await world.private("U1", "CHELLO", "Changes can only be requested in")
    assert "<#CGREET>" in refused.text


async def test_names_are_checked_and_status_covers_every_service(world: World) -> None:
    await world.ask("U1", "/hello deploy v2", "C1")  # a channel of no service: which one?
    which = await world.private("U1", "C1", "name a service")
    assert "helloworld, greeter" in which.text
    await world.ask("U1", "/hello deploy greeter qa v2", "CGREET")  # qa is not an environment: a version?
    await world.private("U1", "CGREET", "")  # answered privately, nothing requested
    assert not [m for m in world.slack.messages("CGREET") if APPROVE in str(m.blocks)]

    overview, lines = await overview_lines(world, "U1")
    assert all("stable `v1`" in line for line in lines), lines

    await world.ask("U1", "/hello status greeter staging", "C1")
    detail = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                        and m.ts != overview.ts and "greeter" in str(m.blocks), 30)
    assert detail.text.startswith("greeter status: stable v1")
    assert "greeter in greeter" in str(detail.blocks[0])  # the Deployment and its namespace


async def test_a_lock_refuses_a_freeze_needs_break_glass_and_production_needs_two_approvers(world: World) -> None:
    await world.ask("U1", '/hello lock greeter production "database migration"', "CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "CGREET" and "lock" in m.text, 30)
    await world.ask("U1", "/hello deploy production v5", "CGREET")
    locked = await world.private("U1", "CGREET", "is locked by <@U1>")
    assert "database migration" in locked.text and "Nothing was changed" in locked.text
    await world.ask("U1", "/hello unlock greeter production", "CGREET")

    await world.ask("U1", '/hello freeze greeter staging 2h "release weekend"', "CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "CGREET" and "froze" in m.text.lower(),
                               15)
    await world.ask("U1", "/hello deploy staging v5", "CGREET")
    await world.private("U1", "CGREET", "needs break-glass")
    assert not [m for m in world.slack.messages("CGREET") if APPROVE in str(m.blocks)]
    await world.ask("U1", '/hello deploy staging v5 "security fix"', "CGREET")
    glass = await world.request("CGREET", "greeter (staging)")
    assert "Break-glass" in str(glass.blocks) and "release weekend" in str(glass.blocks)
    await world.stack.click("U2", glass.ts, "approve", channel="CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == glass.ts
                               and "1 of 2 approvals: <@U2>" in str(m.blocks), 30)
    # Home lists it for the approver still to come, not for the one who approved
    home = world.stack.services.home
    waiting = (await home.gather("U3")).pending
    assert [p.summary for p in waiting] == ["greeter (staging): v1 → v5"]
    assert (await home.gather("U2")).pending == []
    await world.stack.click("U2", glass.ts, "approve", channel="CGREET")  # the same approver twice counts once
    await world.private("U2", "CGREET", "approved already")
    assert world.image("staging", "greeter", "greeter").endswith(":v1")
    await world.stack.click("U3", glass.ts, "approve", channel="CGREET")
    final = await world.finished(glass)
    assert ":white_check_mark:" in str(final.blocks)
    assert world.image("staging", "greeter", "greeter").endswith(":v5")
    approved = [e for e in world.clusters["staging"].list("", "v1", "events", "greeter")
                if e["reason"] == "HelloDeployApproved"]
    assert any("break-glass" in e["message"] and "U2, U3" in e["message"] for e in approved), approved

    # production asks two approvers without any freeze (approvals: 2 in the catalogue)
    await world.ask("U1", "/hello deploy production v5", "CGREET")
    prod = await world.request("CGREET", "greeter (production)")
    await world.stack.click("U3", prod.ts, "approve", channel="CGREET")
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == prod.ts
                               and "1 of 2 approvals: <@U3>" in str(m.blocks), 30)
    assert world.image("production", "greeter", "greeter").endswith(":v1")


async def test_a_request_while_one_runs_is_queued_and_its_approval_opens_when_that_one_ends(world: World) -> None:
    await world.ask("U1", '/hello deploy greeter staging v2 "first"', "CGREET")
    first = await world.request("CGREET", "first")
    await world.ask("U1", '/hello deploy greeter staging v3 "second"', "CGREET")
    second = await world.slack.wait_for(lambda m: isinstance(m, Message) and "second" in m.text
                                        and "Queued, 1st in line, behind" in m.text, 30)
    await world.ask("U1", '/hello deploy greeter staging v4 "third"', "CGREET")
    third = await world.slack.wait_for(lambda m: isinstance(m, Message) and "third" in m.text
                                       and "Queued, 2nd in line" in m.text, 30)
    assert APPROVE not in str(second.blocks)  # no approval while it waits; the requester may withdraw
    with pytest.raises(LookupError):  # Slack itself refuses a click on a button the message does not have
        await world.stack.click("U2", second.ts, "approve", channel="CGREET")
    await world.stack.click("U1", third.ts, "reject", channel="CGREET")  # withdrawn while queued
    await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == third.ts and "Withdrawn" in m.text, 30)

    await world.stack.click("U2", first.ts, "approve", channel="CGREET")
    await world.finished(first)
    # the first ended: the second's approval opens on its own message
    opened = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.ts == second.ts
                                        and APPROVE in str(m.blocks), 30)
    assert "Waiting for approval" in opened.text
    await world.stack.click("U2", second.ts, "approve", channel="CGREET")
    await world.finished(second)
    await world.stack.settle(30)
    assert world.image("staging", "greeter", "greeter").endswith(":v3")


async def test_a_digest_lists_every_service_and_counts_every_services_changes(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.observe import digest
    from bot.observe.schedule import Claim, Entry

    await world.ask("U1", '/hello deploy greeter staging v2 "digest"', "CGREET")
    request = await world.request("CGREET", "digest")
    await world.stack.click("U2", request.ts, "approve", channel="CGREET")
    await world.finished(request)
    await world.stack.settle(30)
    now = datetime.now(UTC)
    claim = Claim(entry=Entry(id="d1", cron="0 9 * * MON", channel="C1", range="7d", source="chat"),
                  slot=now, previous=now - timedelta(hours=1), skipped=0, catch_up=False)
    services = world.stack.services
    post = await digest.build(services.shared, services.audit, services.alerts, claim, now=now, chart=False)
    shown = str(post.blocks)
    assert "*Services*" in shown
    for pair in ("*helloworld* staging", "*helloworld* production", "*greeter* staging", "*greeter* production"):
        assert pair in shown, pair
    assert "greeter (staging)" in shown  # the change, read from greeter's namespace in staging


async def test_an_abort_is_never_queued_behind_the_change_it_should_stop(tmp_path: Path) -> None:
    async with two_clusters(tmp_path, env={"HELLO_ABORT_NEEDS_APPROVAL": "true"}) as world:
        await world.ask("U1", '/hello canary greeter staging v2 10% "try it"', "CGREET")
        canary = await world.request("CGREET", "try it")
        await world.stack.click("U2", canary.ts, "approve", channel="CGREET")
        await world.finished(canary)
        await world.stack.settle(30)
        await world.ask("U1", '/hello deploy greeter staging v3 "next"', "CGREET")
        await world.request("CGREET", "next")  # pending: it holds greeter staging
        await world.ask("U1", '/hello canary abort "p99 doubled"', "CGREET")
        refused = await world.private("U1", "CGREET", "One change at a time")
        assert "greeter (staging): v1 → v3" in refused.text
        assert not [m for m in world.slack.messages("CGREET") if "p99 doubled" in m.text]


async def test_a_request_recorded_before_the_catalogue_keeps_acting_on_the_variables_service(world: World) -> None:
    """Requests and releases stored before HELLO_SERVICES was set name no service: they are the service the
    variables describe (HELLO_NAMESPACE, HELLO_STABLE_DEPLOYMENT …), so an upgrade loses nothing in flight."""
    from bot.release.actions import Change
    from bot.release.record import Record

    services = world.stack.services
    assert services.target("", "").config is services.config
    old = Record(id="0123456789", change=Change(command="deploy", action="deploy", verb="Deploy",
                                                summary="helloworld: v1 → v2"),
                 requester="U1", channel="C1", created="2026-12-01T00:00:00+00:00",
                 expires="2026-12-01T01:00:00+00:00")
    assert services.approvals.target_of(old.change).config is services.config
    steps = services.approvals.store.plan(old.change)  # the plan of a request stored before plans were
    assert steps[0].target == "helloworld" and old.where == ""


async def test_the_overview_offers_each_service_and_environment_in_detail(world: World) -> None:
    await world.ask("U3", "/hello status", "C1")
    overview = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                          and m.text.startswith("Services"), 30)
    select = next(e for b in overview.blocks if b.get("type") == "actions" for e in b["elements"])
    assert select["type"] == "static_select"
    assert [o["value"] for o in select["options"]] == ["helloworld staging", "helloworld production",
                                                       "greeter staging", "greeter production"]
    with pytest.raises(LookupError):  # Slack only sends one of the options
        await world.stack.click("U3", overview.ts, "status_details", value="greeter qa", channel="C1")
    await world.stack.click("U3", overview.ts, "status_details", value="greeter production", channel="C1")
    detail = await world.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1"
                                        and m.text.startswith("greeter status"), 30)
    assert "greeter in greeter" in str(detail.blocks[0])


async def test_the_queue_waits_when_the_cluster_is_away(world: World, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from bot.core.errors import ClusterError

    approvals = world.stack.services.approvals

    async def away(key: object) -> None:
        raise ClusterError("the API server is unreachable")

    monkeypatch.setattr(approvals.store, "lock", away)
    await approvals.advance(("greeter", "staging"))  # nothing raised: the sweeper tries again
    assert "cannot advance the queue of greeter/staging: the API server is unreachable" in caplog.text


async def test_the_overview_reads_the_services_whose_caches_listed_from_them_and_the_others_from_the_api_server(
        world: World) -> None:
    cluster = await world.stack.services.targets.resolve("greeter", "staging").cluster()
    cluster.follow()  # greeter in staging is watched; the other three are not
    await until(lambda: cluster.from_cache(events=False), "greeter in staging's caches to list")
    deployment = world.clusters["staging"].get("apps", "v1", "deployments", "greeter", "greeter")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/example/greeter:v7"
    world.clusters["staging"].apply(deployment)  # behind the bot's back
    await until(lambda: cluster.from_cache(events=False).stable.version == "v7", "the change in the cache")
    reads = {name: emulator.requests[("get", "deployments")] for name, emulator in world.clusters.items()}
    _, lines = await overview_lines(world, "U3")
    assert "stable `v7`" in lines[2] and all("stable `v1`" in line for line in lines[:2] + lines[3:]), lines
    # stable and canary of each service not watched, from the API server; none of greeter in staging
    assert {name: emulator.requests[("get", "deployments")] - reads[name]
            for name, emulator in world.clusters.items()} == {"staging": 2, "production": 4}
