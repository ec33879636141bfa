"""Load during analysis in chat: with HELLO_ANALYSIS_LOAD_RPS an analysed canary step runs the real `hey` in
one Job per track against a real helloworld process while it is judged, says so in the release's message,
keeps its Jobs when the release is taken up again, and leaves none behind when it is promoted or aborted.

Prometheus is not running here, so every check is inconclusive and the step asks a person after
HELLO_ANALYSIS_MAX_INCONCLUSIVE checks (as in test_analysis_flow.py); while a person decides, the step is
not judged and its load is deleted.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.core import catalogue_file
from bot.core import config as config_module
from bot.core.errors import ConfigError
from bot.release import load
from helloworld import runner
from tests.catalogues import catalogue
from tests.catalogues import service as entry
from tests.harness.chat import NS, Chat
from tests.harness.wait import until

ENV = {"HELLO_ANALYSIS_INTERVAL": "1s", "HELLO_CANARY_STEPS": "10", "HELLO_ANALYSIS_MAX_INCONCLUSIVE": "4",
       "HELLO_ANALYSIS_LOAD_RPS": "5", "HELLO_BAKE_MINUTES": "0"}


@pytest.fixture(scope="module")
def service() -> Any:
    with runner.start("v1") as running:
        yield running


def _blocks(message: Any) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def load_jobs(chat: Chat) -> list[dict]:
    return chat.kube.list("batch", "v1", "jobs", NS, label_selector=load.ANALYSIS_LABEL)


async def asking(chat: Chat, ts: str) -> Any:
    return await chat.wait(lambda m: m.ts == ts and chat.button(m, "analysis_continue") is not None, 30)


async def test_an_analysed_step_runs_a_load_job_per_track_kept_on_take_over_and_gone_after_promote_and_abort(
        release: Any, service: Any) -> None:
    events: list[tuple[str, str]] = []
    async with release(env=ENV) as chat:
        for name in ("helloworld", "helloworld-canary"):  # the cluster's DNS: both Services lead to the process
            chat.kube.dns.register(NS, name, f"{service.host}:{service.port}")
        chat.kube.subscribe(lambda kind, obj: events.append((kind, obj["metadata"]["name"]))
                            if obj.get("kind") == "Job" and kind in ("ADDED", "DELETED") else None)
        await chat.send("U1", "/hello canary v2")
        request = await chat.approval()
        await chat.click("U2", request, "approve")

        jobs = await until(lambda: len(load_jobs(chat)) == 2 and load_jobs(chat), "no load Job per track")
        by_track = {j["metadata"]["labels"][load.TRACK_LABEL]: j for j in jobs}
        assert set(by_track) == {"stable", "canary"}
        for track, job in by_track.items():
            command = job["spec"]["template"]["spec"]["containers"][0]["command"]
            assert command[:2] == ["hey", "-z"] and command[command.index("-c") + 1:command.index("-q") + 2] == [
                "5", "-q", "1"], command
            host = "helloworld" if track == "stable" else "helloworld-canary"
            assert command[-1] == f"http://{host}.{NS}.svc.cluster.local/v1/hello"
            assert job["spec"]["activeDeadlineSeconds"] == 1802 + load.GRACE_SECONDS
            [owner] = job["metadata"]["ownerReferences"]
            assert owner["kind"] == "ConfigMap" and owner["name"].startswith("hello-chatops-state-request-")
        await chat.wait(lambda m: m.ts == request.ts and "load: 5 req/s to each track" in _blocks(m))

        # the replica stops driving (as when its lease is lost) and takes the release up again: the
        # step's Jobs are found by name and kept, not started again
        await chat.stack.replicas[0].services.releases._drop_all()
        asked = await asking(chat, request.ts)
        assert [k for k, _ in events].count("ADDED") == 2, events
        assert load_jobs(chat) == []  # a person decides: the step is not judged, its load is gone
        assert "load: 5 req/s" not in _blocks(asked)
        await chat.click("U2", asked, "analysis_continue")
        final = await chat.finished(request)
        assert ":white_check_mark:" in final.text and "load: 5 req/s to each track" in _blocks(final)
        await chat.settle()
        assert chat.kube.list("batch", "v1", "jobs", NS) == []

        events.clear()
        await chat.send("U1", "/hello canary v3")
        request = await chat.approval(exclude={request.ts})
        await chat.click("U2", request, "approve")
        await until(lambda: len(load_jobs(chat)) == 2, "no load Job per track for the second canary")
        asked = await asking(chat, request.ts)
        await chat.click("U1", asked, "analysis_abort")
        final = await chat.finished(request)
        assert "aborted by a person" in final.text
        await chat.settle()
        assert chat.kube.list("batch", "v1", "jobs", NS) == []
        assert [k for k, _ in events].count("ADDED") == 2 == [k for k, _ in events].count("DELETED"), events


async def test_a_cluster_that_refuses_the_load_leaves_the_step_judged_without_it_and_says_why(
        release: Any) -> None:
    async with release(env=ENV) as chat:
        chat.kube.add_fault("create", "jobs", status=403, count=None)  # RBAC or a quota
        await chat.send("U1", "/hello canary v2")
        request = await chat.approval()
        await chat.click("U2", request, "approve")
        # the step is judged all the same (here: inconclusive, so a person is asked), and its line says why
        asked = await asking(chat, request.ts)
        assert load_jobs(chat) == []
        await chat.click("U2", asked, "analysis_continue")
        final = await chat.finished(request)
        assert ":white_check_mark:" in final.text
        line = _blocks(final)
        assert "no load: the cluster refused it (the bot is not allowed to create jobs/" in line, line
        assert "load: 5 req/s" not in line
        chat.kube.clear_faults()


def test_the_catalogues_analysis_load_is_the_services_own_and_checked_as_the_variable() -> None:
    data = catalogue(entry("greeter", "greeter", analysis={"load": {"rps": 10}}), entry("helloworld", "hello"))
    found = catalogue_file.parse(data)
    base = config_module.load({}, require_slack=False)
    assert base.analysis_load_rps == "auto"  # the default: sized at each look from what the judge needs
    assert found.service("greeter").config_for("staging", base).analysis_load_rps == 10
    assert found.service("helloworld").config_for("staging", base).analysis_load_rps == "auto"
    assert config_module.load({"HELLO_ANALYSIS_LOAD_RPS": "7"}, require_slack=False).analysis_load_rps == 7
    assert config_module.load({"HELLO_ANALYSIS_LOAD_RPS": "0"}, require_slack=False).analysis_load_rps == 0
    assert config_module.load({"HELLO_ANALYSIS_LOAD_RPS": " Auto "}, require_slack=False).analysis_load_rps == "auto"
    with pytest.raises(ConfigError, match=r"HELLO_ANALYSIS_LOAD_RPS must be a whole number of requests per second "
                                          r"\(0: no load\) or 'auto', got 'fast'"):
        config_module.load({"HELLO_ANALYSIS_LOAD_RPS": "fast"}, require_slack=False)
    quiet = catalogue(entry("greeter", "greeter", analysis={"load": {"rps": "auto"}}))
    none = replace(base, analysis_load_rps=0)
    assert catalogue_file.parse(quiet).service("greeter").config_for("staging", none).analysis_load_rps == "auto"
    with pytest.raises(ConfigError, match=r"analysis\.load\.rps must be between 0 and 10000"):
        catalogue_file.parse(catalogue(entry("greeter", "greeter", analysis={"load": {"rps": -1}})))
    with pytest.raises(ConfigError, match=r"analysis\.load\.rate: unknown field"):
        catalogue_file.parse(catalogue(entry("greeter", "greeter", analysis={"load": {"rate": 1}})))
