"""manifests/helloworld, offline: Kubernetes schemas (kubernetes-validate), the Emissary Mapping CRD
schema (jsonschema) and the facts the release flow relies on."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.crds import CRD_DIR, strict

from .conftest import PROJECT_ROOT

MANIFESTS = PROJECT_ROOT / "manifests" / "helloworld"
CRDS = CRD_DIR
KUBERNETES_VERSION = "1.31"
DRAIN_SECONDS = 10
PRESTOP_SECONDS = 5


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _find(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    files = {p.name for p in MANIFESTS.iterdir() if p.is_file()} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert len(kustomization["resources"]) == len(set(kustomization["resources"]))


def test_all_objects_are_in_namespace_hello() -> None:
    docs = _documents()
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("Namespace", "hello"),
        ("Deployment", "helloworld"),
        ("Deployment", "helloworld-canary"),
        ("Service", "helloworld"),
        ("Service", "helloworld-canary"),
        ("Mapping", "helloworld"),
        ("Mapping", "helloworld-canary"),
    }
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "hello", doc["metadata"]["name"]


@pytest.mark.parametrize("index", range(5))
def test_core_objects_validate_strictly(index: int) -> None:
    core = [d for d in _documents() if not d["apiVersion"].startswith("getambassador.io/")]
    assert len(core) == 5
    kubernetes_validate.validate(core[index], KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = copy.deepcopy(_find("Deployment", "helloworld"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("name", "track", "replicas"), [("helloworld", "stable", 2), ("helloworld-canary", "canary", 0)]
)
def test_deployment_shape(name: str, track: str, replicas: int) -> None:
    deployment = _find("Deployment", name)
    labels = {"app": "helloworld", "track": track}
    spec = deployment["spec"]
    assert deployment["metadata"]["labels"] == labels
    assert spec["selector"]["matchLabels"] == labels
    assert spec["template"]["metadata"]["labels"] == labels
    assert spec["replicas"] == replicas
    assert spec["progressDeadlineSeconds"] == 120
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert spec["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > PRESTOP_SECONDS + DRAIN_SECONDS
    [container] = pod["containers"]
    assert container["name"] == "helloworld"
    assert container["image"] == "helloworld:v1"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HELLO_VERSION"] == "v1"
    assert float(env["HELLO_DRAIN_SECONDS"]) == DRAIN_SECONDS
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == PRESTOP_SECONDS
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The multiprocess metrics directory is a writable emptyDir.
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == env["PROMETHEUS_MULTIPROC_DIR"]]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume


def test_canary_has_the_same_pod_shape_as_stable() -> None:
    stable = _find("Deployment", "helloworld")["spec"]["template"]["spec"]
    canary = _find("Deployment", "helloworld-canary")["spec"]["template"]["spec"]
    assert stable == canary


@pytest.mark.parametrize(("name", "track"), [("helloworld", "stable"), ("helloworld-canary", "canary")])
def test_service_selects_its_track(name: str, track: str) -> None:
    service = _find("Service", name)
    assert service["spec"]["selector"] == {"app": "helloworld", "track": track}
    [port] = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (80, 8080)


def test_mappings_share_prefix_and_hostname_and_only_the_canary_has_a_weight() -> None:
    stable = _find("Mapping", "helloworld")
    canary = _find("Mapping", "helloworld-canary")
    for mapping in (stable, canary):
        assert mapping["apiVersion"] == "getambassador.io/v3alpha1"
        assert mapping["spec"]["prefix"] == "/hello/"
        assert mapping["spec"]["rewrite"] == "/"
        assert mapping["spec"]["hostname"] == "hello.example.com"
    assert stable["spec"]["service"] == "helloworld:80"
    assert "weight" not in stable["spec"]
    assert canary["spec"]["service"] == "helloworld-canary:80"
    assert canary["spec"]["weight"] == 0


@pytest.fixture(scope="module")
def mapping_schema() -> dict[str, Any]:
    crd_file = CRDS / "getambassador.io_mappings.yaml"
    if not crd_file.is_file():
        pytest.skip(
            f"Mapping schema validation skipped: the CRDs are not beside the checkout ({CRDS} is missing)"
        )
    crd = yaml.safe_load(crd_file.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v3alpha1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    # metadata is the API server's ObjectMeta; the CRD only says "object".
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


@pytest.mark.parametrize("name", ["helloworld", "helloworld-canary"])
def test_mapping_matches_the_emissary_crd(mapping_schema: dict[str, Any], name: str) -> None:
    jsonschema.Draft7Validator(mapping_schema).validate(_find("Mapping", name))


def test_mapping_schema_refuses_a_wrong_weight(mapping_schema: dict[str, Any]) -> None:
    mapping = copy.deepcopy(_find("Mapping", "helloworld-canary"))
    mapping["spec"]["weight"] = "ten"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(mapping_schema).validate(mapping)
    mapping["spec"]["weight"] = 0
    mapping["spec"]["prefixx"] = "/hello/"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(mapping_schema).validate(mapping)
