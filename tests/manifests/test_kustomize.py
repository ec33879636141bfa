"""The kustomize tree resolves: the root and every folder build with `kubectl kustomize` (the pinned
kubectl wheel's kustomize), nothing is left out, nothing is defined twice, every namespaced object says
where it goes."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
FOLDERS = ("helloworld", "gateway", "cert-manager", "metallb", "monitoring", "bot")
# Namespaces the tree uses but does not create: those of the controllers installed beforehand.
PREREQUISITE_NAMESPACES = {"emissary", "metallb-system"}
# Custom kinds that are cluster-scoped (kustomize only knows the built-in ones).
CLUSTER_SCOPED_CUSTOM = {"ClusterIssuer"}


def test_root_kustomization_lists_every_folder() -> None:
    root = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = [*root.get("resources", []), *root.get("components", [])]
    assert sorted(entry.rstrip("/") for entry in listed) == sorted(FOLDERS)


@pytest.mark.parametrize("folder", ["", *FOLDERS], ids=lambda f: f"manifests/{f}")
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
    """Every YAML/JSON file under manifests/ is reached from the root kustomization, except the
    documented examples (*.example.yaml), which users apply by hand."""
    reached = _reached_files(kbuild, MANIFESTS.resolve(), set())
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
