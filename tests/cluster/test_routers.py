"""One set of tests, run against both traffic routers (Emissary's Mappings and a Gateway API HTTPRoute's rule):
set a share and read it back, refuse a route that is not as expected, promote, abort, and a release step
taken up again by another replica. Each drives the real client against the API emulator, through the same
planning and step handlers a release uses."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cluster.kube import Cluster
from bot.cluster.routes import RouteRefused
from bot.core.config import Config, Traffic
from bot.core.errors import Conflict
from bot.core.retry import transient
from bot.release import actions
from bot.release.plan import steps_for
from bot.release.steps import execute
from sandbox.kube import KubeEmulator
from sandbox.stack import MANIFESTS, ROLE

NS = "hello"
MAPPINGS = ("getambassador.io", "v3alpha1", "mappings")
HTTPROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")
HTTPROUTE_FILE = MANIFESTS / "gateway-api" / "httproute.yaml"
FAST = {"tick": 0.02, "pod_ready_seconds": 0.1, "deadline_scale": 0.01, "cert_issue_delay": 0.05}


@dataclass(frozen=True)
class Router:
    """How a test reaches one router's objects in the emulator."""

    name: str
    traffic: Traffic

    def share(self, emu: KubeEmulator) -> int:
        """The canary's share as the gateway's object holds it."""
        if self.traffic.router == "emissary":
            return int(emu.get(*MAPPINGS, NS, "helloworld-canary")["spec"].get("weight") or 0)
        refs = _rule(emu)["backendRefs"]
        weights = {ref["name"]: int(ref.get("weight", 1)) for ref in refs}
        return round(100 * weights["helloworld-canary"] / sum(weights.values()))

    def version(self, emu: KubeEmulator) -> str:
        """The resourceVersion of the object the router writes."""
        return str(self.object(emu)["metadata"]["resourceVersion"])

    def object(self, emu: KubeEmulator) -> dict[str, Any]:
        if self.traffic.router == "emissary":
            return emu.get(*MAPPINGS, NS, "helloworld-canary")
        return emu.get(*HTTPROUTES, NS, "helloworld")

    def make_foreign(self, emu: KubeEmulator) -> str:
        """Edit the route as its owner might, into one the router must refuse; what the refusal names."""
        if self.traffic.router == "emissary":
            mapping = emu.get(*MAPPINGS, NS, "helloworld-canary")
            mapping["spec"]["prefix"] = "/other/"
            emu.apply(mapping)
            return "/other/"
        route = emu.get(*HTTPROUTES, NS, "helloworld")
        route["spec"]["rules"][0]["backendRefs"].append({"name": "mirror", "port": 80, "weight": 1})
        emu.apply(route)
        return "`mirror`"


ROUTERS = [
    Router("emissary", Traffic()),
    Router("gateway-api", Traffic(router="gateway-api", route="helloworld", rule="split",
                                  stable_service="helloworld", canary_service="helloworld-canary")),
]


def _rule(emu: KubeEmulator) -> dict[str, Any]:
    return emu.get(*HTTPROUTES, NS, "helloworld")["spec"]["rules"][0]


def seed(emu: KubeEmulator) -> None:
    emu.seed(MANIFESTS)
    for doc in yaml.safe_load_all(HTTPROUTE_FILE.read_text()):
        emu.apply(doc)


@pytest.fixture(params=ROUTERS, ids=lambda r: r.name)
def router(request: pytest.FixtureRequest) -> Router:
    return request.param


@pytest.fixture
async def emu() -> AsyncIterator[KubeEmulator]:
    emulator = KubeEmulator(**FAST, rbac_files=(ROLE,))  # the bot's Role enforced: each router's verbs suffice
    await emulator.start()
    try:
        seed(emulator)
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def connect(emu: KubeEmulator, router: Router, tmp_path: Path) -> AsyncIterator[Callable[[], Any]]:
    """``await connect()``: one more replica's connection (its own client and router), closed after the test."""
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS, token=emu.rbac_token)
    config = Config(slack_bot_token="xoxb-test", slack_signing_secret="s", kubeconfig=str(kubeconfig),
                    namespace=NS, traffic=router.traffic, rollout_timeout_seconds=30)
    opened: list[Cluster] = []

    async def one() -> Cluster:
        cluster = await Cluster.connect(config)
        opened.append(cluster)
        return cluster

    yield one
    for cluster in opened:
        await cluster.close()


async def run(cluster: Cluster, change: actions.Change) -> None:
    """Carry out every step of a change's plan, as a release's driver does."""
    for step in steps_for(change.action, change.params, cluster.config):
        result = await execute(step, cluster, cluster.config)
        assert result.ok, f"{step.title}: {result.note}"


async def test_a_share_is_set_once_and_read_back(emu: KubeEmulator, router: Router, connect: Any) -> None:
    cluster = await connect()
    before = router.version(emu)
    assert await cluster.traffic.set_canary_share(25) is True
    assert (await cluster.traffic.canary_route()).weight == 25
    assert router.share(emu) == 25
    stable = await cluster.traffic.stable_route()
    assert stable.weight in (None, 75)  # Emissary: the rest; the Gateway API: the other weight
    written = router.version(emu)
    assert written != before
    assert await cluster.traffic.set_canary_share(25) is False  # idempotent: nothing written again
    assert router.version(emu) == written
    assert await cluster.traffic.set_canary_share(0) is True
    assert (await cluster.traffic.canary_route()).weight == 0 and router.share(emu) == 0


async def test_a_route_not_as_expected_is_refused_naming_what_was_found(emu: KubeEmulator, router: Router,
                                                                        connect: Any) -> None:
    cluster = await connect()
    found = router.make_foreign(emu)
    before = copy.deepcopy(router.object(emu))
    with pytest.raises(RouteRefused, match="nothing was changed") as refused:
        await cluster.traffic.set_canary_share(10)
    assert found in str(refused.value)
    assert router.object(emu) == before
    plan = actions.plan_shift(cluster, cluster.config, 10)
    if router.traffic.router == "gateway-api":  # reading it is refused too: planning, status, check
        with pytest.raises(RouteRefused):
            await plan
        deployed = await cluster.deployed(events=False)
        assert found in deployed.missing["canary route"]
    else:
        plan.close()


async def test_a_canary_is_promoted(emu: KubeEmulator, router: Router, connect: Any) -> None:
    cluster = await connect()
    await run(cluster, await actions.plan_canary(cluster, cluster.config, "v2", 10))
    assert router.share(emu) == 10
    change = await actions.plan_promote(cluster, cluster.config)
    label = ("Mapping `helloworld-canary`" if router.traffic.router == "emissary"
             else "HTTPRoute `helloworld` rule `split`")
    assert any(label in line for line in change.details)
    await run(cluster, change)
    assert router.share(emu) == 0
    stable = emu.get("apps", "v1", "deployments", NS, "helloworld")
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == "helloworld:v2"
    assert emu.get("apps", "v1", "deployments", NS, "helloworld-canary")["spec"]["replicas"] == 0


async def test_a_canary_is_aborted(emu: KubeEmulator, router: Router, connect: Any) -> None:
    cluster = await connect()
    await run(cluster, await actions.plan_canary(cluster, cluster.config, "v2", 30))
    assert router.share(emu) == 30
    await run(cluster, await actions.plan_abort(cluster, cluster.config))
    assert router.share(emu) == 0
    assert emu.get("apps", "v1", "deployments", NS, "helloworld-canary")["spec"]["replicas"] == 0
    stable = emu.get("apps", "v1", "deployments", NS, "helloworld")
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == "helloworld:v1"


async def test_a_step_cut_short_is_taken_up_by_another_replica(emu: KubeEmulator, router: Router,
                                                              connect: Any) -> None:
    first = await connect()
    await run(first, await actions.plan_canary(first, first.config, "v2", 10))
    steps = steps_for("shift", (await actions.plan_shift(first, first.config, 50)).params, first.config)
    for step in steps:  # the first replica does the whole step, then dies before recording it
        assert (await execute(step, first, first.config)).ok
    written = router.version(emu)
    if router.traffic.router == "gateway-api":  # meanwhile the route's owner adds a filter to the rule
        route = emu.get(*HTTPROUTES, NS, "helloworld")
        route["spec"]["rules"][0]["filters"].append(
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-team", "value": "a"}]}})
        written = emu.apply(route)["metadata"]["resourceVersion"]
    second = await connect()  # another replica, its own connection and router, runs the step again
    for step in steps:
        assert (await execute(step, second, second.config)).ok
    assert router.share(emu) == 50
    assert router.version(emu) == written  # nothing written twice
    await run(second, await actions.plan_abort(second, second.config))
    assert router.share(emu) == 0
    if router.traffic.router == "gateway-api":
        assert [f["type"] for f in _rule(emu)["filters"]] == ["URLRewrite", "RequestHeaderModifier"]


# --- the Gateway API router only: what it refuses, and a rule edited between its read and its write


GATEWAY = ROUTERS[1]


def _edit(emu: KubeEmulator, change: Callable[[dict[str, Any]], None]) -> None:
    route = emu.get(*HTTPROUTES, NS, "helloworld")
    change(route["spec"])
    emu.apply(route)


def _third_backend(spec: dict[str, Any]) -> None:
    spec["rules"][0]["backendRefs"].append({"name": "helloworld-canary", "namespace": "other", "port": 80})


def _one_replaced(spec: dict[str, Any]) -> None:
    spec["rules"][0]["backendRefs"][1] = {"name": "helloworld-next", "port": 80}


def _not_a_service(spec: dict[str, Any]) -> None:
    spec["rules"][0]["backendRefs"][1].update(group="multicluster.x-k8s.io", kind="ServiceImport")


def _renamed(spec: dict[str, Any]) -> None:
    spec["rules"][0]["name"] = "main"


@pytest.mark.parametrize(("change", "message"), [
    (_third_backend, "sends to `helloworld`, `helloworld-canary`, `other/helloworld-canary`"),
    (_one_replaced, "sends to `helloworld`, `helloworld-next`: the bot changes only a rule whose backendRefs are "
                    "exactly the Services `helloworld` and `helloworld-canary`"),
    (_not_a_service, "`ServiceImport.multicluster.x-k8s.io/helloworld-canary`"),
    (_renamed, "HTTPRoute `helloworld` has no rule named `split` (its rules: `main`)"),
], ids=["third-backend", "other-service", "not-a-service", "no-such-rule"])
@pytest.mark.parametrize("router", [GATEWAY], ids=["gateway-api"])
async def test_the_gateway_router_refuses_a_rule_that_is_not_its_two_services(
        emu: KubeEmulator, router: Router, connect: Any, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    cluster = await connect()
    _edit(emu, change)
    before = router.object(emu)
    with pytest.raises(RouteRefused) as refused:
        await cluster.traffic.set_canary_share(10)
    assert message in str(refused.value)
    assert router.object(emu) == before


@pytest.mark.parametrize("router", [GATEWAY], ids=["gateway-api"])
async def test_a_rule_chosen_by_index_must_exist(emu: KubeEmulator, router: Router, connect: Any,
                                                 tmp_path: Path) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig-index", namespace=NS)
    traffic = Traffic(router="gateway-api", route="helloworld", rule=1, stable_service="helloworld",
                      canary_service="helloworld-canary")
    config = Config(slack_bot_token="xoxb-test", slack_signing_secret="s", kubeconfig=str(kubeconfig), namespace=NS,
                    traffic=traffic)
    cluster = await Cluster.connect(config)
    try:
        with pytest.raises(RouteRefused, match="HTTPRoute `helloworld` has 1 rule\\(s\\): there is no rule 1"):
            await cluster.traffic.canary_route()
        _edit(emu, lambda spec: spec["rules"].insert(0, {"backendRefs": [{"name": "maintenance", "port": 80}]}))
        assert await cluster.traffic.set_canary_share(20) is True  # rule 1 is now the split
        rules = emu.get(*HTTPROUTES, NS, "helloworld")["spec"]["rules"]
        assert [ref.get("weight") for ref in rules[1]["backendRefs"]] == [80, 20]
        assert rules[0]["backendRefs"] == [{"name": "maintenance", "port": 80}]
    finally:
        await cluster.close()


@pytest.mark.parametrize("router", [GATEWAY], ids=["gateway-api"])
async def test_a_rule_edited_between_read_and_write_is_read_again_not_overwritten(
        emu: KubeEmulator, router: Router, connect: Any) -> None:
    """The patch tests the backendRefs it read: the API server refuses it (422) when they changed meanwhile, and
    the router reads the rule again and decides again, keeping the owner's edit."""
    cluster = await connect()
    api = cluster.traffic.api  # type: ignore[attr-defined]
    call = api.call
    edits: list[int] = []

    async def racing(verb: str, kind: str, name: str | None, fn: Any, *args: Any, **kwargs: Any) -> dict:
        result = await call(verb, kind, name, fn, *args, **kwargs)
        if verb == "get" and not edits:  # right after the router's first read, the owner edits the rule
            edits.append(1)
            _edit(emu, lambda spec: spec["rules"][0]["backendRefs"][0].update(port=8080))
        return result

    api.call = racing
    assert await cluster.traffic.set_canary_share(40) is True
    refs = _rule(emu)["backendRefs"]
    assert [(ref["name"], ref["port"], ref["weight"]) for ref in refs] == [("helloworld", 8080, 60),
                                                                           ("helloworld-canary", 80, 40)]


@pytest.mark.parametrize("router", [GATEWAY], ids=["gateway-api"])
async def test_a_rule_that_keeps_changing_is_a_conflict_to_try_again(emu: KubeEmulator, router: Router,
                                                                     connect: Any) -> None:
    cluster = await connect()
    api = cluster.traffic.api  # type: ignore[attr-defined]
    call = api.call
    ports = iter(range(8000, 8100))

    async def busy(verb: str, kind: str, name: str | None, fn: Any, *args: Any, **kwargs: Any) -> dict:
        result = await call(verb, kind, name, fn, *args, **kwargs)
        if verb == "get":  # the owner edits the rule after every read
            _edit(emu, lambda spec: spec["rules"][0]["backendRefs"][0].update(port=next(ports)))
        return result

    api.call = busy
    with pytest.raises(Conflict, match="changed between each of 3 reads and the bot's patch: nothing was changed"):
        await cluster.traffic.set_canary_share(40)
    assert router.share(emu) == 0
    assert transient(Conflict("x", 409))  # the engine waits it out and runs the step again
