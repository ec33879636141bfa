"""The three patch types of the Kubernetes API: JSON merge patch, JSON patch and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


class PatchError(ValueError):
    """A patch that cannot be applied (answered 422 or 400 by the server)."""


class MalformedPatch(PatchError):
    """A patch body that is not a patch at all (a JSON patch that is not a list of operations): 400."""


class JsonPatchFailed(PatchError):
    """A JSON patch whose operations do not apply to the object (a `test` that fails, a missing path): the API
    server answers 422 with a generic message and does not say which operation failed."""

    MESSAGE = "the server rejected our request due to an error in our request"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, `null` deletes, everything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch through the `jsonpatch` library."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise MalformedPatch("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        return jsonpatch.apply_patch(target, operations, in_place=False)
    except jsonpatch.InvalidJsonPatch as exc:
        raise MalformedPatch(str(exc)) from exc
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError,
            TypeError) as exc:
        raise JsonPatchFailed(str(exc)) from exc


# Merge keys of the lists Kubernetes merges (patchStrategy "merge"), by field name and, where the same
# name means different things, by the name of the map that holds the list.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "secrets": "name",
}
_PORT_KEYS = {"containers": "containerPort", "initContainers": "containerPort",
              "ephemeralContainers": "containerPort", "spec": "port"}
# Lists of scalars Kubernetes merges as sets.
_SET_LISTS = {"finalizers"}

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"


def _merge_key(field: str, parent: str) -> str | None:
    if field == "ports":
        return _PORT_KEYS.get(parent, "containerPort")
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch as the API server applies it to built-in kinds.

    Maps merge recursively, `null` deletes a key, lists with a merge key (containers by `name`, env by
    `name`, ports by `containerPort`, volumeMounts by `mountPath`, ...) merge item by item, other lists are
    replaced. Directives `$patch: delete|replace` (in maps and list items), `$retainKeys`,
    `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` are understood.
    """
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch, parent="")


def _smp_map(target: dict[str, Any], patch: dict[str, Any], parent: str) -> dict[str, Any]:
    directive = patch.get(_DIRECTIVE)
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != _DIRECTIVE})
    if directive == "delete":
        return {}
    result = copy.deepcopy(target)
    retain = patch.get(_RETAIN)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN) or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _smp_map(current if isinstance(current, dict) else {}, value, parent=key)
            if value.get(_DIRECTIVE) == "delete":
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(result.get(key), value, field=key, parent=parent)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _smp_list(target: Any, patch: list[Any], field: str, parent: str) -> list[Any]:
    current = target if isinstance(target, list) else []
    if field in _SET_LISTS and all(not isinstance(v, dict) for v in patch):
        return [*current, *(v for v in patch if v not in current)]
    key = _merge_key(field, parent)
    if key is None or not all(isinstance(v, dict) for v in patch):
        return [_strip(v) for v in patch if not (isinstance(v, dict) and v.get(_DIRECTIVE) == "delete")]
    if any(isinstance(v, dict) and v.get(_DIRECTIVE) == "replace" for v in patch):
        return [_strip(v) for v in patch if not (isinstance(v, dict) and v.get(_DIRECTIVE) == "replace")]
    result = [copy.deepcopy(v) for v in current]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, v in enumerate(result) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(_strip(item))
        else:
            result[index] = _smp_map(result[index], item, parent=field)
    return result


def _strip(value: Any) -> Any:
    """Remove patch directives from a value that is inserted as a whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)


def apply_patch(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    """Apply a patch body of the given content type; raises PatchError or LookupError (unsupported type)."""
    if content_type == MERGE:
        result = merge_patch(target, body)
    elif content_type == JSON:
        result = json_patch(target, body)
    elif content_type == STRATEGIC:
        result = strategic_merge_patch(target, body)
    else:
        raise LookupError(content_type)
    if not isinstance(result, dict):
        raise PatchError("patch result is not an object")
    return result
