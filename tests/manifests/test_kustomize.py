"""The kustomize tree resolves: the root and every folder build with `kubectl kustomize` (the pinned
kubectl wheel's kustomize), nothing is left out, nothing is defined twice, every namespaced object says
where it goes."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from bot.cluster.httproutes import GatewayRoute
from bot.core import catalogue_file
from bot.core.config import Config

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
FOLDERS = ("helloworld", "gateway", "cert-manager", "metallb", "monitoring", "bot")
# applied instead of the root: `kubectl apply -k manifests/several-services/` (or gateway-api/)
OVERLAYS = ("several-services", "gateway-api")
# Namespaces the tree uses but does not create: those of the controllers installed beforehand.
PREREQUISITE_NAMESPACES = {"emissary", "metallb-system"}
# Custom kinds that are cluster-scoped (kustomize only knows the built-in ones).
CLUSTER_SCOPED_CUSTOM = {"ClusterIssuer", "GatewayClass"}


def test_root_kustomization_lists_every_folder() -> None:
    root = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = [*root.get("resources", []), *root.get("components", [])]
    assert sorted(entry.rstrip("/") for entry in listed) == sorted(FOLDERS)


@pytest.mark.parametrize("folder", ["", *FOLDERS, *OVERLAYS], ids=lambda f: f"manifests/{f}")
def test_kustomization_builds(kbuild: ModuleType, folder: str) -> None:
    path = MANIFESTS / folder
    assert (path / "kustomization.yaml").is_file(), f"manifests/{folder} has no kustomization.yaml yet"
    objects = kbuild.build(path)
    assert objects, f"manifests/{folder} builds to nothing"
    for entry in kbuild.listed_paths(path):
        assert entry.exists(), f"manifests/{folder} lists {entry.relative_to(REPO)}, which does not exist"


def _reached_files(kbuild: ModuleType, folder: Path, seen: set[Path]) -> set[Path]:
    reached: set[Path] = set()
    if folder in seen:
        return reached
    seen.add(folder)
    reached.add(kbuild.find_kustomization(folder).resolve())
    for entry in kbuild.listed_paths(folder):
        if entry.is_dir():
            reached |= _reached_files(kbuild, entry, seen)
        else:
            reached.add(entry)
    return reached


def test_no_manifest_file_is_left_out_of_the_build(kbuild: ModuleType) -> None:
    """Every YAML/JSON file under manifests/ is reached from the root kustomization or an overlay, except
    the documented examples (*.example.yaml), which users apply by hand."""
    seen: set[Path] = set()
    reached = _reached_files(kbuild, MANIFESTS.resolve(), seen)
    for overlay in OVERLAYS:
        reached |= _reached_files(kbuild, (MANIFESTS / overlay).resolve(), seen)
    candidates = {
        p.resolve()
        for p in MANIFESTS.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json") and not p.name.endswith(".example.yaml")
    }
    left_out = sorted(str(p.relative_to(MANIFESTS.resolve())) for p in candidates - reached)
    assert not left_out, f"not listed in any kustomization: {left_out}"


def test_examples_are_not_listed(kbuild: ModuleType) -> None:
    reached = _reached_files(kbuild, MANIFESTS.resolve(), set())
    examples = {p.resolve() for p in MANIFESTS.rglob("*.example.yaml")}
    assert MANIFESTS.resolve() / "bot" / "secret.example.yaml" in examples
    assert not examples & reached


def test_whole_build_has_no_duplicate_kind_namespace_name(built: list[dict[str, Any]], kbuild: ModuleType) -> None:
    ids = [kbuild.object_id(obj) for obj in built]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates
    assert len(ids) >= 20


def test_every_namespaced_object_names_its_namespace(built: list[dict[str, Any]], kbuild: ModuleType) -> None:
    """Nothing lands in whatever namespace the user's kubectl context happens to point at."""
    missing = [
        kbuild.object_id(obj)
        for obj in built
        if obj["kind"] not in kbuild.CLUSTER_SCOPED | CLUSTER_SCOPED_CUSTOM and not obj["metadata"].get("namespace")
    ]
    assert not missing
    cluster_scoped_with_namespace = [
        kbuild.object_id(obj)
        for obj in built
        if obj["kind"] in kbuild.CLUSTER_SCOPED | CLUSTER_SCOPED_CUSTOM and obj["metadata"].get("namespace")
    ]
    assert not cluster_scoped_with_namespace


def test_every_namespace_used_is_created_or_a_prerequisite(built: list[dict[str, Any]]) -> None:
    created = {obj["metadata"]["name"] for obj in built if obj["kind"] == "Namespace"}
    used = {obj["metadata"]["namespace"] for obj in built if obj["metadata"].get("namespace")}
    assert {"hello", "monitoring"} <= created
    assert used - created <= PREREQUISITE_NAMESPACES, f"namespaces nobody creates: {used - created}"


def test_the_several_services_overlay_is_the_tree_plus_the_catalogue_mounted(built: list[dict[str, Any]],
                                                                           kbuild: ModuleType) -> None:
    from bot.core import catalogue_file

    overlay = kbuild.build(MANIFESTS / "several-services")

    def key(o: dict[str, Any]) -> tuple[str, str, str]:
        return o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]

    base = {key(o): o for o in built}
    extra = {key(o): o for o in overlay}
    catalogue = extra.pop(("ConfigMap", "hello", "hello-chatops-services"))
    deployment = extra.pop(("Deployment", "hello", "hello-chatops"))
    assert extra == {k: v for k, v in base.items() if k != ("Deployment", "hello", "hello-chatops")}
    # the catalogue it mounts is a valid one
    parsed = catalogue_file.parse(yaml.safe_load(catalogue["data"]["services.yaml"]), source="services.yaml")
    assert parsed.names
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert env["HELLO_SERVICES"] == f"{mounts['catalogue']}/services.yaml"
    assert volumes["catalogue"]["configMap"]["name"] == "hello-chatops-services"
    assert env["KUBECONFIG"] == f"{mounts['kubeconfig']}/config"
    assert volumes["kubeconfig"]["secret"] == {"secretName": "hello-chatops-kubeconfig", "optional": True}
    assert env["HELLO_KUBE_IN_CLUSTER"] == "true"  # the bot's own state stays in the cluster it runs in
    # the rest of the container is the base's
    before = next(o for o in built if key(o) == ("Deployment", "hello", "hello-chatops"))
    assert container["image"] == before["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_gateway_api_overlay_routes_helloworld_through_an_httproute_the_bot_can_drive(
        built: list[dict[str, Any]], kbuild: ModuleType) -> None:
    """manifests/gateway-api/: no Emissary object; a Gateway of a GatewayClass, the HTTPRoute whose rule the
    catalogue names holds exactly the stable and canary Services (what the gateway-api router accepts), and
    cert-manager answers its challenges through that Gateway."""
    overlay = kbuild.build(MANIFESTS / "gateway-api")
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in overlay:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    assert not any(obj["apiVersion"].startswith("getambassador.io/") for obj in overlay)
    gateway = by_kind["Gateway"]["hello"]
    assert gateway["spec"]["gatewayClassName"] in by_kind["GatewayClass"]
    assert by_kind["GatewayClass"]["eg"]["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    services_yaml = by_kind["ConfigMap"]["hello-chatops-services"]["data"]["services.yaml"]
    service = catalogue_file.parse(yaml.safe_load(services_yaml), source="services.yaml").first
    config = service.config_for(service.environments[0], Config(slack_bot_token="x", slack_signing_secret="s"))
    traffic = config.traffic
    assert traffic.router == "gateway-api"
    route = by_kind["HTTPRoute"][traffic.route]
    assert all(ref["name"] == "hello" for ref in route["spec"]["parentRefs"])

    class _Api:
        namespace = route["metadata"]["namespace"]

    split = GatewayRoute(_Api(), traffic).split(route)  # type: ignore[arg-type]  # refused unless as expected
    assert {split.refs[split.stable]["name"], split.refs[split.canary]["name"]} <= set(by_kind["Service"])
    assert split.share == 0 and split.prefix == "/hello/"
    bot = by_kind["Deployment"]["hello-chatops"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HELLO_SERVICES", "value": "/etc/hello-chatops/services.yaml"} in bot["env"]
    for issuer in by_kind["ClusterIssuer"].values():
        solver = issuer["spec"]["acme"]["solvers"][0]["http01"]
        assert solver == {"gatewayHTTPRoute": {"parentRefs": [{"name": "hello", "namespace": "hello",
                                                              "kind": "Gateway"}]}}
