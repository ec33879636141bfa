"""`python -m bot check` of a service whose router is the Gateway API: its HTTPRoute's rule is read (and refused
when not as expected) and the verbs on httproutes are asked for, against an API server enforcing the Role."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.__main__ import check_service
from bot.core.config import Config, Traffic
from sandbox.kube import KubeEmulator
from sandbox.stack import MANIFESTS, ROLE

NS = "hello"
TRAFFIC = Traffic(router="gateway-api", route="helloworld", rule="split", stable_service="helloworld",
                  canary_service="helloworld-canary")


async def checked(tmp_path: Path, role: Path, edit_route: bool = False) -> tuple[bool, str]:
    async with KubeEmulator(tick=0.05, rbac_files=(role,)) as emu:
        emu.seed(MANIFESTS)
        for doc in yaml.safe_load_all((MANIFESTS / "gateway-api" / "httproute.yaml").read_text()):
            emu.apply(doc)
        if edit_route:
            route = emu.get("gateway.networking.k8s.io", "v1", "httproutes", NS, "helloworld")
            route["spec"]["rules"][0]["backendRefs"].pop()
            emu.apply(route)
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", token=emu.rbac_token, namespace=NS)
        config = Config(slack_bot_token="x", slack_signing_secret="s", kubeconfig=str(kubeconfig), namespace=NS,
                        traffic=TRAFFIC, prometheus_url="http://127.0.0.1:9", prometheus_timeout_seconds=1)
        return await check_service(config)


@pytest.fixture
def without_httproutes(tmp_path: Path) -> Path:
    role = yaml.safe_load(ROLE.read_text())
    role["rules"] = [rule for rule in role["rules"] if rule["resources"] != ["httproutes"]]
    path = tmp_path / "role.yaml"
    path.write_text(yaml.safe_dump(role))
    return path


async def test_check_reads_the_rule_and_asks_for_the_verbs_on_httproutes(tmp_path: Path) -> None:
    ok, detail = await checked(tmp_path, ROLE)
    kubernetes = detail.split("; prometheus")[0]
    assert kubernetes.startswith("kubernetes ok, "), detail
    assert ("deployments helloworld, helloworld-canary, httproute helloworld rule split (backends helloworld, "
            "helloworld-canary), certificate helloworld-tls; allowed all 23 verbs") in kubernetes
    assert ok is False  # no Prometheus here: said apart


async def test_check_names_a_route_not_as_expected(tmp_path: Path) -> None:
    _, detail = await checked(tmp_path, ROLE, edit_route=True)
    assert ("kubernetes failed: HTTPRoute helloworld rule split sends to `helloworld`: the bot changes only a rule "
            "whose backendRefs are exactly the Services `helloworld` and `helloworld-canary`") in detail


async def test_check_names_the_missing_verbs_on_httproutes(tmp_path: Path, without_httproutes: Path) -> None:
    _, detail = await checked(tmp_path, without_httproutes)
    assert "cannot get httproutes, list httproutes, watch httproutes, patch httproutes in namespace hello" in detail
    assert "not allowed to get httproutes/helloworld" in detail
