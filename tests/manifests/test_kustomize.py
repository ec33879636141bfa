"""The kustomize tree resolves: the root and every folder build, nothing is left out, nothing is
defined twice, every namespaced object says where it goes. Also: the resolver used for all this
(scripts/kustomize-build.py) behaves like kustomize, checked against `kubectl kustomize` where
kubectl is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
# Custom kinds that are cluster-scoped (the resolver only knows the built-in ones).
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


# --- the resolver itself -----------------------------------------------------------------------


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.local:5000/web:1.0
          envFrom: [{configMapRef: {name: settings}}]
          env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}]
      volumes: [{name: conf, configMap: {name: files}}]
"""

GENERATORS = """\
namespace: demo
resources: [deployment.yaml, base]
configMapGenerator:
  - name: settings
    literals: ["MODE=<fast> & 'safe'", "QUOTED='x'"]
  - name: files
    files: [conf.yaml, renamed=conf.yaml]
  - name: plain
    envs: [vars.env]
    options: {disableNameSuffixHash: true}
secretGenerator:
  - name: creds
    literals: [token=s3cr&t]
images:
  - name: registry.local:5000/web
    newTag: "2.0"
labels:
  - pairs: {team: platform}
"""

BASE = {
    "base/kustomization.yaml": "resources: [sa.yaml]\n",
    "base/sa.yaml": (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot}\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bot}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: bot}\n"
        "subjects: [{kind: ServiceAccount, name: bot}, {kind: ServiceAccount, name: other, namespace: x}]\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: placeholder}\n"
    ),
}


def _generator_tree(folder: Path) -> Path:
    return _write(
        folder,
        {
            "kustomization.yaml": GENERATORS,
            "deployment.yaml": DEPLOYMENT,
            "conf.yaml": "a: <b> & ü\n",
            "vars.env": "# comment\nX=1\nY=two\n",
            **BASE,
        },
    )


def test_resolver_generates_hashed_names_and_rewrites_references(kbuild: ModuleType, tmp_path: Path) -> None:
    objects = kbuild.build(_generator_tree(tmp_path))
    by_kind = {(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0]): o for o in objects}
    settings = by_kind[("ConfigMap", "settings")]
    assert settings["metadata"]["name"] == f"settings-{kbuild.content_hash(settings)}"
    assert settings["data"] == {"MODE": "<fast> & 'safe'", "QUOTED": "x"}
    assert any(o["metadata"]["name"] == "plain" for o in objects)
    deployment = by_kind[("Deployment", "web")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["envFrom"][0]["configMapRef"]["name"] == settings["metadata"]["name"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["name"].startswith("creds-")
    assert pod["volumes"][0]["configMap"]["name"].startswith("files-")
    assert container["image"] == "registry.local:5000/web:2.0"
    assert all(o["metadata"]["labels"]["team"] == "platform" for o in objects)
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"demo"}
    assert by_kind[("Namespace", "demo")]["metadata"]["name"] == "demo"
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "bot", "namespace": "demo"},
        {"kind": "ServiceAccount", "name": "other", "namespace": "x"},
    ]


def test_content_hash_depends_on_content_only(kbuild: ModuleType) -> None:
    one = {"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    renamed = {"kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"k": "v"}}
    changed = {"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}}
    assert kbuild.content_hash(one) == kbuild.content_hash(renamed) != kbuild.content_hash(changed)
    assert len(kbuild.content_hash(one)) == 10
    assert not set(kbuild.content_hash(one)) & set("013ae")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"kustomization.yaml": "resources: [missing.yaml]\n"}, "does not exist"),
        ({"kustomization.yaml": "resources: [sub]\n", "sub/a.yaml": "kind: X\n"}, "no kustomization"),
        ({"kustomization.yaml": "patches: []\n"}, "unsupported kustomization fields ['patches']"),
        ({"kustomization.yaml": "configMapGenerator: [{name: c, behavior: merge}]\n"}, "behavior"),
        (
            {
                "kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
                "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same, namespace: n}\n",
                "b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same, namespace: n}\n",
            },
            "defined twice",
        ),
        (
            {"kustomization.yaml": "resources: [c]\n", "c/kustomization.yaml": "kind: Component\n"},
            "must be listed under components",
        ),
    ],
    ids=["missing-resource", "folder-without-kustomization", "unsupported-field", "merge", "duplicate", "component"],
)
def test_resolver_refuses_what_kustomize_refuses_or_it_cannot_do(
    kbuild: ModuleType, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(kbuild.KustomizeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        kbuild.build(_write(tmp_path, files))


def test_resolver_applies_a_component_to_what_its_parent_gathered(kbuild: ModuleType, tmp_path: Path) -> None:
    objects = kbuild.build(
        _write(
            tmp_path,
            {
                "kustomization.yaml": "resources: [cm.yaml]\ncomponents: [extra]\n",
                "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
                "extra/kustomization.yaml": (
                    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                    "resources: [more.yaml]\ncommonAnnotations: {owner: extra}\n"
                ),
                "extra/more.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: more}\n",
            },
        )
    )
    assert {o["metadata"]["name"]: o["metadata"]["annotations"] for o in objects} == {
        "base": {"owner": "extra"},
        "more": {"owner": "extra"},
    }


def test_resolver_command_line_lists_ids(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        {
            "kustomization.yaml": "namespace: n\nresources: [cm.yaml]\n",
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        },
    )
    script = REPO / "scripts" / "kustomize-build.py"
    listed = subprocess.run(
        [sys.executable, str(script), "--ids", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert listed.stdout.splitlines() == ["ConfigMap n/c"]
    broken = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 1 and "no kustomization" in broken.stderr


# --- against the real kustomize -------------------------------------------------------------


def _kubectl_kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl not installed: the resolver was not compared with kustomize "
            "(Debian bookworm has no kustomize package, and its kubectl 1.20 is too old)"
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def _by_id(kbuild: ModuleType, objects: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {kbuild.object_id(obj): obj for obj in objects}


def test_kubectl_kustomize_builds_the_same_generated_objects_as_the_resolver_if_kubectl_installed(
    kbuild: ModuleType, tmp_path: Path
) -> None:
    folder = _generator_tree(tmp_path)
    expected = _kubectl_kustomize(folder)
    assert _by_id(kbuild, kbuild.build(folder)) == _by_id(kbuild, expected)


def test_kubectl_kustomize_builds_the_same_manifests_tree_as_the_resolver_if_kubectl_installed(
    kbuild: ModuleType, built: list[dict[str, Any]]
) -> None:
    expected = _kubectl_kustomize(MANIFESTS)
    assert _by_id(kbuild, built) == _by_id(kbuild, expected)
    assert [obj["kind"] for obj in built][:1] == [obj["kind"] for obj in expected][:1] == ["Namespace"]
