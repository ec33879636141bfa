"""OpenAPI documents of the emulated API server, and the strict field validation they announce.

Built from what the emulator knows: the built-in kinds' schemas come from the models of the official
`kubernetes` client (generated from the same Kubernetes OpenAPI), the custom kinds' from their stored
CustomResourceDefinitions (a permissive schema when none is stored). kubectl 1.37 reads `/openapi/v3`:
a PATCH operation that lists the `fieldValidation` parameter tells it the server validates fields, so it
sends `fieldValidation=Strict` and the server refuses unknown fields as a real one does; the schemas'
`x-kubernetes-patch-*` extensions drive its strategic merge patches.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from typing import Any

import kubernetes.client as k8s_models

from .kinds import CrdRegistry, Kind

GROUP_PACKAGES = {
    "": "io.k8s.api.core", "apps": "io.k8s.api.apps", "coordination.k8s.io": "io.k8s.api.coordination",
    "events.k8s.io": "io.k8s.api.events", "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "networking.k8s.io": "io.k8s.api.networking", "policy": "io.k8s.api.policy",
    "autoscaling": "io.k8s.api.autoscaling",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_META_TYPES = {"ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "ManagedFieldsEntry",
               "OwnerReference", "Condition", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
               "Preconditions", "MicroTime", "Time", "FieldsV1"}
# Python model names of kinds whose class name is not Version + Kind.
_MODEL_NAMES = {("", "Event"): "CoreV1Event", ("events.k8s.io", "Event"): "EventsV1Event"}

# Strategic merge patch metadata of the built-in types (what the API's Go structs declare); every other
# list is atomic (replaced whole), as in the real documents.
PATCH_META: dict[tuple[str, str], tuple[str, str | None]] = {
    ("PodSpec", "containers"): ("merge", "name"), ("PodSpec", "initContainers"): ("merge", "name"),
    ("PodSpec", "ephemeralContainers"): ("merge", "name"), ("PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("PodSpec", "imagePullSecrets"): ("merge", "name"), ("PodSpec", "hostAliases"): ("merge", "ip"),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name"), ("PodSpec", "schedulingGates"): ("merge", "name"),
    ("Container", "env"): ("merge", "name"), ("Container", "ports"): ("merge", "containerPort"),
    ("Container", "volumeMounts"): ("merge", "mountPath"), ("Container", "volumeDevices"): ("merge", "devicePath"),
    ("EphemeralContainer", "env"): ("merge", "name"), ("EphemeralContainer", "volumeMounts"): ("merge", "mountPath"),
    ("ObjectMeta", "finalizers"): ("merge", None), ("ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("ServiceSpec", "ports"): ("merge", "port"), ("PodStatus", "conditions"): ("merge", "type"),
    ("DeploymentStatus", "conditions"): ("merge", "type"), ("ReplicaSetStatus", "conditions"): ("merge", "type"),
    ("NodeStatus", "conditions"): ("merge", "type"), ("NodeStatus", "addresses"): ("merge", "type"),
    ("DeploymentSpec", "strategy"): ("retainKeys", None), ("PodStatus", "podIPs"): ("merge", "ip"),
}
_PRIMITIVES = {"str": {"type": "string"}, "int": {"type": "integer", "format": "int64"},
               "float": {"type": "number", "format": "double"}, "bool": {"type": "boolean"},
               "datetime": {"type": "string", "format": "date-time"}, "date": {"type": "string", "format": "date"},
               "bytes": {"type": "string", "format": "byte"}, "object": {}}
_PREFIX = re.compile(r"^(?:V\d+(?:alpha\d+|beta\d+)?|[A-Z][a-z]+V\d+(?:alpha\d+|beta\d+)?)(?=[A-Z])")


def model_class(kind: Kind) -> Any:
    name = _MODEL_NAMES.get((kind.group, kind.kind), f"{kind.version.capitalize()}{kind.kind}")
    return getattr(k8s_models, name, None)


def _short(model: str) -> str:
    return _PREFIX.sub("", model)


class _Builder:
    """Turns client models into named schemas (`components/schemas` or `definitions`)."""

    def __init__(self, ref_prefix: str) -> None:
        self.ref_prefix = ref_prefix
        self.schemas: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}

    def name_of(self, model: str, package: str) -> str:
        if model not in self.names:
            short = _short(model)
            self.names[model] = f"{META}.{short}" if short in _META_TYPES else f"{package}.{short}"
        return self.names[model]

    def type_schema(self, text: str, package: str) -> dict[str, Any]:
        text = text.strip()
        if text in _PRIMITIVES:
            return dict(_PRIMITIVES[text])
        if text.startswith("List[") and text.endswith("]"):
            return {"type": "array", "items": self.type_schema(text[5:-1], package)}
        if text.startswith("Dict[") and text.endswith("]"):
            return {"type": "object", "additionalProperties": self.type_schema(text[5:-1].split(",", 1)[1], package)}
        return {"$ref": self.ref_prefix + self.model(text, package)}

    def model(self, model: str, package: str) -> str:
        name = self.name_of(model, package)
        if name in self.schemas:
            return name
        cls = getattr(k8s_models, model, None)
        self.schemas[name] = schema = {"type": "object"}
        if cls is None or not isinstance(getattr(cls, "openapi_types", None), dict):
            schema["x-kubernetes-preserve-unknown-fields"] = True
            return name
        short = _short(model)
        properties: dict[str, Any] = {}
        for attr, type_text in cls.openapi_types.items():
            field = cls.attribute_map[attr]
            prop = self.type_schema(type_text, package)
            meta = PATCH_META.get((short, field))
            if meta is not None:
                prop["x-kubernetes-patch-strategy"] = meta[0]
                if meta[1]:
                    prop["x-kubernetes-patch-merge-key"] = meta[1]
            properties[field] = prop
        schema["properties"] = properties
        return name


def _gvk(kind: Kind) -> dict[str, str]:
    return {"group": kind.group, "version": kind.version, "kind": kind.kind}


def _custom_schema(kind: Kind, crds: CrdRegistry, meta_ref: str) -> dict[str, Any]:
    version = crds.version(kind)
    schema = json.loads(json.dumps(((version or {}).get("schema") or {}).get("openAPIV3Schema") or {}))
    if not schema:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    props = schema.setdefault("properties", {}) if not schema.get("x-kubernetes-preserve-unknown-fields") else None
    if props is not None:
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"$ref": meta_ref}
    return schema


def _base_path(kind: Kind) -> str:
    return f"/api/{kind.version}" if kind.group == "" else f"/apis/{kind.group}/{kind.version}"


_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def group_version_document(group: str, version: str, kinds_served: list[Kind], crds: CrdRegistry, *,
                           v3: bool) -> dict[str, Any]:
    """The OpenAPI document (v3: 3.0 with components; v2: swagger 2.0 with definitions) of one group-version."""
    ref_prefix = "#/components/schemas/" if v3 else "#/definitions/"
    builder = _Builder(ref_prefix)
    meta_ref = ref_prefix + builder.model("V1ObjectMeta", META)
    paths: dict[str, Any] = {}
    for kind in kinds_served:
        if kind.group != group or kind.version != version:
            continue
        package = f"{GROUP_PACKAGES.get(kind.group, kind.group)}.{kind.version}"
        cls = model_class(kind) if kind.builtin else None
        if cls is not None:
            name = builder.model(cls.__name__, package)
        else:
            name = f"{'.'.join(reversed(kind.group.split('.')))}.{kind.version}.{kind.kind}"
            builder.schemas[name] = _custom_schema(kind, crds, meta_ref)
        builder.schemas[name]["x-kubernetes-group-version-kind"] = [_gvk(kind)]
        ref = {"$ref": ref_prefix + name}
        patch_types = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        if kind.builtin:
            patch_types.insert(2, "application/strategic-merge-patch+json")
        scope = "/namespaces/{namespace}" if kind.namespaced else ""
        collection = f"{_base_path(kind)}{scope}/{kind.resource}"
        op_name = f"{kind.kind}"
        params: list[dict[str, Any]] = [
            {"name": q, "in": "query", "uniqueItems": True,
             **({"schema": {"type": "string"}} if v3 else {"type": "string"})}
            for q in _QUERY]

        def operation(action: str, body: bool, op_name: str = op_name, params: list[Any] = params,
                      ref: dict[str, Any] = ref, kind: Kind = kind,
                      patch_types: list[str] = patch_types) -> dict[str, Any]:
            op: dict[str, Any] = {"operationId": f"{action}{op_name}", "x-kubernetes-action": action,
                                  "x-kubernetes-group-version-kind": _gvk(kind),
                                  "parameters": params if body else [], "responses": {"200": {
                                      "description": "OK", **({"content": {"application/json": {"schema": ref}}}
                                                              if v3 else {"schema": ref})}}}
            if body:
                types = patch_types if action == "patch" else ["application/json", "application/yaml"]
                if v3:
                    op["requestBody"] = {"content": {t: {"schema": ref if action != "patch" else {"type": "object"}}
                                                     for t in types}, "required": True}
                else:
                    op["consumes"] = types
                    op["parameters"] = [*params, {"name": "body", "in": "body", "required": True,
                                                  "schema": ref if action != "patch" else {"type": "object"}}]
            return op

        paths[collection] = {"get": operation("list", False), "post": operation("create", True)}
        paths[collection + "/{name}"] = {"get": operation("read", False), "put": operation("replace", True),
                                         "patch": operation("patch", True), "delete": operation("delete", False)}
    if v3:
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"}, "paths": paths,
                "components": {"schemas": builder.schemas}}
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.0"}, "paths": paths,
            "definitions": builder.schemas}


def group_versions(kinds_served: list[Kind]) -> list[tuple[str, str]]:
    return sorted({(k.group, k.version) for k in kinds_served})


def v3_path(group: str, version: str) -> str:
    return f"api/{version}" if group == "" else f"apis/{group}/{version}"


def v3_index(kinds_served: list[Kind], crds: CrdRegistry) -> dict[str, Any]:
    """`/openapi/v3`: where each group-version's document is, with a hash of its content."""
    paths = {}
    for group, version in group_versions(kinds_served):
        body = json.dumps(group_version_document(group, version, kinds_served, crds, v3=True), sort_keys=True)
        digest = hashlib.sha512(body.encode()).hexdigest()[:64].upper()
        paths[v3_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{v3_path(group, version)}?hash={digest}"}
    return {"paths": paths}


def v2_document(kinds_served: list[Kind], crds: CrdRegistry) -> dict[str, Any]:
    """`/openapi/v2`: one swagger 2.0 document for every kind."""
    merged: dict[str, Any] = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
                              "paths": {}, "definitions": {}}
    for group, version in group_versions(kinds_served):
        doc = group_version_document(group, version, kinds_served, crds, v3=False)
        merged["paths"].update(doc["paths"])
        merged["definitions"].update(doc["definitions"])
    return merged


# --- strict field validation ------------------------------------------------------------------------


@cache
def _builtin_schemas(kind: Kind) -> tuple[str, dict[str, Any]] | None:
    cls = model_class(kind)
    if cls is None:
        return None
    builder = _Builder("#/")
    package = f"{GROUP_PACKAGES.get(kind.group, kind.group)}.{kind.version}"
    return builder.model(cls.__name__, package), builder.schemas


@cache
def _meta_schemas() -> dict[str, Any]:
    """ObjectMeta and what it refers to: the metadata of every custom resource."""
    builder = _Builder("#/")
    builder.model("V1ObjectMeta", META)
    return builder.schemas


def unknown_fields(kind: Kind, obj: dict[str, Any], crds: CrdRegistry) -> list[str]:
    """Paths of the fields in `obj` its kind's schema does not declare (`spec.template.spec.containers[0].x`)."""
    if kind.builtin:
        found = _builtin_schemas(kind)
        if found is None:
            return []
        root, schemas = found
        schema = schemas[root]
    else:
        schemas = _meta_schemas()
        schema = _custom_schema(kind, crds, "#/" + f"{META}.ObjectMeta")
    out: list[str] = []
    _walk(schema, obj, "", schemas, out)
    return out


def _walk(schema: dict[str, Any], value: Any, path: str, schemas: dict[str, Any], out: list[str]) -> None:
    while "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            for key, item in value.items():
                sub = f"{path}.{key}" if path else key
                if key in props:
                    _walk(props[key], item, sub, schemas, out)
                elif isinstance(schema.get("additionalProperties"), dict):
                    _walk(schema["additionalProperties"], item, sub, schemas, out)
                elif not schema.get("x-kubernetes-preserve-unknown-fields") and not key.startswith("$") and \
                        schema.get("additionalProperties") is not True:
                    out.append(sub)
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, item in value.items():
                _walk(schema["additionalProperties"], item, f"{path}.{key}" if path else key, schemas, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(schema["items"], item, f"{path}[{i}]", schemas, out)
