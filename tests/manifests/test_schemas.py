"""Every manifest parses, and every object the tree builds is one the API server would accept.

Objects are checked as kustomize outputs them (each folder built on its own, so a namespace or
label set by a kustomization is taken into account), plus the example files that are not part of
the build. Core kinds are checked against the Kubernetes 1.31 OpenAPI schemas (kubernetes-validate, strict:
unknown fields are errors). Custom resources (Emissary, cert-manager, MetalLB, Prometheus
Operator, the Gateway API) are checked against the openAPIV3Schema of the served version in their CRDs, read
from ../shared/crds beside the checkout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
KUBERNETES_VERSION = "1.31"
CRD_GROUPS = frozenset({"getambassador.io", "cert-manager.io", "metallb.io", "monitoring.coreos.com",
                        "gateway.networking.k8s.io"})
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _resolver():
    from . import kustomization

    return kustomization


def kustomization_folders() -> list[Path]:
    """Every folder under manifests/ with a kustomization (the root first)."""
    return sorted({p.parent for name in KUSTOMIZATION_NAMES for p in MANIFESTS.rglob(name)})


def generator_sources() -> set[Path]:
    """Files read by ConfigMap/Secret generators: data, not Kubernetes objects."""
    sources: set[Path] = set()
    for folder in kustomization_folders():
        try:
            sources.update(_resolver().generator_paths(folder))
        except Exception:  # a broken kustomization is reported by test_kustomize
            continue
    return sources


def manifest_files() -> list[Path]:
    """Every YAML file under manifests/ that holds Kubernetes objects: not a kustomization and
    not a generator's data file."""
    sources = generator_sources()
    return sorted(
        p
        for p in MANIFESTS.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.name not in KUSTOMIZATION_NAMES and p.resolve() not in sources
    )


def top_folders() -> list[Path]:
    """The folders the root kustomization is made of (each is built and checked on its own)."""
    return [f for f in kustomization_folders() if f.parent == MANIFESTS]


def objects_to_check() -> list[tuple[str, dict[str, Any]]]:
    """(where, object) for every object each top folder builds, plus the example files (which
    users apply by hand). A folder that fails to build yields one entry carrying the error."""
    found: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()  # an overlay (several-services/) repeats the tree: each object is checked once
    for folder in top_folders():
        try:
            built = _resolver().build(folder)
        except Exception as error:
            found.append((f"{folder.name}/", {"kind": "BuildError", "error": str(error)}))
            continue
        for obj in built:
            text = json.dumps(obj, sort_keys=True)
            if text not in seen:
                seen.add(text)
                found.append((f"{folder.name}/", obj))
    for example in sorted(MANIFESTS.rglob("*.example.yaml")):
        found.extend((_id(example), doc) for doc in yaml.safe_load_all(example.read_text()) if doc)
    return found


def _id(path: Path) -> str:
    return str(path.relative_to(MANIFESTS))


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


@pytest.mark.parametrize("path", manifest_files(), ids=_id)
def test_every_manifest_file_parses_into_kubernetes_objects(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{_id(path)} holds no document"
    for doc in docs:
        assert isinstance(doc, dict), f"{_id(path)}: a document is not a mapping"
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{_id(path)}: apiVersion/kind/metadata missing"
        name = doc["metadata"].get("name", "")
        assert DNS_SUBDOMAIN.match(name) and len(name) <= 253, f"{_id(path)}: bad name {name!r}"


@pytest.mark.parametrize("path", sorted(MANIFESTS.rglob("kustomization.yaml")), ids=_id)
def test_every_kustomization_file_parses(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    assert data.get("kind", "Kustomization") in ("Kustomization", "Component")


OBJECTS = objects_to_check()
CORE = [e for e in OBJECTS if _group(e[1].get("apiVersion", "")) not in CRD_GROUPS]
CUSTOM = [e for e in OBJECTS if _group(e[1].get("apiVersion", "")) in CRD_GROUPS]


def _obj_id(entry: tuple[str, dict[str, Any]]) -> str:
    where, obj = entry
    meta = obj.get("metadata", {})
    return f"{where}{obj.get('kind')}:{meta.get('namespace', '')}/{meta.get('name', '')}"


@pytest.mark.parametrize("entry", CORE, ids=[_obj_id(e) for e in CORE])
def test_core_object_validates_against_kubernetes_1_31_strict(entry: tuple[str, dict[str, Any]]) -> None:
    _, obj = entry
    if obj["kind"] == "BuildError":
        pytest.fail(f"{_obj_id(entry)} does not build: {obj['error']}")
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(f"{obj['apiVersion']} {obj['kind']} is not a Kubernetes {KUBERNETES_VERSION} kind: {error}")
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{_obj_id(entry)}: {error.message} at {'/'.join(map(str, error.absolute_path))}")


# Kinds whose CRD may be missing from ../shared/crds (added after it was collected): their check is
# skipped, saying which upstream file to add. Any other kind without a CRD fails.
UPSTREAM_CRDS = {
    ("monitoring.coreos.com", "PrometheusRule"): "prometheus-operator/prometheus-operator "
    "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
}


@pytest.mark.parametrize("entry", CUSTOM, ids=[_obj_id(e) for e in CUSTOM])
def test_custom_resource_validates_against_its_crd(entry: tuple[str, dict[str, Any]], crd_schemas) -> None:
    api_version, kind = entry[1]["apiVersion"], entry[1]["kind"]
    upstream = UPSTREAM_CRDS.get((_group(api_version), kind))
    if upstream and not crd_schemas.has(api_version, kind):
        pytest.skip(f"{kind} schema validation skipped: its CRD is not in ../shared/crds (upstream: {upstream})")
    problems = crd_schemas.errors(entry[1])
    assert not problems, f"{_obj_id(entry)}:\n" + "\n".join(problems)


def test_crd_validation_refuses_an_unknown_field_and_a_bad_enum(crd_schemas) -> None:
    """The strict CRD check is not vacuous: a typo and an out-of-enum value are both caught."""
    listener = {
        "apiVersion": "getambassador.io/v3alpha1",
        "kind": "Listener",
        "metadata": {"name": "l", "namespace": "emissary"},
        "spec": {
            "port": 8080,
            "protocol": "HTTP",
            "securityModel": "XFP",
            "hostBinding": {"namespace": {"from": "ALL"}},
        },
    }
    assert crd_schemas.errors(listener) == []
    typo = {**listener, "spec": {**listener["spec"], "protocl": "HTTP"}}
    assert any("protocl" in p for p in crd_schemas.errors(typo))
    bad_enum = {**listener, "spec": {**listener["spec"], "securityModel": "MAYBE"}}
    assert any("MAYBE" in p for p in crd_schemas.errors(bad_enum))
    cluster_issuer_with_namespace = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "x", "namespace": "hello"},
        "spec": {"selfSigned": {}},
    }
    assert any("cluster-scoped" in p for p in crd_schemas.errors(cluster_issuer_with_namespace))


def test_kubernetes_validate_strict_refuses_an_unknown_field() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}], "selectr": {"a": "b"}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)
