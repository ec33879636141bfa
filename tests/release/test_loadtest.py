"""`/hello loadtest` as a chat: the real `hey` in the emulated cluster's Jobs against a real helloworld process,
approved, followed in the message, measured per track, bounded by the limits, stopped on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core import catalogue_file
from bot.core import config as config_module
from bot.core.errors import ConfigError, UsageError
from bot.release import load
from commands import loadtest
from helloworld import runner
from sandbox.kube import kinds
from tests.catalogues import catalogue
from tests.catalogues import service as entry
from tests.harness.chat import NS, Chat, release_stack
from tests.harness.wait import until

# What only a load test uses (tests/release/test_rbac.py leaves these to this module)
LOAD = {("create", "batch", "jobs"), ("get", "batch", "jobs"), ("list", "batch", "jobs"),
        ("delete", "batch", "jobs"), ("get", "", "pods/log")}


@pytest.fixture(scope="module")
def service() -> Any:
    with runner.start("v1") as running:
        yield running


@pytest.fixture
async def chat(service: Any) -> AsyncIterator[Chat]:
    async with release_stack() as chat:
        for name in ("helloworld", "helloworld-canary"):  # the cluster's DNS: both Services lead to the process
            chat.kube.dns.register(NS, name, f"{service.host}:{service.port}")
        yield chat


def used(chat: Chat) -> set[tuple[str, str, str]]:
    return {(verb, group, f"{resource}/{sub}" if sub else resource)
            for verb, group, resource, sub in chat.kube.rbac_usage("bot-token")}


def jobs(chat: Chat) -> list[dict]:
    return chat.kube.list("batch", "v1", "jobs", NS)


async def job_running(chat: Chat, timeout: float = 15.0) -> list[dict]:
    return await until(lambda: jobs(chat), "a load Job", timeout)


async def test_a_load_test_of_both_tracks_reports_each_tracks_figures_and_leaves_no_job(chat: Chat) -> None:
    canary = chat.deployment("helloworld-canary")
    canary["spec"]["replicas"] = 1
    chat.kube.store.update(kinds.lookup("apps", "deployments"), NS, "helloworld-canary", canary)
    await chat.rolled_out("helloworld-canary")
    created: list[dict] = []
    chat.kube.subscribe(lambda kind, obj: created.append(obj) if kind == "ADDED" and obj.get("kind") == "Job"
                        else None)
    await chat.send("U1", '/hello loadtest 10 2s both "size the cache"')
    request = await chat.approval()
    assert "10 req/s for 2 s to stable and canary" in request.text
    await chat.click("U2", request, "approve")
    final = await chat.finished(request)
    text = str(final.blocks)
    assert "*stable*: " in text and "*canary*: " in text and "p99" in text, text
    for track in ("stable", "canary"):
        line = next(x for x in text.split("\\n") if f"*{track}*: " in x)
        requests = int(line.split(f"*{track}*: ")[1].split(" requests")[0])
        assert requests >= 10, line  # about 20 were sent
    assert ":white_check_mark:" in final.text
    # the latency chart in the thread, with a line saying what it shows
    chart = await chat.wait(lambda m: getattr(m, "thread_ts", None) == request.ts and getattr(m, "files", None))
    assert chart.files[0]["name"].startswith("loadtest-") and chart.files[0]["name"].endswith(".png")
    assert "side by side" in chart.text and "10 req/s for 2 s to stable and canary" in chart.text, chart.text
    assert len(created) == 2
    for job in created:
        spec = job["spec"]
        command = spec["template"]["spec"]["containers"][0]["command"]
        assert command[:3] == ["hey", "-z", "2s"] and "-o" in command and command[-1].endswith("/v1/hello")
        assert spec["activeDeadlineSeconds"] == 62 and spec["backoffLimit"] == 0
        [owner] = job["metadata"]["ownerReferences"]
        assert owner["kind"] == "ConfigMap" and owner["name"].startswith("hello-chatops-state-request-")
    assert {j["spec"]["template"]["spec"]["containers"][0]["command"][-1].split("/")[2] for j in created} == {
        "helloworld.hello.svc.cluster.local", "helloworld-canary.hello.svc.cluster.local"}
    await chat.settle()
    assert jobs(chat) == []  # deleted when the test ended
    assert [e for e in chat.audit_events() if e["reason"] == "HelloLoadTestSucceeded"]
    assert used(chat) & LOAD == LOAD - {("list", "batch", "jobs")}  # listed only by `stop`


async def test_beyond_the_limits_is_a_usage_error_that_names_them(chat: Chat) -> None:
    await chat.send("U1", "/hello loadtest 5000 1h")
    answer = await chat.private("U1", "beyond the limits")
    assert "at most 50 req/s for at most 300 s" in answer.text
    assert jobs(chat) == [] and not [m for m in chat.slack.messages("C1") if chat.button(m, "approve")]


async def test_stop_ends_the_running_load_test(chat: Chat) -> None:
    await chat.send("U1", "/hello loadtest 5 120s")
    request = await chat.approval()
    await chat.click("U2", request, "approve")
    await job_running(chat)
    await chat.send("U1", "/hello loadtest stop")
    await chat.message_saying("stopped the load on `helloworld`")
    final = await chat.finished(request)
    assert "Stopped before its end" in final.text or "Stopped before its end" in str(final.blocks)
    await chat.settle()
    assert jobs(chat) == [] and chat.kube.list("", "v1", "pods", NS, label_selector="hello-chatops.dev/load") == []
    assert used(chat) & LOAD == LOAD - {("get", "", "pods/log")}  # stopped: nothing measured to read
    await chat.send("U1", "/hello loadtest stop")
    await chat.private("U1", "No load test is running")



def test_a_services_catalogue_limits_and_path_are_its_own_and_checked_as_the_variables() -> None:
    data = catalogue(entry("greeter", "greeter", loadtest={"max_rps": 5, "max_seconds": 60, "path": "/v2/hello"}),
                     entry("helloworld", "hello"))
    found = catalogue_file.parse(data)
    base = config_module.load({}, require_slack=False)
    greeter = found.service("greeter").config_for("staging", base)
    assert (greeter.loadtest_max_rps, greeter.loadtest_max_seconds, greeter.loadtest_path) == (5, 60, "/v2/hello")
    assert found.service("helloworld").config_for("staging", base).loadtest_max_rps == 50
    with pytest.raises(UsageError, match="at most 5 req/s for at most 60 s"):
        loadtest.parse(["6", "30s"], greeter)
    assert loadtest.parse(["5", "1m", "canary"], greeter).tracks == ("canary",)
    with pytest.raises(ConfigError, match=r"loadtest\.path"):
        catalogue_file.parse(catalogue(entry("greeter", "greeter", loadtest={"path": "v2 hello"})))


def test_hey_csv_is_read_into_figures_and_an_escaped_line() -> None:
    text = ("response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n"
            + "".join(f"0.{i:04d},0,0,0,0,0,{503 if i % 10 == 0 else 200},{i / 10:.4f}\n" for i in range(1, 101))
            + "garbage line\n")
    found = load.figures(text, 10)
    assert (found.requests, found.errors, found.throughput) == (100, 10, 10.0)
    assert (found.p50, found.p90, found.p99) == (0.005, 0.009, 0.0099)
    assert load.line("canary", found, expected=100) == (
        "*canary*: 100 requests, 10 errors (10.0%), p50 5.0 ms · p90 9.0 ms · p99 9.9 ms, 10.0 req/s")
    assert "the rest got no answer" in load.line("stable", found, expected=200)
    assert load.hey_command(25, 30, "http://x/") == ["hey", "-z", "30s", "-c", "10", "-q", "2.5", "-o", "csv",
                                                     "http://x/"]
