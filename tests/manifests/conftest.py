"""Shared fixtures for the manifest tests: the kustomization helpers, the built tree, CRD schemas."""

from __future__ import annotations

import copy
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from tests.crds import CRD_DIR, strict

from . import kustomization

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
# The CRD files are large: parse them with libyaml when PyYAML has it.
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="session")
def kbuild() -> ModuleType:
    """tests/manifests/kustomization.py: the tree's kustomizations, built with `kubectl kustomize`."""
    return kustomization


@pytest.fixture(scope="session")
def built(kbuild: ModuleType) -> list[dict[str, Any]]:
    """The whole tree, as `kubectl kustomize manifests/` prints it."""
    return kbuild.build(MANIFESTS)


class CrdSchemas:
    """The openAPIV3Schema of every served version of the CRDs in ../shared/crds."""

    def __init__(self, folder: Path) -> None:
        self.by_kind: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(folder.glob("*.yaml")):
            crd = yaml.load(path.read_text(), Loader=FAST_LOADER)
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            self.by_kind[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd

    def has(self, api_version: str, kind: str) -> bool:
        return (api_version.split("/")[0], kind) in self.by_kind

    def crd(self, api_version: str, kind: str) -> dict[str, Any]:
        group = api_version.split("/")[0]
        assert (group, kind) in self.by_kind, f"no CRD for {kind}.{group} in {CRD_DIR}"
        return self.by_kind[(group, kind)]

    def errors(self, doc: dict[str, Any]) -> list[str]:
        """Why ``doc`` would be refused: its version must be served, its body must match the
        version's schema (unknown fields refused), and its namespace must suit the CRD's scope."""
        crd = self.crd(doc["apiVersion"], doc["kind"])
        version = doc["apiVersion"].split("/")[1]
        served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
        if version not in served:
            return [f"{doc['apiVersion']} is not served (served: {sorted(served)})"]
        schema = strict(copy.deepcopy(served[version]["schema"]["openAPIV3Schema"]))
        validator = jsonschema.Draft4Validator(schema)
        problems = [
            f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(doc)
        ]
        namespaced = crd["spec"]["scope"] == "Namespaced"
        has_namespace = bool(doc.get("metadata", {}).get("namespace"))
        if namespaced and not has_namespace:
            problems.append(f"{doc['kind']} is namespaced: metadata.namespace must be set")
        if not namespaced and has_namespace:
            problems.append(f"{doc['kind']} is cluster-scoped: metadata.namespace must not be set")
        return problems


@pytest.fixture(scope="session")
def crd_schemas() -> CrdSchemas:
    if not CRD_DIR.is_dir():
        pytest.skip(f"schema validation of custom resources skipped: the CRDs are not beside the checkout ({CRD_DIR})")
    return CrdSchemas(CRD_DIR)
