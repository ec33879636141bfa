"""The bot's Role (manifests/bot/role.yaml) is enough for everything the bot does, and no broader.

Every releasing test runs with the emulator enforcing the Role. This test runs every command that
touches the cluster, and a scheduled post with leader election, and compares what the bot asked for
with what the Role grants: they must be equal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from bot.wiring import follow
from sandbox.stack import ROLE
from tests.harness.wait import until

# What only `/hello promote` uses: it needs two environments, so tests/release/test_promote.py runs it against
# two clusters enforcing this Role and checks it uses exactly that there.
PROMOTION = {("list", "", "pods")}
# What only a service routed by a Gateway API HTTPRoute uses: tests/cluster/test_routers.py runs both routers
# against a cluster enforcing this Role.
GATEWAY_API = {(verb, "gateway.networking.k8s.io", "httproutes") for verb in ("get", "list", "watch", "patch")}
# What only `/hello loadtest` uses: tests/release/test_loadtest.py runs it (with `hey` and a helloworld process)
LOADTEST = {("create", "batch", "jobs"), ("get", "batch", "jobs"), ("list", "batch", "jobs"),
            ("delete", "batch", "jobs"), ("get", "", "pods/log")}


def granted() -> set[tuple[str, str, str]]:
    out = set()
    for doc in yaml.safe_load_all(ROLE.read_text()):
        for rule in (doc or {}).get("rules") or []:
            for verb in rule["verbs"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        out.add((verb, group, resource))
    return out


# the certificate watch is only used when the renewal is not done by the time the bot reads it again:
# debug mode's bookkeeping slows the bot next to the emulator's controller enough to skip it
@pytest.mark.asyncio_debug_off
async def test_key_flows_use_exactly_the_role(release: Any) -> None:
    # keeping 3 finished requests, the older ones' records are deleted on the way
    async with release(rbac=True, env={"HELLO_KEEP_RELEASES": "3"}) as chat:
        deployed = await chat.approve("U1", "/hello deploy v2")
        done = [deployed.ts]
        for text in ("/hello canary v3 10%", "/hello canary 20%", "/hello canary promote", "/hello rollback",
                     "/hello cert renew"):
            message = await chat.approve("U1", text, exclude=done)
            assert ":white_check_mark:" in message.text, message.text
            done.append(message.ts)
        await chat.approve("U1", "/hello canary v4 10%", exclude=done)
        await chat.send("U1", "/hello canary abort")
        await chat.message_saying("aborted")
        await chat.send("U1", "/hello cert")
        await chat.message_saying("Certificate helloworld-tls")
        await chat.send("U1", "/hello history")
        await chat.message_saying("Release history")
        await follow(chat.stack.services)  # as serving does: status reads the watch caches (list, then watch)
        cluster = await chat.stack.services.cluster()
        await until(lambda: cluster.from_cache() is not None and all(s.watches for s in cluster.watch_states()),
                    "the watch caches to open", 20)
        await chat.send("U3", "/hello status")
        await chat.message_saying("helloworld status")
        await chat.send("U1", '/hello schedule add "*/15 * * * *" 1h')
        await chat.message_saying("*/15 * * * *")
        await chat.send("U3", "/hello schedule list")
        await chat.settle()
        scheduler = chat.stack.services.schedules
        await scheduler.tick(datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC))
        await scheduler.stop()
        await chat.settle()
        releases = [cm["metadata"]["name"] for cm in chat.kube.list("", "v1", "configmaps", "hello")
                    if cm["metadata"]["name"].startswith("hello-chatops-state-request-")]
        assert 1 <= len(releases) <= 3 + 1, releases  # the kept ones (and at most one running)
        used = {(verb, group, f"{resource}/{sub}" if sub else resource)
                for verb, group, resource, sub in chat.kube.rbac_usage("bot-token")}

    role = granted()
    assert used <= role, f"used without a grant: {sorted(used - role)}"
    others = PROMOTION | GATEWAY_API | LOADTEST
    assert role - used == others, f"granted but never used: {sorted(role - used - others)}"
