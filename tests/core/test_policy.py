"""Permission policy: deployers, approvers, ops channels, user groups (cached)."""

from __future__ import annotations

import pytest

from bot.core.config import load
from bot.core.errors import PermissionDenied
from bot.core.policy import GroupResolver, Policy

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def policy(**env: str) -> tuple[Policy, list[str]]:
    calls: list[str] = []

    async def fetch(group: str) -> list[str]:
        calls.append(group)
        return {"S1": ["U2", "U5"]}.get(group, [])

    now = [0.0]
    resolver = GroupResolver(fetch, ttl=60, clock=lambda: now[0])
    return Policy(load({**BASE, **env}), resolver), calls


async def test_no_deployers_means_nobody_and_says_how_to_configure() -> None:
    p, _ = policy()
    with pytest.raises(PermissionDenied, match="HELLO_DEPLOYERS"):
        await p.check_change("U1", "C1")


async def test_deployer_user_and_group_member_allowed_others_refused() -> None:
    p, calls = policy(HELLO_DEPLOYERS="U1,S1")
    await p.check_change("U1", "C1")
    await p.check_change("U5", "C1")
    with pytest.raises(PermissionDenied, match="not a deployer"):
        await p.check_change("U3", "C1")
    assert calls == ["S1"]  # cached after the first look-up


async def test_ops_channels_restrict_where_changes_are_asked() -> None:
    p, _ = policy(HELLO_DEPLOYERS="U1", HELLO_OPS_CHANNELS="C9")
    with pytest.raises(PermissionDenied, match="C9"):
        await p.check_change("U1", "C1")
    await p.check_change("U1", "C9")


async def test_approvers_and_self_approval() -> None:
    p, _ = policy(HELLO_DEPLOYERS="U1,U2", HELLO_APPROVERS="S1")
    assert (await p.can_approve("U2", "U1"))[0]
    ok, why = await p.can_approve("U2", "U2")
    assert not ok and "own request" in why
    ok, why = await p.can_approve("U3", "U1")
    assert not ok and "Only approvers" in why
    p2, _ = policy(HELLO_DEPLOYERS="U2", HELLO_APPROVERS="U2", HELLO_SELF_APPROVAL="true")
    assert (await p2.can_approve("U2", "U2"))[0]


async def test_readers_restrict_read_only_commands_when_set() -> None:
    p, _ = policy()
    await p.check_read("U3")
    p2, _ = policy(HELLO_READERS="U1")
    with pytest.raises(PermissionDenied, match="HELLO_READERS"):
        await p2.check_read("U3")


async def test_group_lookup_failure_fails_closed() -> None:
    async def broken(group: str) -> list[str]:
        raise OSError("slack down")

    p = Policy(load({**BASE, "HELLO_DEPLOYERS": "S1"}), GroupResolver(broken))
    with pytest.raises(PermissionDenied):
        await p.check_change("U2", "C1")
