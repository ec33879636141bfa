"""Holds in the emulated cluster (the bot's RBAC Role enforced) and through chat: freeze, lock, list, lift."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core import catalogue_file
from bot.core import config as config_module
from bot.core.errors import CommandError, UsageError
from bot.release.holds import KEY, FreezeSource, Holds
from commands import default_registry
from sandbox.slack import Ephemeral, Message
from sandbox.stack import Stack
from tests.catalogues import WITH_FREEZES

CATALOGUE = catalogue_file.parse(WITH_FREEZES)
NS = "hello"
CONFIGMAP = "hello-chatops-holds"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 8, 10, 0, tzinfo=UTC)  # a Tuesday: no catalogue window is open

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with Stack(rbac=True, engine=False, kube_options={"tick": 2.0}, catalogue=CATALOGUE) as running:
        yield running


def holds_of(stack: Stack, clock: Clock) -> Holds:
    """Another Holds over the same ConfigMap, as a second replica's."""
    services = stack.services
    return Holds(services.config, services.catalogue, services.cluster, clock=clock)


def stored(stack: Stack) -> dict[str, Any]:
    cm = stack.kube.get("", "v1", "configmaps", NS, CONFIGMAP)
    return json.loads(cm["data"][KEY]) if cm else {}


# ------------------------------------------------------------------------------------------ the store


async def test_locks_and_freezes_are_stored_checked_and_lifted(stack: Stack) -> None:
    clock = Clock()
    holds = holds_of(stack, clock)
    until = clock.now + timedelta(hours=2)
    await holds.freeze("all", "production", until, "incident 42", "U1")
    await holds.lock("payments", None, "migration", "U2")

    state = await holds.check("payments", "production")
    assert state.lock is not None and (state.lock.user, state.lock.reason, state.lock.since) == (
        "U2", "migration", clock.now)
    assert state.freeze is not None and (state.freeze.source, state.freeze.user, state.freeze.until) == (
        FreezeSource.AD_HOC, "U1", until)
    assert (await holds.check("payments", "staging")).freeze is None  # the freeze is production's
    assert (await holds.check("helloworld", "staging")).free

    cm = stack.kube.get("", "v1", "configmaps", NS, CONFIGMAP)
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "hello-chatops"
    assert stored(stack)["locks"]["payments/*"]["user"] == "U2"
    assert stored(stack)["freezes"]["all/production"]["until"] == "2030-01-08T12:00:00Z"

    lifted = await holds.unlock("payments", None)
    assert lifted.reason == "migration"
    ended = await holds.unfreeze("all", "production")
    assert ended.reason == "incident 42"
    assert (await holds.check("payments", "production")).free
    assert stored(stack) == {"freezes": {}, "locks": {}}


async def test_an_ended_freeze_is_ignored_then_dropped_by_the_next_write(stack: Stack) -> None:
    clock = Clock()
    holds = holds_of(stack, clock)
    await holds.freeze("helloworld", None, clock.now + timedelta(hours=1), "deploy day", "U1")
    assert (await holds.check("helloworld", "staging")).frozen
    clock.now += timedelta(hours=1)
    assert (await holds.check("helloworld", "staging")).free
    assert (await holds.stored()) == ([], [])
    assert "helloworld/*" in stored(stack)["freezes"]  # still there until something is written
    with pytest.raises(CommandError, match="helloworld in every environment is not frozen from chat"):
        await holds.unfreeze("helloworld", None)
    await holds.lock("helloworld", "production", "release train", "U1")
    assert stored(stack)["freezes"] == {}


async def test_names_are_checked_against_the_catalogue_and_double_locks_refused(stack: Stack) -> None:
    clock = Clock()
    holds = holds_of(stack, clock)
    later = clock.now + timedelta(hours=1)
    with pytest.raises(UsageError, match="there is no service shop; services: helloworld, payments"):
        await holds.freeze("shop", None, later, "x", "U1")
    with pytest.raises(UsageError, match="payments has no environment prod; its environments: staging, production"):
        await holds.lock("payments", "prod", "x", "U1")
    with pytest.raises(UsageError, match="no service has an environment qa; environments: production, staging"):
        await holds.freeze("all", "qa", later, "x", "U1")
    with pytest.raises(UsageError, match="name one service"):
        await holds.lock("all", None, "x", "U1")
    with pytest.raises(CommandError, match="would already be over"):
        await holds.freeze("payments", None, clock.now, "x", "U1")
    await holds.lock("payments", "production", "migration", "U1")
    with pytest.raises(CommandError, match="already locked by <@U1> since 2030-01-08 10:00 UTC: “migration”"):
        await holds.lock("payments", "production", "again", "U2")
    with pytest.raises(CommandError, match=r"payments in every environment is not locked\. Locked: payments in prod"):
        await holds.unlock("payments", None)
    assert stored(stack)["freezes"] == {} and list(stored(stack)["locks"]) == ["payments/production"]


async def test_concurrent_writers_lose_nothing(stack: Stack) -> None:
    clock = Clock()
    writers = [holds_of(stack, clock) for _ in range(6)]
    scopes = [(s, e) for s in ("helloworld", "payments") for e in ("staging", "production", None)]
    await asyncio.gather(*(h.lock(s, e, "lock", "U1") for h, (s, e) in zip(writers, scopes, strict=True)))
    assert sorted(stored(stack)["locks"]) == sorted(f"{s}/{e or '*'}" for s, e in scopes)


# ------------------------------------------------------------------------------------------ parsing


def test_arguments_are_parsed_into_requests() -> None:
    config = config_module.load({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "zz-signing-secret-zz"})
    registry = default_registry()

    def parse(name: str, *args: str) -> Any:
        return registry.get(name).parse(list(args), config)  # type: ignore[union-attr]

    assert parse("freeze").mutating is False  # the listing
    request = parse("freeze", "ALL", "production", "1h30m", "incident 42")
    assert (request.service, request.environment, request.duration, request.reason, request.mutating) == (
        "all", "production", timedelta(minutes=90), "incident 42", True)
    assert parse("freeze", "payments", "2h", "why").environment is None
    assert (parse("lock", "payments", "migration").environment, parse("lock", "payments", "prod", "x").environment) \
        == (None, "prod")
    assert parse("unfreeze", "all").service == "all" and parse("unlock", "payments", "staging").mutating


@pytest.mark.parametrize(("text", "message"), [
    ("/hello freeze payments", "say how long the freeze lasts"),
    ("/hello freeze payments production", "say how long the freeze lasts"),
    ("/hello freeze payments 2h", "a freeze needs a reason"),
    ("/hello freeze payments 2x why", "say how long the freeze lasts"),
    ("/hello freeze payments 40d why", "out of range"),
    ("/hello freeze payments 2h incident 42", "put the reason in quotes"),
    ("/hello lock payments", "a lock needs a reason"),
    ("/hello lock all \"why\"", "lock one service at a time"),
    ("/hello unfreeze", "name a service (or `all`)"),
    ("/hello unlock payments production extra", "at most one environment"),
])
async def test_malformed_commands_get_the_usage_and_change_nothing(stack: Stack, text: str, message: str) -> None:
    reply = await stack.command("U1", text)
    assert message in reply.json["text"] and "Usage: /hello " in reply.json["text"]
    await stack.settle()
    assert stored(stack) == {}


# --------------------------------------------------------------------------------------------- chat


def quiet_hour() -> datetime:
    """Today at 10:00 UTC, when no window of payments is open (its lunch freeze opens at 12:00 UTC, its batch
    one at 09:00 in New York): a test that checks "free" must not depend on the hour it runs."""
    return datetime.now(UTC).replace(hour=10, minute=0)


def said(needle: str) -> Any:
    return lambda m: isinstance(m, Message) and needle in m.text


def told(user: str, needle: str) -> Any:
    return lambda m: isinstance(m, Ephemeral) and m.user == user and needle in m.text


def events(stack: Stack, reason: str) -> list[dict]:
    return [e for e in stack.kube.list("", "v1", "events", NS) if e["reason"] == reason]


async def test_freeze_list_and_unfreeze_in_chat(stack: Stack) -> None:
    await stack.command("U1", '/hello freeze payments production 2h "incident <42> & co"')
    posted = await stack.wait_message(said("froze payments in production until"))
    assert "<@U1>" in posted.text and "“incident &lt;42&gt; &amp; co”" in posted.text
    assert "needs break-glass" in posted.text
    assert (await stack.services.holds.check("payments", "production")).frozen
    assert (await stack.services.holds.check("payments", "staging", quiet_hour())).free
    [event] = events(stack, "HelloFreezeSet")
    assert event["involvedObject"]["name"] == CONFIGMAP and "incident <42> & co" in event["message"]

    await stack.command("U3", "/hello freeze")  # the listing is read-only: anyone may
    listing = await stack.wait_message(told("U3", "payments in production: frozen by <@U1> until"))
    assert "“incident &lt;42&gt; &amp; co”" in listing.text
    assert "helloworld in production: `0 18 * * FRI` (Europe/Paris) for 64h 00m, “weekend”" in listing.text
    assert "payments in every environment: `0 12 * * *` (UTC) for 30m 00s, “lunch”" in listing.text

    await stack.command("U1", "/hello unfreeze payments production")
    await stack.wait_message(said("ended the freeze on payments in production"))
    assert (await stack.services.holds.check("payments", "production", quiet_hour())).free
    assert len(events(stack, "HelloFreezeLifted")) == 1
    await stack.command("U3", "/hello freeze")
    await stack.wait_message(told("U3", "No locks and no freezes from chat."))


async def test_lock_and_unlock_in_chat_need_a_deployer(stack: Stack) -> None:
    await stack.command("U3", '/hello lock payments "migration"')
    await stack.wait_message(told("U3", "not a deployer"))
    await stack.settle()
    assert stored(stack) == {}

    await stack.command("U1", '/hello lock payments production "db migration"')
    await stack.wait_message(said("locked payments in production: “db migration”"))
    state = await stack.services.holds.check("payments", "production")
    assert state.lock is not None and state.lock.user == "U1"
    await stack.command("U1", "/hello freeze")
    await stack.wait_message(told("U1", "payments in production: locked by <@U1> since"))
    assert len(events(stack, "HelloLockSet")) == 1

    await stack.command("U1", "/hello unlock payments production")
    await stack.wait_message(said("unlocked payments in production (locked by <@U1>: “db migration”)"))
    assert (await stack.services.holds.check("payments", "production", quiet_hour())).free
    assert len(events(stack, "HelloLockLifted")) == 1


async def test_unknown_names_and_ambiguous_locks_are_answered_with_what_exists(stack: Stack) -> None:
    await stack.command("U1", '/hello freeze shop 2h "why"')
    await stack.wait_message(told("U1", "there is no service shop; services: helloworld, payments"))
    await stack.command("U1", '/hello lock payments production')  # an environment, not a reason
    await stack.wait_message(told("U1", "to lock payments in production only, give a reason too"))
    await stack.command("U1", "/hello unlock payments")
    await stack.wait_message(told("U1", "payments in every environment is not locked."))
    await stack.settle()
    assert stored(stack) == {}


# ---------------------------------------------------------------- who may hold a service (#25 item 1)

RIGHTS = catalogue_file.parse({"services": [
    {"name": "helloworld", "environments": [
        {"name": "staging", "namespace": "hello"},
        {"name": "production", "namespace": "hello", "deployers": ["U3"]}]},
    {"name": "payments", "channels": ["C2"], "deployers": ["U2"], "environments": [
        {"name": "staging", "namespace": "pay"}, {"name": "production", "namespace": "pay"}]},
]})


@pytest.fixture
async def rights() -> AsyncIterator[Stack]:
    async with Stack(engine=False, catalogue=RIGHTS) as running:
        yield running


async def test_a_hold_is_decided_by_the_deployers_and_channels_of_what_it_covers(rights: Stack) -> None:
    stack = rights
    # a global deployer with no rights on payments cannot lock it, from anywhere
    await stack.command("U1", '/hello lock payments "migration"')
    await stack.wait_message(told("U1", "Changes can only be requested in <#C2>"))
    await stack.command("U1", '/hello lock payments "migration"', channel="C2")
    await stack.wait_message(told("U1", "<@U1> is not a deployer"))
    await stack.settle()
    assert stored(stack) == {}
    # payments' own deployer locks it from its channel; lifting it follows the same rule
    await stack.command("U2", '/hello lock payments "migration"', channel="C2")
    await stack.wait_message(said("locked payments in every environment"))
    await stack.command("U1", "/hello unlock payments", channel="C2")
    await stack.wait_message(told("U1", "<@U1> is not a deployer"))
    assert stored(stack)["locks"]["payments/*"]["user"] == "U2"
    await stack.command("U2", "/hello unlock payments", channel="C2")
    await stack.wait_message(said("unlocked payments in every environment"))
    # production's own deployer may lock production, and only there
    await stack.command("U3", '/hello lock helloworld production "release train"')
    await stack.wait_message(said("locked helloworld in production"))
    await stack.command("U3", '/hello lock helloworld staging "not mine"')
    await stack.wait_message(told("U3", "<@U3> is not a deployer"))


async def test_freezing_all_needs_the_rights_for_every_service_and_environment(rights: Stack) -> None:
    stack = rights
    for user, channel in (("U1", "C1"), ("U2", "C2"), ("U3", "C1")):
        await stack.command(user, '/hello freeze all production 1h "incident"', channel=channel)
        await stack.wait_message(lambda m, u=user: isinstance(m, Ephemeral) and m.user == u
                                 and ("is not a deployer" in m.text or "Changes can only be requested" in m.text))
    await stack.settle()
    assert stored(stack) == {}


@pytest.fixture
async def admins() -> AsyncIterator[Stack]:
    env = {"HELLO_ADMINS": "U3,S1", "HELLO_OPS_CHANNELS": "C1"}
    async with Stack(engine=False, env=env, catalogue=RIGHTS) as running:
        yield running


async def test_the_admins_may_hold_all_and_lift_it_without_every_pairs_rights(admins: Stack) -> None:
    stack = admins
    # U3 is an admin by name, U2 through the user group S1; neither may change both services itself
    await stack.command("U3", '/hello freeze all production 1h "incident"', channel="C2")
    await stack.wait_message(told("U3", "Changes can only be requested in <#C1>"))
    await stack.command("U1", '/hello freeze all production 1h "incident"')
    await stack.wait_message(told("U1", "<@U1> is not a deployer"))
    await stack.settle()
    assert stored(stack) == {}
    await stack.command("U3", '/hello freeze all production 1h "incident"')
    await stack.wait_message(said("<@U3> froze every service in production until"))
    assert (await stack.services.holds.check("payments", "production")).frozen
    assert (await stack.services.holds.check("helloworld", "production")).frozen
    await stack.command("U1", "/hello unfreeze all production")  # lifting it follows the same rule
    await stack.wait_message(told("U1", "<@U1> is not a deployer"))
    await stack.command("U2", "/hello unfreeze all production")
    await stack.wait_message(said("<@U2> ended the freeze on every service in production"))
    # being an admin is about `all` only: one service still needs that service's own people
    await stack.command("U3", '/hello lock payments "release train"')
    await stack.wait_message(told("U3", "Changes can only be requested in <#C2>"))
    await stack.settle()
    assert stored(stack).get("locks", {}) == {} and stored(stack).get("freezes", {}) == {}
