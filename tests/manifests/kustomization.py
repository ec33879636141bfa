"""The kustomize tree as the tests read it: what each kustomization lists, and what `kubectl kustomize`
(the pinned kubectl wheel's kustomize) builds from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.kubectl import run_kubectl

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Built-in kinds that are cluster-scoped (kustomize never sets a namespace on these).
CLUSTER_SCOPED = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "CSIDriver", "CSINode",
    "CustomResourceDefinition", "FlowSchema", "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node",
    "PersistentVolume", "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "StorageClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
    "VolumeAttachment",
})


def find_kustomization(folder: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no kustomization.yaml in this folder")


def load_kustomization(folder: Path) -> dict[str, Any]:
    data = yaml.safe_load(find_kustomization(folder).read_text()) or {}
    assert isinstance(data, dict), f"{folder}: the kustomization is not a mapping"
    return data


def generator_paths(folder: Path) -> list[Path]:
    """The files `folder`'s ConfigMap and Secret generators read (data, not objects)."""
    data = load_kustomization(Path(folder))
    entries: list[str] = []
    for generator in (*data.get("configMapGenerator", []), *data.get("secretGenerator", [])):
        entries.extend(str(item).split("=", 1)[-1] for item in generator.get("files", []))
        entries.extend(generator.get("envs", []))
        if "env" in generator:
            entries.append(generator["env"])
    return [(Path(folder) / entry).resolve() for entry in entries]


def listed_paths(folder: Path) -> list[Path]:
    """Every file and folder `folder`'s kustomization refers to (resources, components, patch files,
    generator files)."""
    data = load_kustomization(Path(folder))
    entries = [*data.get("resources", []), *data.get("bases", []), *data.get("components", []),
               *(p["path"] for p in data.get("patches", []) if isinstance(p, dict) and "path" in p)]
    return [(Path(folder) / entry).resolve() for entry in entries] + generator_paths(folder)


def object_id(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name): what kustomize refuses to see twice in one build."""
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace", "") or "", meta.get("name", "") or ""


def build(folder: str | Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize folder` prints, in its order (the test is skipped without the kubectl wheel)."""
    out = run_kubectl("kustomize", str(folder)).stdout
    return [doc for doc in yaml.safe_load_all(out) if isinstance(doc, dict)]
