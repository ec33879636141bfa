#!/usr/bin/env python3
"""Build a kustomize tree without kubectl: print the resources `kubectl kustomize DIR` would.

Usage::

    python scripts/kustomize-build.py manifests/          # multi-document YAML on stdout
    python scripts/kustomize-build.py --ids manifests/    # one "kind namespace/name" per line

It covers the part of kustomize this project's manifests use, with kustomize's semantics:

- ``resources`` (files and folders) and the older ``bases``; ``components`` (``kind: Component``);
- ``namespace`` (set on every namespaced object, Namespace objects renamed to it, ServiceAccount
  subjects of role bindings following as kustomize has them);
- ``configMapGenerator`` and ``secretGenerator`` (``files``, ``literals``, ``envs``, ``options``,
  ``generatorOptions``), including kustomize's content-hash name suffix and the rewriting of
  references to generated names in Pod templates;
- ``images`` (``newName``, ``newTag``, ``digest``);
- ``labels``, ``commonLabels`` and ``commonAnnotations``.

Anything else in a kustomization (patches, replacements, Helm charts, ...) is refused with an
error rather than ignored, so a build never silently differs from kustomize's. Errors that
kustomize reports are reported too: a missing resource, a folder without a kustomization, and
two objects with the same kind, namespace and name.

From Python (the file name has a dash, so load it by path)::

    spec = importlib.util.spec_from_file_location("kustomize_build", "scripts/kustomize-build.py")
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    objects = module.build("manifests")          # list of dicts, in kustomize's output order
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

SUPPORTED_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "resources",
        "bases",
        "components",
        "namespace",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
        "images",
        "labels",
        "commonLabels",
        "commonAnnotations",
    }
)

# Kinds kustomize knows to be cluster-scoped (it never sets a namespace on these).
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ComponentStatus",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "SelfSubjectAccessReview",
        "SelfSubjectRulesReview",
        "StorageClass",
        "SubjectAccessReview",
        "TokenReview",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)

# kustomize's default ("legacy") output order: these kinds first, in this order, ...
ORDER_FIRST = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
# ... these last, and everything else in between.
ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"})

HASH_MARK = "kustomize-build.py/needs-hash"


class KustomizeError(Exception):
    """The tree cannot be built; the message says which file and why."""


def find_kustomization(folder: Path) -> Path:
    """The kustomization file of ``folder``; raises :class:`KustomizeError` when there is none."""
    for name in KUSTOMIZATION_FILES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise KustomizeError(f"{folder}: no kustomization.yaml in this folder")


def load_kustomization(folder: Path) -> dict[str, Any]:
    """Parse ``folder``'s kustomization and refuse keys this resolver does not implement."""
    path = find_kustomization(folder)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise KustomizeError(f"{path}: not a mapping")
    unknown = sorted(set(data) - SUPPORTED_KEYS)
    if unknown:
        raise KustomizeError(f"{path}: unsupported kustomization fields {unknown}")
    return data


def listed_paths(folder: Path) -> list[Path]:
    """Every file and folder ``folder``'s kustomization refers to (resources, bases, components,
    generator files and env files), resolved against ``folder``."""
    data = load_kustomization(Path(folder))
    entries: list[str] = [*data.get("resources", []), *data.get("bases", []), *data.get("components", [])]
    return [(Path(folder) / entry).resolve() for entry in entries] + generator_paths(folder)


def generator_paths(folder: Path) -> list[Path]:
    """The files ``folder``'s ConfigMap and Secret generators read (data, not objects)."""
    data = load_kustomization(Path(folder))
    entries: list[str] = []
    for generator in (*data.get("configMapGenerator", []), *data.get("secretGenerator", [])):
        entries.extend(_source_path(item) for item in generator.get("files", []))
        entries.extend(generator.get("envs", []))
        if "env" in generator:
            entries.append(generator["env"])
    return [(Path(folder) / entry).resolve() for entry in entries]


def object_id(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name): what kustomize refuses to see twice in one build."""
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace", "") or "", meta.get("name", "") or ""


def build(folder: str | Path) -> list[dict[str, Any]]:
    """The objects the kustomization in ``folder`` produces, in kustomize's output order."""
    objects = _build(Path(folder).resolve(), stack=())
    _apply_hash_suffixes(objects)
    _check_unique(objects, Path(folder))
    return sorted(objects, key=_order_key)


def dump(objects: Iterable[dict[str, Any]]) -> str:
    """Multi-document YAML, as `kubectl kustomize` prints it."""
    return yaml.safe_dump_all(list(objects), sort_keys=True, default_flow_style=False)


# --- building -------------------------------------------------------------------------------


def _build(
    folder: Path, stack: tuple[Path, ...], inherited: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Accumulate like kustomize: resources, then components, then generators, then this
    kustomization's transformers over all of it. A Component receives the objects its parent
    accumulated so far (``inherited``) and transforms them too."""
    if folder in stack:
        raise KustomizeError(f"{folder}: cycle through {' -> '.join(map(str, stack))}")
    data = load_kustomization(folder)
    if data.get("kind", "Kustomization") == "Component" and inherited is None:
        raise KustomizeError(f"{folder}: a Component must be listed under components, not built alone")
    objects: list[dict[str, Any]] = list(inherited or [])
    for entry in [*data.get("resources", []), *data.get("bases", [])]:
        objects.extend(_load_entry(folder, entry, (*stack, folder)))
        _check_unique(objects, folder)
    for entry in data.get("components", []):
        path = (folder / entry).resolve()
        if load_kustomization(path).get("kind") != "Component":
            raise KustomizeError(f"{path}: listed under components but is not kind: Component")
        objects = _build(path, (*stack, folder), objects)
    options = data.get("generatorOptions") or {}
    for generator in data.get("configMapGenerator", []):
        objects.append(_generate(folder, generator, options, "ConfigMap"))
    for generator in data.get("secretGenerator", []):
        objects.append(_generate(folder, generator, options, "Secret"))
    _check_unique(objects, folder)
    _transform(objects, data)
    return objects


def _load_entry(folder: Path, entry: str, stack: tuple[Path, ...]) -> list[dict[str, Any]]:
    if "://" in entry or entry.startswith("github.com/"):
        raise KustomizeError(f"{folder}: remote resource {entry!r} is not supported")
    path = (folder / entry).resolve()
    if path.is_dir():
        return _build(path, stack)
    if not path.is_file():
        raise KustomizeError(f"{folder}: resource {entry!r} does not exist")
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    objects: list[dict[str, Any]] = []
    for doc in documents:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: every document must be an object with apiVersion and kind")
        if doc["kind"].endswith("List") and "items" in doc:
            objects.extend(doc["items"])
        else:
            objects.append(doc)
    return objects


def _source_path(item: str) -> str:
    return item.split("=", 1)[1] if "=" in item else item


def _generate(folder: Path, spec: dict[str, Any], global_options: dict[str, Any], kind: str) -> dict[str, Any]:
    if spec.get("behavior", "create") != "create":
        raise KustomizeError(f"{folder}: generator behavior {spec['behavior']!r} is not supported")
    if "name" not in spec:
        raise KustomizeError(f"{folder}: a {kind} generator needs a name")
    data: dict[str, str] = {}
    for env_file in [*spec.get("envs", []), *([spec["env"]] if "env" in spec else [])]:
        for line in (folder / env_file).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                data[key.strip()] = value
    for literal in spec.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise KustomizeError(f"{folder}: literal {literal!r} is not KEY=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        data[key] = value
    for item in spec.get("files", []):
        key, sep, source = item.partition("=")
        if not sep:
            key, source = Path(item).name, item
        path = folder / source
        if not path.is_file():
            raise KustomizeError(f"{folder}: generator file {source!r} does not exist")
        data[key] = path.read_text()
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}
    if "namespace" in spec:
        obj["metadata"]["namespace"] = spec["namespace"]
    if kind == "Secret":
        obj["type"] = spec.get("type", "Opaque")
        if data:
            obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    elif data:
        obj["data"] = data
    options = {**global_options, **(spec.get("options") or {})}
    for field in ("labels", "annotations"):
        merged = {**(global_options.get(field) or {}), **((spec.get("options") or {}).get(field) or {})}
        if merged:
            obj["metadata"][field] = merged
    if not options.get("disableNameSuffixHash", False):
        obj["metadata"].setdefault("annotations", {})[HASH_MARK] = spec["name"]
    return obj


# --- transformers ---------------------------------------------------------------------------


def _transform(objects: list[dict[str, Any]], data: dict[str, Any]) -> None:
    namespace = data.get("namespace")
    if namespace:
        service_accounts = {
            (o["metadata"]["name"], o["metadata"].get("namespace", "") or "")
            for o in objects
            if o.get("kind") == "ServiceAccount"
        }
        for obj in objects:
            _set_namespace(obj, namespace, service_accounts)
    for image in data.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                _set_image(container, image)
    for entry in data.get("labels", []):
        pairs = entry.get("pairs") or {}
        for obj in objects:
            _add_labels(
                obj,
                pairs,
                selectors=entry.get("includeSelectors", False),
                templates=entry.get("includeTemplates", False) or entry.get("includeSelectors", False),
            )
    if data.get("commonLabels"):
        for obj in objects:
            _add_labels(obj, data["commonLabels"], selectors=True, templates=True)
    if data.get("commonAnnotations"):
        for obj in objects:
            meta = obj.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), **data["commonAnnotations"]}
            template = _pod_template(obj)
            if template is not None:
                tmeta = template.setdefault("metadata", {})
                tmeta["annotations"] = {**(tmeta.get("annotations") or {}), **data["commonAnnotations"]}


def _set_namespace(obj: dict[str, Any], namespace: str, service_accounts: set[tuple[str, str]]) -> None:
    """Set ``namespace`` like kustomize's namespace transformer. ServiceAccount subjects of role
    bindings follow when they name a ServiceAccount of this build (as it was before the change)
    or the namespace's ``default`` ServiceAccount."""
    kind = obj.get("kind", "")
    if kind == "Namespace":
        # kustomize renames Namespace objects to the namespace it sets.
        obj.setdefault("metadata", {})["name"] = namespace
    elif kind not in CLUSTER_SCOPED:
        obj.setdefault("metadata", {})["namespace"] = namespace
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        for subject in obj.get("subjects") or []:
            if subject.get("kind") != "ServiceAccount":
                continue
            key = (subject.get("name", ""), subject.get("namespace", "") or "")
            if key[0] == "default" or key in service_accounts:
                subject["namespace"] = namespace


def _pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    if kind == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template")
    if kind in WORKLOADS - {"Pod"}:
        return obj.get("spec", {}).get("template")
    return None


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    template = _pod_template(obj)
    return None if template is None else template.get("spec")


def _containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = _pod_spec(obj) or {}
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def _split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference; a port in the registry is not a tag."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def _set_image(container: dict[str, Any], image: dict[str, Any]) -> None:
    name, tag, digest = _split_image(container.get("image", ""))
    if name != image.get("name"):
        return
    name = image.get("newName", name)
    if "digest" in image:
        container["image"] = f"{name}@{image['digest']}"
        return
    if "newTag" in image:
        tag, digest = str(image["newTag"]), ""
    reference = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    container["image"] = reference


def _add_labels(obj: dict[str, Any], pairs: dict[str, str], *, selectors: bool, templates: bool) -> None:
    if not pairs:
        return
    meta = obj.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **pairs}
    kind = obj.get("kind")
    if templates:
        template = _pod_template(obj)
        if template is not None:
            tmeta = template.setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **pairs}
    if selectors:
        spec = obj.setdefault("spec", {}) if kind in WORKLOADS | {"Service"} else None
        if kind == "Service":
            spec["selector"] = {**(spec.get("selector") or {}), **pairs}
        elif kind in WORKLOADS - {"Pod", "CronJob", "Job"}:
            selector = spec.setdefault("selector", {})
            selector["matchLabels"] = {**(selector.get("matchLabels") or {}), **pairs}


# --- generated names ------------------------------------------------------------------------


def content_hash(obj: dict[str, Any]) -> str:
    """kustomize's name suffix for a generated ConfigMap or Secret.

    kustomize (v5) hashes the Go JSON encoding (sorted keys, no spaces, ``&<>`` escaped) of
    ``kind``, ``data`` (``""`` when absent), ``binaryData`` or ``stringData`` when present, a
    Secret's ``type``, and ``name``, which its field lookup always finds empty, so the suffix
    depends on the content only. The first ten hex digits of the SHA-256 are kept, with
    0 1 3 a e spelled g h k m t so the suffix never looks like a number or a word.
    """
    fields: dict[str, Any] = {"kind": obj["kind"], "name": "", "data": obj.get("data") or ""}
    if obj["kind"] == "ConfigMap":
        if isinstance(obj.get("binaryData"), dict):
            fields["binaryData"] = obj["binaryData"]
    else:
        fields["type"] = obj.get("type", "")
        if isinstance(obj.get("stringData"), dict):
            fields["stringData"] = obj["stringData"]
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's encoding/json escapes these; the hash is taken over Go's bytes.
    for char, escape in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_hash_suffixes(objects: list[dict[str, Any]]) -> None:
    renamed: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if HASH_MARK not in annotations:
            continue
        del annotations[HASH_MARK]
        if not annotations:
            del obj["metadata"]["annotations"]
        old = obj["metadata"]["name"]
        new = f"{old}-{content_hash(obj)}"
        obj["metadata"]["name"] = new
        renamed[(obj["kind"], obj["metadata"].get("namespace", ""), old)] = new
    if not renamed:
        return
    for obj in objects:
        spec = _pod_spec(obj)
        if spec is not None:
            _rename_references(spec, obj.get("metadata", {}).get("namespace", ""), renamed)


def _rename_references(spec: dict[str, Any], namespace: str, renamed: dict[tuple[str, str, str], str]) -> None:
    def fix(kind: str, holder: dict[str, Any] | None, key: str = "name") -> None:
        if holder and (kind, namespace, holder.get(key)) in renamed:
            holder[key] = renamed[(kind, namespace, holder[key])]

    for volume in spec.get("volumes") or []:
        fix("ConfigMap", volume.get("configMap"))
        fix("Secret", volume.get("secret"), "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            fix("ConfigMap", source.get("configMap"))
            fix("Secret", source.get("secret"))
    for secret in spec.get("imagePullSecrets") or []:
        fix("Secret", secret)
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            for source in container.get("envFrom") or []:
                fix("ConfigMap", source.get("configMapRef"))
                fix("Secret", source.get("secretRef"))
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                fix("ConfigMap", value_from.get("configMapKeyRef"))
                fix("Secret", value_from.get("secretKeyRef"))


# --- checks and order -----------------------------------------------------------------------


def _check_unique(objects: list[dict[str, Any]], where: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            kind, namespace, name = key
            raise KustomizeError(f"{where}: {kind} {namespace + '/' if namespace else ''}{name} is defined twice")
        seen.add(key)


def _order_key(obj: dict[str, Any]) -> tuple[int, str, str, str, str]:
    kind = obj.get("kind", "")
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    _, namespace, name = object_id(obj)
    return rank, obj.get("apiVersion", ""), kind, namespace, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder holding a kustomization.yaml")
    parser.add_argument("--ids", action="store_true", help="print 'kind namespace/name' per object")
    args = parser.parse_args(argv)
    try:
        objects = build(args.folder)
    except KustomizeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.ids:
        for obj in objects:
            kind, namespace, name = object_id(obj)
            print(f"{kind} {namespace + '/' if namespace else ''}{name}")
    else:
        sys.stdout.write(dump(copy.deepcopy(objects)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
