"""Server-side printing: objects as `meta.k8s.io/v1` Tables, with the columns a real API server sends.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the cells as they
come, so the columns (and their `priority`: 1 = only with `-o wide`) and the cell texts follow the API
server's printers for built-in kinds and the CRD's `additionalPrinterColumns` for custom kinds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .kinds import Kind
from .selectors import selector_string

Row = list[Any]
Column = tuple[str, str, int]  # name, type, priority

_NAME = ("Name", "string", 0)
_AGE = ("Age", "string", 0)


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for a `meta.k8s.io/v1` Table first."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", None):
            return True
        if part.strip().startswith("application/json") and "as=" not in part:
            return False
    return False


# --- small formatters (the API server's own rules) -------------------------------------------------


def human_duration(seconds: float) -> str:
    """apimachinery's `duration.HumanDuration` (`5s`, `3m20s`, `2h`, `4d5h`, ...)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def since(stamp: str | None) -> str:
    """Age of an RFC 3339 timestamp; `<unknown>` when there is none."""
    if not stamp:
        return "<unknown>"
    try:
        then = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _age(obj: dict[str, Any]) -> str:
    return since(obj["metadata"].get("creationTimestamp"))


def _labels(selector: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "<none>"


def _label_selector(selector: dict[str, Any] | None) -> str:
    if not selector:
        return "<none>"
    return selector_string(selector) or "<none>"


def _containers(template: dict[str, Any]) -> tuple[str, str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


# --- built-in printers ------------------------------------------------------------------------------


def _pod(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    last_restart = max((((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or ""
                        for c in statuses), default="")
    reason = status.get("reason") or status.get("phase") or "Unknown"
    running = False
    for c in reversed(statuses):
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            code = state["terminated"].get("exitCode", 0)
            signal = state["terminated"].get("signal")
            reason = f"Signal:{signal}" if signal else f"ExitCode:{code}"
        elif c.get("ready") and "running" in state:
            running = True
    if reason == "Completed" and running:
        reason = "Running" if any(c.get("type") == "Ready" and c.get("status") == "True"
                                  for c in status.get("conditions") or []) else "NotReady"
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restart_text = f"{restarts} ({since(last_restart)} ago)" if restarts and last_restart else str(restarts)
    gates = spec.get("readinessGates") or []
    gate_text = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        gate_text = f"{sum(conditions.get(g.get('conditionType')) == 'True' for g in gates)}/{len(gates)}"
    return [obj["metadata"]["name"], f"{ready}/{total}", reason, restart_text, _age(obj),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gate_text]


def _deployment(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec.get("template") or {})
    return [obj["metadata"]["name"], f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas', 1))}",
            int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0), _age(obj),
            names, images, _label_selector(spec.get("selector"))]


def _replicaset(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec.get("template") or {})
    return [obj["metadata"]["name"], int(spec.get("replicas", 1)), int(status.get("replicas") or 0),
            int(status.get("readyReplicas") or 0), _age(obj), names, images, _label_selector(spec.get("selector"))]


def _statefulset(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec.get("template") or {})
    return [obj["metadata"]["name"], f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas', 1))}",
            _age(obj), names, images]


def _daemonset(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec.get("template") or {})
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [obj["metadata"]["name"], *(int(status.get(k) or 0) for k in (
        "desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled",
        "numberAvailable")), _labels(node_selector), _age(obj), names, images, _label_selector(spec.get("selector"))]


def _service(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    kind = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if kind == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in (status.get("loadBalancer") or {}).get("ingress") or []]
        external_text = ",".join([*(i for i in ingress if i), *external]) or "<pending>"
    elif kind == "ExternalName":
        external_text = spec.get("externalName") or "<none>"
    else:
        external_text = ",".join(external) or "<none>"
    ports = []
    for port in spec.get("ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return [obj["metadata"]["name"], kind, spec.get("clusterIP") or "<none>", external_text,
            ",".join(ports) or "<none>", _age(obj), _labels(spec.get("selector"))]


def _event(obj: dict[str, Any]) -> Row:
    involved = obj.get("involvedObject") or {}
    first = obj.get("firstTimestamp") or obj.get("eventTime")
    last = obj.get("lastTimestamp") or ((obj.get("series") or {}).get("lastObservedTime")) or first
    source = obj.get("source") or {}
    source_text = source.get("component") or obj.get("reportingComponent") or ""
    if source.get("host"):
        source_text = f"{source_text}, {source['host']}"
    return [since(last), obj.get("type", ""), obj.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            source_text, obj.get("message", ""), since(first), int(obj.get("count") or 1), obj["metadata"]["name"]]


def _namespace(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", "Active"), _age(obj)]


def _configmap(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj)]


def _secret(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], obj.get("type", "Opaque"), len(obj.get("data") or {}), _age(obj)]


def _serviceaccount(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], len(obj.get("secrets") or []), _age(obj)]


def _endpoints(obj: dict[str, Any]) -> Row:
    addresses = [f"{a.get('ip')}:{p.get('port')}" for s in obj.get("subsets") or []
                 for a in s.get("addresses") or [] for p in s.get("ports") or [{}]]
    text = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [obj["metadata"]["name"], text or "<none>", _age(obj)]


def _lease(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], (obj.get("spec") or {}).get("holderIdentity") or "", _age(obj)]


def _created_at(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp", "")]


def _rolebinding(obj: dict[str, Any]) -> Row:
    ref = obj.get("roleRef") or {}
    subjects = obj.get("subjects") or []

    def of(kind: str) -> str:
        return ", ".join((f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount" else s.get("name", ""))
                         for s in subjects if s.get("kind") == kind)

    return [obj["metadata"]["name"], f"{ref.get('kind')}/{ref.get('name')}", _age(obj), of("User"), of("Group"),
            of("ServiceAccount")]


def _networkpolicy(obj: dict[str, Any]) -> Row:
    selector = (obj.get("spec") or {}).get("podSelector")
    return [obj["metadata"]["name"], selector_string(selector) or "<none>", _age(obj)]


def _ingress(obj: dict[str, Any]) -> Row:
    spec = obj.get("spec") or {}
    hosts = ",".join(r.get("host", "") for r in spec.get("rules") or [] if r.get("host")) or "*"
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress)
    return [obj["metadata"]["name"], spec.get("ingressClassName") or "<none>", hosts, address,
            "80, 443" if spec.get("tls") else "80", _age(obj)]


def _node(obj: dict[str, Any]) -> Row:
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady" if ready else "Unknown"
    roles = sorted(k.rsplit("/", 1)[1] for k in obj["metadata"].get("labels") or {}
                   if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [obj["metadata"]["name"], state, ",".join(roles) or "<none>", _age(obj), info.get("kubeletVersion", ""),
            addresses.get("InternalIP") or "<none>", addresses.get("ExternalIP") or "<none>",
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _job(obj: dict[str, Any]) -> Row:
    """printJob: the status from the conditions, `succeeded/completions`, the duration so far or in all."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    held = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    if obj["metadata"].get("deletionTimestamp") and not held & {"Complete", "Failed"}:
        state = "Terminating"
    else:
        state = next((name for name in ("Complete", "Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet")
                      if name in held), "Running")
    succeeded = int(status.get("succeeded") or 0)
    completions = spec.get("completions")
    done = f"{succeeded}/{completions}" if completions is not None else \
        f"{succeeded}/1 of {spec.get('parallelism', 1)}"
    duration = ""
    if status.get("startTime"):
        start = datetime.strptime(status["startTime"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        end = (datetime.strptime(status["completionTime"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
               if status.get("completionTime") else datetime.now(UTC))
        duration = human_duration((end - start).total_seconds())
    containers, images = _containers(spec.get("template") or {})
    return [obj["metadata"]["name"], state, done, duration, _age(obj), containers, images,
            _label_selector(spec.get("selector"))]


def _crd(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp", "")]


_WIDE = 1
_PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[dict[str, Any]], Row]]] = {
    ("", "pods"): ([_NAME, ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0), _AGE,
                    ("IP", "string", _WIDE), ("Node", "string", _WIDE), ("Nominated Node", "string", _WIDE),
                    ("Readiness Gates", "string", _WIDE)], _pod),
    ("apps", "deployments"): ([_NAME, ("Ready", "string", 0), ("Up-to-date", "string", 0),
                               ("Available", "string", 0), _AGE, ("Containers", "string", _WIDE),
                               ("Images", "string", _WIDE), ("Selector", "string", _WIDE)], _deployment),
    ("apps", "replicasets"): ([_NAME, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
                               _AGE, ("Containers", "string", _WIDE), ("Images", "string", _WIDE),
                               ("Selector", "string", _WIDE)], _replicaset),
    ("apps", "statefulsets"): ([_NAME, ("Ready", "string", 0), _AGE, ("Containers", "string", _WIDE),
                                ("Images", "string", _WIDE)], _statefulset),
    ("apps", "daemonsets"): ([_NAME, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
                              ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                              ("Node Selector", "string", 0), _AGE, ("Containers", "string", _WIDE),
                              ("Images", "string", _WIDE), ("Selector", "string", _WIDE)], _daemonset),
    ("", "services"): ([_NAME, ("Type", "string", 0), ("Cluster-IP", "string", 0), ("External-IP", "string", 0),
                        ("Port(s)", "string", 0), _AGE, ("Selector", "string", _WIDE)], _service),
    ("", "events"): ([("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
                      ("Object", "string", 0), ("Subobject", "string", _WIDE), ("Source", "string", _WIDE),
                      ("Message", "string", 0), ("First Seen", "string", _WIDE), ("Count", "string", _WIDE),
                      ("Name", "string", _WIDE)], _event),
    ("", "namespaces"): ([_NAME, ("Status", "string", 0), _AGE], _namespace),
    ("", "configmaps"): ([_NAME, ("Data", "string", 0), _AGE], _configmap),
    ("", "secrets"): ([_NAME, ("Type", "string", 0), ("Data", "string", 0), _AGE], _secret),
    ("", "serviceaccounts"): ([_NAME, ("Secrets", "string", 0), _AGE], _serviceaccount),
    ("", "endpoints"): ([_NAME, ("Endpoints", "string", 0), _AGE], _endpoints),
    ("", "nodes"): ([_NAME, ("Status", "string", 0), ("Roles", "string", 0), _AGE, ("Version", "string", 0),
                     ("Internal-IP", "string", _WIDE), ("External-IP", "string", _WIDE),
                     ("OS-Image", "string", _WIDE), ("Kernel-Version", "string", _WIDE),
                     ("Container-Runtime", "string", _WIDE)], _node),
    ("batch", "jobs"): ([_NAME, ("Status", "string", 0), ("Completions", "string", 0), ("Duration", "string", 0),
                         _AGE, ("Containers", "string", _WIDE), ("Images", "string", _WIDE),
                         ("Selector", "string", _WIDE)], _job),
    ("coordination.k8s.io", "leases"): ([_NAME, ("Holder", "string", 0), _AGE], _lease),
    ("rbac.authorization.k8s.io", "roles"): ([_NAME, ("Created At", "date", 0)], _created_at),
    ("rbac.authorization.k8s.io", "clusterroles"): ([_NAME, ("Created At", "date", 0)], _created_at),
    ("rbac.authorization.k8s.io", "rolebindings"): ([_NAME, ("Role", "string", 0), _AGE, ("Users", "string", _WIDE),
                                                     ("Groups", "string", _WIDE),
                                                     ("ServiceAccounts", "string", _WIDE)], _rolebinding),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): ([_NAME, ("Role", "string", 0), _AGE,
                                                            ("Users", "string", _WIDE), ("Groups", "string", _WIDE),
                                                            ("ServiceAccounts", "string", _WIDE)], _rolebinding),
    ("networking.k8s.io", "networkpolicies"): ([_NAME, ("Pod-Selector", "string", 0), _AGE], _networkpolicy),
    ("networking.k8s.io", "ingresses"): ([_NAME, ("Class", "string", 0), ("Hosts", "string", 0),
                                          ("Address", "string", 0), ("Ports", "string", 0), _AGE], _ingress),
    ("apiextensions.k8s.io", "customresourcedefinitions"): ([_NAME, ("Created At", "date", 0)], _crd),
}


# --- custom resources: additionalPrinterColumns -------------------------------------------------------

_FILTER = re.compile(r"""^\?\(@\.([\w.-]+)\s*==\s*(?:"([^"]*)"|'([^']*)')\)$""")


def _tokens(path: str) -> list[str]:
    """`.status.conditions[?(@.type=="Ready")].status` -> [`status`, `conditions`, `[?(...)]`, `status`]."""
    out: list[str] = []
    i, text = 0, path.strip().strip("{}")
    while i < len(text):
        if text[i] == ".":
            i += 1
            start = i
            while i < len(text) and text[i] not in ".[":
                i += 1
            if i > start:
                out.append(text[start:i])
        elif text[i] == "[":
            depth, start = 0, i
            while i < len(text):
                depth += text[i] == "["
                depth -= text[i] == "]"
                i += 1
                if depth == 0:
                    break
            out.append(text[start:i])
        else:
            i += 1
    return out


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """The values of a simple JSONPath (fields, `[n]`, `[*]`, `[?(@.a=="b")]`) found in `obj`."""
    current = [obj]
    for token in _tokens(path):
        found: list[Any] = []
        for value in current:
            if token.startswith("["):
                inner = token[1:-1].strip()
                if not isinstance(value, list):
                    continue
                match = _FILTER.match(inner)
                if inner == "*":
                    found.extend(value)
                elif match:
                    field, want = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
                    found.extend(item for item in value if jsonpath_values(item, "." + field) == [want])
                elif inner.lstrip("-").isdigit() and -len(value) <= int(inner) < len(value):
                    found.append(value[int(inner)])
            elif isinstance(value, dict) and token in value:
                found.append(value[token])
        current = found
    return current


def _go_text(value: Any) -> str:
    """How Go's fmt prints a decoded JSON value (what client-go's jsonpath prints)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(_go_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_text(v)}" for k, v in sorted(value.items())) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def _go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of a decoded JSON value: compact, map keys sorted, ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _custom_cell(kind_: str, value: Any) -> Any:
    if kind_ == "string":  # the API server prints a list or an object as JSON (client-go's jsonpath PrintResults)
        return _go_json(value) if isinstance(value, list | dict) else _go_text(value)
    if kind_ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind_ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind_ == "boolean" and isinstance(value, bool):
        return value
    if kind_ == "date" and isinstance(value, str):
        return since(value)
    return None


def _custom_printer(kind: Kind, version: dict[str, Any] | None
                    ) -> tuple[list[Column], Callable[[dict[str, Any]], Row]]:
    if version is not None:
        declared = version.get("additionalPrinterColumns")
    else:  # no CRD stored: the columns its upstream CRD declares, when the emulator knows them
        declared = [{"name": n, "type": t, "jsonPath": p, "priority": prio} for n, t, p, prio in kind.columns]
    if not declared:  # what the API server gives a CRD without printer columns
        declared = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    columns: list[Column] = [_NAME, *((c["name"], c.get("type", "string"), int(c.get("priority", 0)))
                                      for c in declared)]

    def row(obj: dict[str, Any]) -> Row:
        cells: Row = [obj["metadata"]["name"]]
        for col in declared:
            values = jsonpath_values(obj, col.get("jsonPath", ""))
            cells.append(_custom_cell(col.get("type", "string"), values[0]) if values else None)
        return cells

    return columns, row


def printer(kind: Kind, crd_version: dict[str, Any] | None = None
            ) -> tuple[list[Column], Callable[[dict[str, Any]], Row]]:
    """The column definitions and the row function for a kind (a custom kind's from its CRD's version)."""
    known = _PRINTERS.get((kind.group, kind.resource))
    if known is not None:
        return known
    if kind.builtin and crd_version is None:  # the API server's default table: name and creation time
        return [_NAME, ("Created At", "date", 0)], _created_at
    return _custom_printer(kind, crd_version)


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(kind: Kind, objects: list[dict[str, Any]], *, resource_version: str, include_object: str = "Metadata",
          headers: bool = True, crd_version: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects` (one row each)."""
    columns, row = printer(kind, crd_version)
    body: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                            "metadata": {"resourceVersion": resource_version}}
    if headers:
        body["columnDefinitions"] = [
            {"name": name, "type": type_, "format": "name" if (name, type_, prio) == _NAME else "",
             "description": "", "priority": prio}
            for name, type_, prio in columns]
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj)}
        included = _row_object(obj, include_object)
        if included is not None:
            entry["object"] = included
        rows.append(entry)
    body["rows"] = rows
    return body
