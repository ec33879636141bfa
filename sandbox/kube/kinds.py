"""The kinds the emulated API server knows: names, scope, subresources, defaults and validation.

Any other resource is still accepted and stored (namespaced or cluster-scoped as its URL says), so that
manifests with kinds the emulator has no behaviour for can be seeded.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One resource type of the API."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a /status subresource
    scale: bool = False  # has a /scale subresource
    builtin: bool = True  # built-in kinds accept strategic merge patch; custom resources do not
    short_names: tuple[str, ...] = ()  # discovery `shortNames` (`deploy`, `po`, ...)
    categories: tuple[str, ...] = ()  # discovery `categories` (`all`, ...)
    # A custom kind's additionalPrinterColumns as its upstream CRD declares them (name, type, jsonPath,
    # priority), used until a CRD for it is stored.
    columns: tuple[tuple[str, str, str, int], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps` style name used in error messages."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def qualified_kind(self) -> str:
        """`Deployment.apps` style name used in validation messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_ALL = ("all",)
_AGE = ("Age", "date", ".metadata.creationTimestamp", 0)
_READY = '.status.conditions[?(@.type == "Ready")]'
_MAPPING_COLUMNS = (("Source Host", "string", ".spec.host", 0), ("Source Prefix", "string", ".spec.prefix", 0),
                    ("Dest Service", "string", ".spec.service", 0), ("State", "string", ".status.state", 0),
                    ("Reason", "string", ".status.reason", 0))
_HOST_COLUMNS = (("Hostname", "string", ".spec.hostname", 0), ("State", "string", ".status.state", 0),
                 ("Phase Completed", "string", ".status.phaseCompleted", 0),
                 ("Phase Pending", "string", ".status.phasePending", 0), _AGE)
_ISSUER_COLUMNS = (("Ready", "string", f"{_READY}.status", 0), ("Status", "string", f"{_READY}.message", 1), _AGE)
_CERT_COLUMNS = (("Ready", "string", f"{_READY}.status", 0), ("Secret", "string", ".spec.secretName", 0),
                 ("Issuer", "string", ".spec.issuerRef.name", 1), ("Status", "string", f"{_READY}.message", 1), _AGE)
_GATEWAY_API = ("gateway-api",)
_GATEWAYCLASS_COLUMNS = (("Controller", "string", ".spec.controllerName", 0),
                         ("Accepted", "string", '.status.conditions[?(@.type=="Accepted")].status', 0), _AGE,
                         ("Description", "string", ".spec.description", 1))
_GATEWAY_COLUMNS = (("Class", "string", ".spec.gatewayClassName", 0),
                    ("Address", "string", ".status.addresses[*].value", 0),
                    ("Programmed", "string", '.status.conditions[?(@.type=="Programmed")].status', 0), _AGE)
_HTTPROUTE_COLUMNS = (("Hostnames", "string", ".spec.hostnames", 0), _AGE)
MAX_WEIGHT = 1_000_000  # an HTTPRoute backendRef's weight: 0 to 1,000,000 (the Gateway API's CRD)
_KINDS = [
    Kind("", "v1", "namespaces", "Namespace", namespaced=False, status=True, short_names=("ns",)),
    Kind("", "v1", "pods", "Pod", status=True, short_names=("po",), categories=_ALL),
    Kind("", "v1", "services", "Service", status=True, short_names=("svc",), categories=_ALL),
    Kind("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "events", "Event", short_names=("ev",)),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    Kind("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    Kind("", "v1", "nodes", "Node", namespaced=False, status=True, short_names=("no",)),
    Kind("apps", "v1", "deployments", "Deployment", status=True, scale=True, short_names=("deploy",),
         categories=_ALL),
    Kind("apps", "v1", "replicasets", "ReplicaSet", status=True, scale=True, short_names=("rs",), categories=_ALL),
    Kind("apps", "v1", "statefulsets", "StatefulSet", status=True, scale=True, short_names=("sts",),
         categories=_ALL),
    Kind("apps", "v1", "daemonsets", "DaemonSet", status=True, short_names=("ds",), categories=_ALL),
    Kind("batch", "v1", "jobs", "Job", status=True, categories=_ALL),
    Kind("coordination.k8s.io", "v1", "leases", "Lease"),
    Kind("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", status=True, short_names=("ing",)),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", status=True, short_names=("pdb",)),
    Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", status=True,
         short_names=("hpa",), categories=_ALL),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
         status=True, short_names=("crd", "crds"), categories=("api-extensions",)),
    # Custom kinds: names and categories as their upstream CRDs declare them; a CRD object stored in the
    # emulator (`kubectl apply -f crd.yaml`) adds its schema and printer columns (see `CrdRegistry`).
    Kind("getambassador.io", "v3alpha1", "mappings", "Mapping", status=True, builtin=False,
         categories=("ambassador-crds",), columns=_MAPPING_COLUMNS),
    Kind("getambassador.io", "v3alpha1", "hosts", "Host", status=True, builtin=False, categories=("ambassador-crds",),
         columns=_HOST_COLUMNS),
    Kind("getambassador.io", "v3alpha1", "listeners", "Listener", builtin=False, categories=("ambassador-crds",)),
    Kind("getambassador.io", "v3alpha1", "tlscontexts", "TLSContext", builtin=False, categories=("ambassador-crds",)),
    Kind("getambassador.io", "v3alpha1", "modules", "Module", builtin=False, categories=("ambassador-crds",)),
    Kind("cert-manager.io", "v1", "certificates", "Certificate", status=True, builtin=False,
         short_names=("cert", "certs"), categories=("cert-manager",), columns=_CERT_COLUMNS),
    Kind("cert-manager.io", "v1", "certificaterequests", "CertificateRequest", status=True, builtin=False,
         short_names=("cr", "crs"), categories=("cert-manager",)),
    Kind("cert-manager.io", "v1", "issuers", "Issuer", status=True, builtin=False, short_names=("iss",),
         categories=("cert-manager",), columns=_ISSUER_COLUMNS),
    Kind("cert-manager.io", "v1", "clusterissuers", "ClusterIssuer", namespaced=False, status=True,
         builtin=False, short_names=("ciss",), categories=("cert-manager",), columns=_ISSUER_COLUMNS),
    Kind("gateway.networking.k8s.io", "v1", "gatewayclasses", "GatewayClass", namespaced=False, status=True,
         builtin=False, short_names=("gc",), categories=_GATEWAY_API, columns=_GATEWAYCLASS_COLUMNS),
    Kind("gateway.networking.k8s.io", "v1", "gateways", "Gateway", status=True, builtin=False, short_names=("gtw",),
         categories=_GATEWAY_API, columns=_GATEWAY_COLUMNS),
    Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", status=True, builtin=False,
         categories=_GATEWAY_API, columns=_HTTPROUTE_COLUMNS),
    Kind("metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool", status=True, builtin=False),
    Kind("metallb.io", "v1beta1", "l2advertisements", "L2Advertisement", status=True, builtin=False),
    Kind("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", status=True, builtin=False,
         short_names=("smon",), categories=("prometheus-operator",)),
    Kind("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", builtin=False, short_names=("pmon",),
         categories=("prometheus-operator",)),
    Kind("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", builtin=False,
         short_names=("promrule",), categories=("prometheus-operator",)),
]

_BY_RESOURCE: dict[tuple[str, str], Kind] = {(k.group, k.resource): k for k in _KINDS}
_BY_KIND: dict[tuple[str, str], Kind] = {(k.group, k.kind): k for k in _KINDS}
# Kinds first seen through a create of an unknown resource, remembered for the life of the process.
_LEARNED: dict[tuple[str, str], Kind] = {}

CUSTOM_GROUPS = frozenset(k.group for k in _KINDS if not k.builtin)


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`)."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def plural(kind: str) -> str:
    """The conventional plural resource name of a kind (`NetworkPolicy` -> `networkpolicies`)."""
    low = kind.lower()
    if low.endswith("y") and low[-2:-1] not in "aeiou":
        return low[:-1] + "ies"
    if low.endswith(("s", "x", "ch", "sh")):
        return low + "es"
    return low + "s"


def lookup(group: str, resource: str) -> Kind | None:
    """The known kind for a group and resource, or None."""
    return _BY_RESOURCE.get((group, resource)) or _LEARNED.get((group, resource))


def for_resource(group: str, version: str, resource: str, *, namespaced: bool, kind: str | None = None) -> Kind:
    """The kind for a URL's group/version/resource, learning unknown ones from a body's `kind`."""
    known = lookup(group, resource)
    if known is not None:
        return known
    name = kind or resource[:-1].capitalize()
    learned = Kind(group, version, resource, name, namespaced=namespaced,
                   builtin=group == "" or group.endswith(".k8s.io") or "." not in group)
    if kind:
        _LEARNED[(group, resource)] = learned
    return learned


def for_manifest(api_version: str, kind: str) -> Kind:
    """The kind of a manifest document (`apiVersion` + `kind`)."""
    group, version = split_api_version(api_version)
    known = _BY_KIND.get((group, kind))
    if known is not None:
        return known
    for learned in _LEARNED.values():
        if learned.group == group and learned.kind == kind:
            return learned
    cluster_scoped = kind.startswith("Cluster") or kind in {"Namespace", "Node", "PersistentVolume",
                                                            "StorageClass", "CustomResourceDefinition"}
    return for_resource(group, version, plural(kind), namespaced=not cluster_scoped, kind=kind)


# Built-in resources whose API server strategy keeps no metadata.generation (custom resources all have one).
_NO_GENERATION = {("", "configmaps"), ("", "secrets"), ("", "services"), ("", "namespaces"), ("", "events"),
                  ("", "serviceaccounts"), ("", "endpoints"), ("", "nodes"), ("events.k8s.io", "events"),
                  ("coordination.k8s.io", "leases"), ("rbac.authorization.k8s.io", "roles"),
                  ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "clusterroles"),
                  ("rbac.authorization.k8s.io", "clusterrolebindings")}


def has_generation(kind: Kind) -> bool:
    """Whether objects of this kind carry metadata.generation (bumped when their spec changes)."""
    return (kind.group, kind.resource) not in _NO_GENERATION


def all_kinds() -> list[Kind]:
    return [*_KINDS, *_LEARNED.values()]


# --- custom resource definitions ------------------------------------------------------------------


class CrdRegistry:
    """The CustomResourceDefinitions stored in one emulator, by (group, plural).

    They serve discovery (short names, categories), tables (printer columns) and the OpenAPI documents
    (schemas). A CRD for a kind the emulator does not know teaches it that kind (process-wide, like a
    kind learned from a create).
    """

    def __init__(self) -> None:
        self._crds: dict[tuple[str, str], dict[str, Any]] = {}
        self.generation = 0  # bumped on every change (what caches of documents key on)

    def register(self, crd: dict[str, Any]) -> Kind | None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural, kind_name = spec.get("group"), names.get("plural"), names.get("kind")
        served = [v for v in spec.get("versions") or [] if v.get("served")]
        if not (group and plural and kind_name and served):
            return None
        self._crds[(group, plural)] = crd
        self.generation += 1
        known = lookup(group, plural)
        if known is not None:
            return known
        entry = next((v for v in served if v.get("storage")), served[0])
        subresources = entry.get("subresources") or {}
        kind = Kind(group, entry["name"], plural, kind_name,
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced", status="status" in subresources,
                    scale="scale" in subresources, builtin=False)
        _LEARNED[(group, plural)] = kind
        return kind

    def forget(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        self._crds.pop((spec.get("group"), (spec.get("names") or {}).get("plural")), None)
        self.generation += 1

    def version(self, kind: Kind) -> dict[str, Any] | None:
        """The CRD's entry for the version the emulator serves of `kind`, when its CRD is stored."""
        crd = self._crds.get((kind.group, kind.resource))
        if crd is None:
            return None
        return next((v for v in crd["spec"].get("versions") or [] if v.get("name") == kind.version), None)

    def names(self, kind: Kind) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Short names and categories: the stored CRD's, else the ones the emulator knows."""
        crd = self._crds.get((kind.group, kind.resource))
        if crd is None:
            return kind.short_names, kind.categories
        names = crd["spec"].get("names") or {}
        return tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ())


# --- validation -------------------------------------------------------------------------------------

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_KINDS = {"namespaces", "services"}
TOTAL_ANNOTATION_BYTES = 256 * 1024  # the API server's limit on all annotations of an object together
# The largest object the emulator stores: the API server's limit on a ConfigMap's or Secret's data
# (core.MaxSecretSize), applied to every other kind's serialized size in place of etcd's request limit.
MAX_OBJECT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Cause:
    """One field error of a 422 Invalid answer."""

    reason: str  # FieldValueRequired, FieldValueInvalid, ...
    field: str
    message: str


def _decoded_length(value: Any) -> int:
    """Bytes of a base64 value of a Secret's data or a ConfigMap's binaryData (its length when not base64)."""
    text = str(value)
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return len(text.encode())


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def object_size(obj: dict[str, Any]) -> int:
    """Bytes of the object serialized as compact JSON, the way the API server writes it to etcd."""
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def size_causes(kind: Kind, obj: dict[str, Any]) -> list[Cause]:
    """The size limit, as the API server words it.

    A ConfigMap's `data` and `binaryData` together, and a Secret's `data` (decoded) and `stringData`,
    may hold at most 1 MiB (``ConfigMap "x" is invalid: []: Too long: must have at most 1048576 bytes``);
    any other object may not serialize to more than that.
    """
    message = f"Too long: must have at most {MAX_OBJECT_BYTES} bytes"
    if kind.group == "" and kind.resource == "configmaps":
        data, binary = _mapping(obj.get("data")), _mapping(obj.get("binaryData"))
        size = sum(len(str(v).encode()) for v in data.values()) + sum(map(_decoded_length, binary.values()))
        return [Cause("FieldValueTooLong", "[]", message)] if size > MAX_OBJECT_BYTES else []
    if kind.group == "" and kind.resource == "secrets":
        data, strings = _mapping(obj.get("data")), _mapping(obj.get("stringData"))
        size = sum(map(_decoded_length, data.values())) + sum(len(str(v).encode()) for v in strings.values())
        return [Cause("FieldValueTooLong", "data", message)] if size > MAX_OBJECT_BYTES else []
    return [Cause("FieldValueTooLong", "[]", message)] if object_size(obj) > MAX_OBJECT_BYTES else []


def validate(kind: Kind, obj: dict[str, Any]) -> list[Cause]:
    """Field errors the real API server (or the CRD's schema) would report for `obj`."""
    causes: list[Cause] = []
    name = obj.get("metadata", {}).get("name", "")
    if not name:
        causes.append(Cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is "
                                                                   "required"))
    else:
        label = kind.resource in _LABEL_NAME_KINDS
        pattern, limit = (DNS1123_LABEL, 63) if label else (DNS1123_SUBDOMAIN, 253)
        if len(name) > limit or not pattern.match(name):
            what = "RFC 1123 label" if label else "RFC 1123 subdomain"
            causes.append(Cause("FieldValueInvalid", "metadata.name",
                                f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                                "alphanumeric characters, '-' or '.', and must start and end with an "
                                "alphanumeric character"))
    annotations = obj.get("metadata", {}).get("annotations") or {}
    if sum(len(str(k)) + len(str(v)) for k, v in annotations.items()) > TOTAL_ANNOTATION_BYTES:
        causes.append(Cause("FieldValueTooLong", "metadata.annotations",
                            f"Too long: may not be more than {TOTAL_ANNOTATION_BYTES} bytes"))
    causes.extend(size_causes(kind, obj))
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    if kind.resource in ("deployments", "replicasets", "statefulsets") and kind.group == "apps":
        causes.extend(_validate_workload(spec))
    elif kind.group == "batch" and kind.resource == "jobs":
        causes.extend(_validate_job(spec))
    elif kind.group == "getambassador.io" and kind.resource == "mappings":
        for field in ("prefix", "service"):
            if not spec.get(field):
                causes.append(Cause("FieldValueRequired", f"spec.{field}", "Required value"))
        weight = spec.get("weight")
        if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool)
                                   or not 0 <= weight <= 100):
            causes.append(Cause("FieldValueInvalid", "spec.weight",
                                f"Invalid value: {weight}: spec.weight in body should be between 0 and 100"))
    elif kind.group == "gateway.networking.k8s.io" and kind.resource == "httproutes":
        causes.extend(_validate_httproute(spec))
    elif kind.group == "cert-manager.io" and kind.resource == "certificates":
        if not spec.get("secretName"):
            causes.append(Cause("FieldValueRequired", "spec.secretName", "Required value"))
        issuer = spec.get("issuerRef")
        if not isinstance(issuer, dict) or not issuer.get("name"):
            causes.append(Cause("FieldValueRequired", "spec.issuerRef", "Required value"))
    return causes


def _validate_httproute(spec: dict[str, Any]) -> list[Cause]:
    """What the HTTPRoute CRD's schema says of rules and their backendRefs (16 of each at most, weights 0 to
    1,000,000), worded as the API server words a schema's errors."""
    causes: list[Cause] = []
    rules = spec.get("rules") or []
    if not isinstance(rules, list):
        return [Cause("FieldValueTypeInvalid", "spec.rules", f'Invalid value: "{type(rules).__name__}": '
                                                             'spec.rules in body must be of type array: "object"')]
    if len(rules) > 16:
        causes.append(Cause("FieldValueTooMany", "spec.rules", f"Too many: {len(rules)}: must have at most 16 items"))
    for i, rule in enumerate(rules):
        refs = (rule or {}).get("backendRefs") or [] if isinstance(rule, dict) else []
        at = f"spec.rules[{i}].backendRefs"
        if len(refs) > 16:
            causes.append(Cause("FieldValueTooMany", at, f"Too many: {len(refs)}: must have at most 16 items"))
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            weight = ref.get("weight", 1) if isinstance(ref, dict) else 1
            field = f"{at}[{j}].weight"
            if not isinstance(weight, int) or isinstance(weight, bool):
                causes.append(Cause("FieldValueTypeInvalid", field, f'Invalid value: "{weight}": {field} in body '
                                                                    'must be of type integer: "string"'))
            elif weight < 0:
                causes.append(Cause("FieldValueInvalid", field, f"Invalid value: {weight}: {field} in body should "
                                                                "be greater than or equal to 0"))
            elif weight > MAX_WEIGHT:
                causes.append(Cause("FieldValueInvalid", field, f"Invalid value: {weight}: {field} in body should "
                                                                f"be less than or equal to {MAX_WEIGHT}"))
    return causes


def _validate_workload(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(Cause("FieldValueRequired", "spec.selector", "Required value"))
    if not isinstance(template, dict):
        causes.append(Cause("FieldValueRequired", "spec.template", "Required value"))
        return causes
    labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and causes == []:
        from .selectors import match_label_selector  # local: selectors imports nothing from here

        if not match_label_selector(selector, labels):
            causes.append(Cause("FieldValueInvalid", "spec.template.metadata.labels",
                                f"Invalid value: {_go_map(labels)}: `selector` does not match template "
                                "`labels`"))
    containers = (template.get("spec") or {}).get("containers")
    if not containers:
        causes.append(Cause("FieldValueRequired", "spec.template.spec.containers", "Required value"))
    else:
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name"):
                causes.append(Cause("FieldValueRequired", f"spec.template.spec.containers[{i}].name",
                                    "Required value"))
            elif not c.get("image"):
                causes.append(Cause("FieldValueRequired", f"spec.template.spec.containers[{i}].image",
                                    "Required value"))
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        causes.append(Cause("FieldValueInvalid", "spec.replicas",
                            f"Invalid value: {replicas}: must be greater than or equal to 0"))
    return causes


def _validate_job(spec: dict[str, Any]) -> list[Cause]:
    """A Job's rules: a pod template whose restartPolicy is Never or OnFailure, positive counts."""
    template = spec.get("template")
    if not isinstance(template, dict):
        return [Cause("FieldValueRequired", "spec.template", "Required value")]
    causes: list[Cause] = []
    pod = template.get("spec") or {}
    policy = pod.get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        causes.append(Cause("FieldValueNotSupported", "spec.template.spec.restartPolicy",
                            f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"'))
    containers = pod.get("containers")
    if not containers:
        causes.append(Cause("FieldValueRequired", "spec.template.spec.containers", "Required value"))
    for i, c in enumerate(containers or []):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append(Cause("FieldValueRequired", f"spec.template.spec.containers[{i}].name", "Required value"))
        elif not c.get("image"):
            causes.append(Cause("FieldValueRequired", f"spec.template.spec.containers[{i}].image", "Required value"))
    for field, low in (("activeDeadlineSeconds", 1), ("backoffLimit", 0), ("completions", 0), ("parallelism", 0)):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            bound = "greater than 0" if low else "greater than or equal to 0"
            causes.append(Cause("FieldValueInvalid", f"spec.{field}", f"Invalid value: {value}: must be {bound}"))
    return causes


def job_selector(obj: dict[str, Any]) -> None:
    """What the API server adds to a new Job once it has its uid: the selector on
    `batch.kubernetes.io/controller-uid` and the matching labels on its pod template."""
    meta, spec = obj["metadata"], obj.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    uid, name = meta["uid"], meta["name"]
    labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
    labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                   "controller-uid": uid, "job-name": name})
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


def _go_map(labels: dict[str, str]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


# --- defaults ---------------------------------------------------------------------------------------

_cluster_ips = (str(ipaddress.IPv4Address("10.96.0.10") + i) for i in itertools.count())


def apply_defaults(kind: Kind, obj: dict[str, Any]) -> None:
    """Fill the fields the real API server defaults (and the client's models need) in place."""
    if kind.group == "apps" and kind.resource in ("deployments", "replicasets", "statefulsets"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind.resource == "deployments":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
        template = spec.get("template")
        if isinstance(template, dict):
            template.setdefault("metadata", {})
            pod_spec_defaults(template.setdefault("spec", {}))
        obj.setdefault("status", {})
    elif kind.group == "" and kind.resource == "pods":
        pod_spec_defaults(obj.setdefault("spec", {}))
    elif kind.group == "batch" and kind.resource == "jobs":
        spec = obj.setdefault("spec", {})
        for key, value in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1),
                           ("completionMode", "NonIndexed"), ("suspend", False),
                           ("podReplacementPolicy", "TerminatingOrFailed"), ("manualSelector", None)):
            if value is not None:
                spec.setdefault(key, value)
        template = spec.get("template")
        if isinstance(template, dict):
            template.setdefault("metadata", {})
            pod_spec_defaults(template.setdefault("spec", {}))
    elif kind.group == "" and kind.resource == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("clusterIP") != "None":
            spec.setdefault("clusterIP", next(_cluster_ips))
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
        if spec["type"] in ("LoadBalancer", "NodePort"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            for i, port in enumerate(spec.get("ports") or []):
                port.setdefault("nodePort", 30000 + (hash((obj["metadata"].get("name"), i)) % 2767))
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind.group == "" and kind.resource == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if string_data:
            import base64

            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif kind.group == "" and kind.resource == "namespaces":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
    elif kind.group == "" and kind.resource == "serviceaccounts":
        pass


def pod_spec_defaults(spec: dict[str, Any]) -> None:
    """The defaults of a PodSpec, as the API server fills them."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            image = str(container.get("image", ""))
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            container.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
