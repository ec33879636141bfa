"""The whole sandbox, once: greeter's analysed canary through its HTTPRoute with load during analysis, the real
HAProxy following each step, an owner's filter on the route kept, and `/hello loadtest` in #helloworld.

One sandbox for the module, started in-process with the analysis at a test's pace (a look every 4 s, steps of
30% and 60%). greeter's catalogue entry asks for `analysis: {load: {rps: 10}}`, so each analysed step runs a
`hey` Job per track; HAProxy's ``show stat`` is sampled all along, and the Jobs are listed as they come and go.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.release import load
from sandbox.run import Sandbox, backend_name
from sandbox.slack.state import Ephemeral, Message
from tests.harness.chat import button
from tests.harness.wait import until
from tests.kubectl import run_kubectl

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.prometheus, pytest.mark.timeout(240)]

FAST = {"HELLO_ANALYSIS_INTERVAL": "4s", "HELLO_ANALYSIS_MIN_REQUESTS": "20", "HELLO_CANARY_STEPS": "30,60"}
GREETER, HELLOWORLD = "C4", "C3"
FILTER = {"type": "RequestHeaderModifier",
          "requestHeaderModifier": {"add": [{"name": "X-Owner", "value": "kept-by-the-bot"}]}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox(port=0, rps=20)
    try:
        with pytest.MonkeyPatch.context() as patch:  # the sandbox passes HELLO_ANALYSIS_* and HELLO_CANARY_* on
            for name, value in FAST.items():
                patch.setenv(name, value)
            await box.start()
        yield box
    finally:
        await box.stop()


@dataclass
class Watch:
    """What HAProxy and the cluster showed while greeter's canary ran, sampled every 0.2 s."""

    weights: list[tuple[int, int]] = field(default_factory=list)  # (stable, canary) each time they changed
    jobs: set[str] = field(default_factory=set)  # every analysis load Job seen

    async def run(self, box: Sandbox) -> None:
        assert box.proxy is not None and box.stack is not None
        kube = box.stack.clusters["staging"]
        while True:
            servers = {s.server: s.weight for s in await box.proxy.stats()
                       if s.backend == backend_name("staging", "greeter")}
            pair = (servers.get("stable", -1), servers.get("canary", -1))
            if not self.weights or self.weights[-1] != pair:
                self.weights.append(pair)
            self.jobs |= {j["metadata"]["name"] for j in analysis_jobs(kube)}
            await asyncio.sleep(0.2)


def analysis_jobs(kube: Any) -> list[dict]:
    return [j for j in kube.list("batch", "v1", "jobs", "greeter")
            if load.ANALYSIS_LABEL in (j["metadata"].get("labels") or {})]


def text(message: Any) -> str:
    return message.text + json.dumps(message.blocks or [], ensure_ascii=False)


async def ask_and_approve(box: Sandbox, channel: str, command: str) -> Message:
    """Send ``command`` as dana (U1) in ``channel``; avery (U2) approves the request."""
    assert box.stack is not None
    slack = box.stack.slack
    before = {m.ts for m in slack.messages(channel)}
    await box.stack.command("U1", command, channel=channel)
    request = await slack.wait_for(lambda m: isinstance(m, Message) and m.channel == channel
                                   and m.ts not in before and button(m, "approve") is not None, 30)
    await box.stack.click("U2", request.ts, "approve", channel=channel)
    return request


async def finished(box: Sandbox, channel: str, request: Message, timeout: float) -> Message:
    assert box.stack is not None
    return await box.stack.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == channel
                                          and m.ts == request.ts and "Finished ·" in text(m), timeout)


def greeter_route(box: Sandbox) -> dict:
    assert box.stack is not None
    return box.stack.clusters["staging"].get("gateway.networking.k8s.io", "v1", "httproutes", "greeter", "greeter")


async def test_greeters_analysed_canary_walks_its_steps_through_haproxy_with_load_and_keeps_the_routes_filter(
        sandbox: Sandbox) -> None:
    patch = json.dumps([{"op": "add", "path": "/spec/rules/0/filters", "value": [FILTER]}])
    await asyncio.to_thread(run_kubectl, "--context", "staging", "-n", "greeter", "patch", "httproute", "greeter",
                            "--type=json", "-p", patch, kubeconfig=Path(sandbox.admin_kubeconfig))
    assert greeter_route(sandbox)["spec"]["rules"][0]["filters"] == [FILTER]
    watch = Watch()
    sampler = asyncio.create_task(watch.run(sandbox))
    try:
        started = time.monotonic()
        request = await ask_and_approve(sandbox, GREETER, "/hello canary v2")
        final = await finished(sandbox, GREETER, request, 150)
        print(f"\ngreeter canary v2 (30%, 60%; load 10 req/s per track): Promote offered after "
              f"{time.monotonic() - started:.0f} s")
    finally:
        sampler.cancel()
    assert "passed analysis at 30% → 60%" in final.text, final.text
    assert button(final, "release_promote") is not None
    assert any("load: 10 req/s to each track" in edit.text + json.dumps(edit.blocks or [])
               for edit in final.edits) or "load: 10 req/s to each track" in text(final)
    # HAProxy's weights followed the steps, in order: 0 -> 30 -> 60 of 100
    moves = [pair for pair in watch.weights if pair in {(100, 0), (70, 30), (40, 60)}]
    assert moves[moves.index((70, 30)):] == [(70, 30), (40, 60)], watch.weights
    # each analysed step ran a load Job per track, and none is left now that the release has ended
    assert {name.rsplit("-", 1)[-1] for name in watch.jobs} == {"stable", "canary"}, watch.jobs
    assert len(watch.jobs) == 4, watch.jobs  # two steps, two tracks
    assert sandbox.stack is not None and analysis_jobs(sandbox.stack.clusters["staging"]) == []
    # the owner's filter is still in the rule the bot weighed
    rule = greeter_route(sandbox)["spec"]["rules"][0]
    assert rule["filters"] == [FILTER]
    assert [(r["name"], r["weight"]) for r in rule["backendRefs"]] == [("greeter", 40), ("greeter-canary", 60)]


async def test_a_faulty_canary_of_greeter_with_load_is_aborted_at_its_first_step(sandbox: Sandbox) -> None:
    started = time.monotonic()
    request = await ask_and_approve(sandbox, GREETER, "/hello canary v3-faulty")
    final = await finished(sandbox, GREETER, request, 120)
    print(f"\ngreeter canary v3-faulty (load 10 req/s per track): aborted after {time.monotonic() - started:.0f} s")
    assert "failed analysis at 30% and was aborted" in final.text, final.text
    assert sandbox.stack is not None
    await until(lambda: analysis_jobs(sandbox.stack.clusters["staging"]) == [], "the load Jobs to be deleted")


async def test_a_load_test_of_both_tracks_answers_with_each_tracks_figures_and_a_chart(sandbox: Sandbox) -> None:
    assert sandbox.stack is not None
    canary = await ask_and_approve(sandbox, HELLOWORLD, "/hello canary v2 10%")
    await finished(sandbox, HELLOWORLD, canary, 60)
    request = await ask_and_approve(sandbox, HELLOWORLD, "/hello loadtest 20 5s both")
    final = await finished(sandbox, HELLOWORLD, request, 90)
    body = text(final)
    for track in ("stable", "canary"):
        assert f"*{track}*: " in body, body
        line = next(x for x in body.split("\\n") if f"*{track}*: " in x)
        assert int(line.split(f"*{track}*: ")[1].split(" requests")[0]) >= 50, line  # about 100 were sent
        assert "p50" in line and "p99" in line and "req/s" in line, line
    chart = await sandbox.stack.slack.wait_for(lambda m: isinstance(m, Message) and m.thread_ts == request.ts
                                               and bool(m.files), 30)
    assert chart.files[0]["name"].startswith("loadtest-") and chart.files[0]["name"].endswith(".png")
    assert "side by side" in chart.text, chart.text


async def test_a_load_test_beyond_the_limits_is_refused_naming_them(sandbox: Sandbox) -> None:
    assert sandbox.stack is not None
    await sandbox.stack.command("U1", "/hello loadtest 5000 1h", channel=HELLOWORLD)
    answer = await sandbox.stack.slack.wait_for(lambda m: isinstance(m, Ephemeral) and m.channel == HELLOWORLD
                                                and "beyond the limits" in m.text, 20)
    assert "at most 50 req/s for at most 300 s" in answer.text, answer.text
