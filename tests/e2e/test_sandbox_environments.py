"""The sandbox's two environments (staging, production) and two services (helloworld, greeter).

One sandbox for the module, started in-process: `python -m bot check` with the bot's environment
reaches every service in every environment through the kubeconfig's contexts, kubectl reaches each
cluster by its context, each environment's Prometheus tells the services apart by their labels, and
the console lists a channel per service.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import yaml

from sandbox.run import Sandbox
from sandbox.slack.state import Message
from sandbox.stack import SERVICES
from tests.harness.wait import until
from tests.kubectl import run_kubectl

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [f"{service}/{env}" for service in ("helloworld", "greeter") for env in ("staging", "production")]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.prometheus]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox(port=0, rps=5)
    try:
        await box.start()
        yield box
    finally:
        await box.stop()


async def query(http: aiohttp.ClientSession, prometheus: str, promql: str) -> list[dict]:
    async with http.get(f"{prometheus}/api/v1/query", params={"query": promql}) as response:
        return (await response.json())["data"]["result"]


async def wait_for(check, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """:func:`until` at the pace of real servers (a query every quarter second)."""
    return await until(check, what, timeout, every=0.25)


async def test_check_passes_for_every_service_in_every_environment(sandbox: Sandbox) -> None:
    assert sandbox.stack is not None
    env = sandbox.stack.env()
    catalogue = yaml.safe_load(await asyncio.to_thread(Path(env["HELLO_SERVICES"]).read_text))
    assert [s["name"] for s in catalogue["services"]] == ["helloworld", "greeter"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_", "PROMETHEUS", "KUBE"))}
    # each Prometheus answers within 10 s, however busy the machine (the sandbox's own bot waits 2 s)
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "check"], cwd=ROOT,
                                     env={**base, **env, "PROMETHEUS_TIMEOUT": "10"}, capture_output=True, text=True,
                                     timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert [name for name in lines if "/" in name] == PAIRS, result.stdout
    assert {"configuration", "slack"} <= set(lines), result.stdout
    assert all(line.split()[1] == "ok" for line in lines.values()), result.stdout
    # each pair was read from its own cluster and its own Prometheus, in its service's namespace
    for environment in sandbox.environments:
        kube = sandbox.stack.clusters[environment.name].url
        assert environment.prometheus is not None
        for service in SERVICES:
            line = lines[f"{service.name}/{environment.name}"]
            assert kube.split("//")[1] in line and environment.prometheus.url in line, line
            assert f"namespace {service.namespace}: deployments {service.name}, {service.name}-canary" in line
            assert f"certificate {service.name}-tls" in line


async def test_kubectl_reaches_each_cluster_by_its_context(sandbox: Sandbox) -> None:
    kubeconfig = Path(sandbox.admin_kubeconfig)
    assert sandbox.stack is not None
    sandbox.stack.clusters["production"].apply({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "only-in-production", "namespace": "greeter"}})
    for context in ("staging", "production"):
        # in a thread: the emulators answer from this event loop
        names = (await asyncio.to_thread(run_kubectl, "--context", context, "get",
                                         "deployments,mappings,httproutes,certificates", "-n", "greeter", "-o", "name",
                                         kubeconfig=kubeconfig)).stdout.split()
        assert names == ["deployment.apps/greeter", "deployment.apps/greeter-canary",  # routed by its HTTPRoute
                         "httproute.gateway.networking.k8s.io/greeter", "certificate.cert-manager.io/greeter-tls"]
        found = await asyncio.to_thread(run_kubectl, "--context", context, "get", "configmap", "only-in-production",
                                        "-n", "greeter", kubeconfig=kubeconfig, check=False)
        assert (found.returncode == 0) == (context == "production"), found.stderr


async def test_each_environment_scrapes_both_services_apart(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        for environment in sandbox.environments:
            assert environment.prometheus is not None
            for service in SERVICES:
                assert environment.fleets[service.name].versions() == {"stable": "v1"}
            url = environment.prometheus.url

            async def targets(url: str = url) -> set[tuple[str, str, str]]:
                up = await query(http, url, 'sum by (namespace, app, track) (up{job="helloworld"})')
                found = {(s["metric"].get("namespace"), s["metric"].get("app"), s["metric"].get("track")) for s in up}
                return found if len(found) >= 2 else set()

            assert await wait_for(targets, f"{environment.name}'s targets") == {
                ("hello", "helloworld", "stable"), ("greeter", "greeter", "stable")}
            # the catalogue's queries count one service's requests only
            for service in SERVICES:
                promql = service.queries()["requests"].replace("$window", "1m")
                counted = await wait_for(lambda url=url, promql=promql: query(http, url, promql),
                                         f"{service.name}'s requests in {environment.name}")
                assert [s["metric"] for s in counted] == [{"version": "v1"}]
            served = await query(http, url, "count by (namespace) (helloworld_requests_total)")
            assert {s["metric"]["namespace"] for s in served} == {"hello", "greeter"}


async def test_the_console_has_a_channel_per_service(sandbox: Sandbox) -> None:
    assert sandbox.console is not None
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.console.url}/api/config") as response:
        config = await response.json()
    channels = {c["id"]: c["name"] for c in config["channels"]}
    assert {channels.get(service.channel) for service in SERVICES} == {"helloworld", "greeter"}
    assert channels["C1"] == "ops" and config["channel"] == "C1"
    assert sandbox.stack is not None
    catalogue = yaml.safe_load(await asyncio.to_thread(sandbox.stack.catalogue_file.read_text))
    assert {s["name"]: s["channels"] for s in catalogue["services"]} == {"helloworld": ["C3"], "greeter": ["C4"]}


async def test_a_deploy_in_one_environment_replaces_only_that_services_process_there(sandbox: Sandbox) -> None:
    assert sandbox.stack is not None
    production = sandbox.stack.clusters["production"]
    deployment = production.get("apps", "v1", "deployments", "greeter", "greeter")
    assert deployment is not None
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "greeter:v2"
    production.apply(deployment)
    fleets = {(env.name, name): fleet for env in sandbox.environments for name, fleet in env.fleets.items()}

    async def replaced() -> bool:
        return fleets["production", "greeter"].versions() == {"stable": "v2"}

    await wait_for(replaced, "greeter's production process to run v2")
    assert {key: fleet.versions() for key, fleet in fleets.items() if key != ("production", "greeter")} == {
        ("staging", "helloworld"): {"stable": "v1"}, ("staging", "greeter"): {"stable": "v1"},
        ("production", "helloworld"): {"stable": "v1"}}


async def test_a_canary_of_greeter_moves_its_httproute_and_haproxy_follows(sandbox: Sandbox) -> None:
    """`/hello canary v2 30%` in #greeter: the bot sets the weights of its HTTPRoute's rule (helloworld keeps its
    Mappings), the sandbox's controller sets HAProxy's, and the load reaches the canary through HAProxy."""
    assert sandbox.stack is not None and sandbox.proxy is not None
    stack, proxy = sandbox.stack, sandbox.proxy
    staging = stack.clusters["staging"]
    greeter = next(service for service in SERVICES if service.name == "greeter")
    await stack.command("U1", "/hello canary v2 30%", channel=greeter.channel)
    request = await stack.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == greeter.channel
                                         and "'action_id': 'approve'" in str(m.blocks), 30)
    approve = next(e for b in request.blocks if b.get("type") == "actions" for e in b["elements"]
                   if e.get("action_id") == "approve")
    await stack.click("U2", request.ts, "approve", value=approve["value"], channel=greeter.channel)

    def route_weights() -> dict[str, int]:
        route = staging.get("gateway.networking.k8s.io", "v1", "httproutes", "greeter", "greeter")
        return {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}

    async def haproxy_weights() -> dict[str, int]:
        return {s.server: s.weight for s in await proxy.stats() if s.backend == "staging-greeter"}

    async def followed() -> bool:
        return (route_weights() == {"greeter": 70, "greeter-canary": 30}
                and await haproxy_weights() == {"stable": 70, "canary": 30})

    await wait_for(followed, "the HTTPRoute's and HAProxy's weights at 70/30", timeout=60)
    helloworld = {s.server: s.weight for s in await proxy.stats() if s.backend == "staging-helloworld"}
    assert helloworld == {"stable": 100, "canary": 0}  # another service, another router: untouched
    load = sandbox.environments[0].loads[[s.name for s in SERVICES].index("greeter")]
    before = load.served().get("canary", 0)
    await wait_for(lambda: (load.served().get("canary", 0) > before), "greeter's canary answering")

    await stack.command("U1", "/hello canary abort", channel=greeter.channel)  # as it was, for the other tests
    await wait_for(lambda: ("canary" not in sandbox.environments[0].fleets["greeter"].versions()),
                   "greeter's canary to stop", timeout=60)
    await wait_for(lambda: (route_weights()["greeter-canary"] == 0), "the canary's weight at 0")
