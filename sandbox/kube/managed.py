"""Field management: `metadata.managedFields` and server-side apply (`application/apply-patch+yaml`).

A field set is a set of paths; a path is a tuple of steps: ("f", field) into a map, ("k", '{"name":"web"}')
into the item of a list merged by key, ("v", '"value"') for a member of a set-like list. A list merged by
neither is atomic: its path is a leaf. Sets are stored in the API's `fieldsV1` form (`{"f:spec":
{"f:replicas": {}}}`, a `"."` entry for a list item owned as a whole).

Writers are named by `fieldManager` (kubectl names its commands: `kubectl-client-side-apply`,
`kubectl-edit`, ...) or else by their User-Agent's product (`OpenAPI-Generator` for the Python client).
A create or update gives its writer (operation `Update`) the fields it set or changed and takes them
from the others; an apply (operation `Apply`) conflicts with any other manager owning a field it sets
to a different value (409 naming the manager, unless forced), and drops fields it applied before and
no longer does when nobody else owns them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import patch
from .kinds import Kind
from .store import ApiError, now_iso

Path = tuple[tuple[str, str], ...]
_MISSING = object()
_UNTRACKED_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}


def manager_name(query_manager: str | None, user_agent: str) -> str:
    """The field manager of a request: `fieldManager`, else the User-Agent's product name."""
    if query_manager:
        return query_manager
    return (user_agent.split("/", 1)[0].strip() or "unknown")[:128]


def _list_key(field: str, parent: str, items: list[Any], builtin: bool) -> str | None:
    if not builtin or not items or not all(isinstance(i, dict) for i in items):
        return None
    key = patch._merge_key(field, parent)  # the same merge keys strategic merge patch uses
    if key and all(key in i for i in items):
        return key
    return None


def field_paths(obj: dict[str, Any], kind: Kind) -> set[Path]:
    """The leaf paths a (partial) object sets, leaving out what the server owns (name, uid, status...)."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind") and not (k == "status" and kind.status)}
    meta = body.get("metadata")
    if isinstance(meta, dict):
        body["metadata"] = {k: v for k, v in meta.items() if k not in _UNTRACKED_META}
        if not body["metadata"]:
            del body["metadata"]
    out: set[Path] = set()
    _collect(body, (), "", "", kind.builtin, out)
    return out


def _collect(value: Any, prefix: Path, field: str, parent: str, builtin: bool, out: set[Path]) -> None:
    if isinstance(value, dict):
        if not value and prefix:
            out.add(prefix)
        for key, item in value.items():
            _collect(item, (*prefix, ("f", key)), key, field, builtin, out)
    elif isinstance(value, list) and prefix:
        key = _list_key(field, parent, value, builtin)
        if key is not None:
            for item in value:
                step = (*prefix, ("k", json.dumps({key: item[key]}, separators=(",", ":"))))
                out.add(step)
                _collect(item, step, field, parent, builtin, out)
        elif builtin and field in patch._SET_LISTS and all(isinstance(i, str) for i in value):
            out.update((*prefix, ("v", json.dumps(i))) for i in value)
        else:
            out.add(prefix)
    elif prefix:
        out.add(prefix)


def _step(value: Any, step: tuple[str, str]) -> Any:
    kind_, text = step
    if kind_ == "f":
        return value.get(text, _MISSING) if isinstance(value, dict) else _MISSING
    if not isinstance(value, list):
        return _MISSING
    wanted = json.loads(text)
    if kind_ == "v":
        return wanted if wanted in value else _MISSING
    for item in value:
        if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
            return item
    return _MISSING


def value_at(obj: Any, path: Path) -> Any:
    for step in path:
        obj = _step(obj, step)
        if obj is _MISSING:
            return _MISSING
    return obj


def remove_at(obj: Any, path: Path) -> None:
    """Delete the field or list item a path names (nothing when it is not there)."""
    parent = value_at(obj, path[:-1])
    kind_, text = path[-1]
    if kind_ == "f" and isinstance(parent, dict):
        parent.pop(text, None)
    elif isinstance(parent, list):
        target = _step(parent, path[-1])
        if target is not _MISSING:
            parent.remove(target)


def _same(current: Any, applied: Any, path: Path) -> bool:
    if path and path[-1][0] in ("k", "v"):  # an item owned as a whole: its presence is its value
        return (value_at(current, path) is _MISSING) == (value_at(applied, path) is _MISSING)
    return value_at(current, path) == value_at(applied, path)


# --- fieldsV1 --------------------------------------------------------------------------------------


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for kind_, text in path:
            node = node.setdefault(f"{kind_}:{text}", {})
        if path and path[-1][0] == "k":
            node.setdefault(".", {})
    return root


def from_fields_v1(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in (fields or {}).items():
        if key == ".":
            out.add(prefix)
            continue
        kind_, _, text = key.partition(":")
        path = (*prefix, (kind_, text))
        if sub:
            out |= from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


class Entry:
    """One `managedFields` entry, with its field set as paths."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.paths = from_fields_v1(raw.get("fieldsV1") or {})

    @property
    def manager(self) -> str:
        return str(self.raw.get("manager", ""))

    @property
    def operation(self) -> str:
        return str(self.raw.get("operation", ""))

    def describe(self) -> str:
        """How a conflict names its manager (Update entries with their apiVersion and time)."""
        if self.operation == "Update":
            when = f" at {self.raw['time']}" if self.raw.get("time") else ""
            return f'"{self.manager}" using {self.raw.get("apiVersion", "")}{when}'
        return f'"{self.manager}"'

    def dump(self) -> dict[str, Any]:
        return {**self.raw, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.paths)}


def _entries(obj: dict[str, Any] | None) -> list[Entry]:
    return [Entry(copy.deepcopy(e)) for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []
            if isinstance(e, dict) and not e.get("subresource")]


def _store(obj: dict[str, Any], entries: list[Entry], untouched: list[dict[str, Any]]) -> None:
    dumped = [e.dump() for e in entries if e.paths]
    obj.setdefault("metadata", {})["managedFields"] = [*dumped, *untouched]


def _subresource_entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [e for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []
            if isinstance(e, dict) and e.get("subresource")]


def path_text(path: Path) -> str:
    """`.spec.template.spec.containers[name="web"].image`, as the API prints field paths."""
    out = ""
    for kind_, text in path:
        if kind_ == "f":
            out += f".{text}"
        elif kind_ == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(text).items()) + "]"
        else:
            out += f"[={text}]"
    return out


# --- operations -------------------------------------------------------------------------------------


def record_update(kind: Kind, manager: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Give `manager` (operation Update) the fields `new` sets or changes compared with `old`, in place."""
    new_paths = field_paths(new, kind)
    if old is None:
        changed, removed = new_paths, set()
    else:
        old_paths = field_paths(old, kind)
        changed = {p for p in new_paths if value_at(old, p) != value_at(new, p)}
        removed = {p for p in old_paths if value_at(new, p) is _MISSING}
    entries = _entries(old)
    untouched = _subresource_entries(old)
    if not changed and not removed:
        if old is not None:
            new.setdefault("metadata", {})["managedFields"] = copy.deepcopy(
                (old.get("metadata") or {}).get("managedFields") or [])
        return
    for entry in entries:
        entry.paths -= changed | removed
        # a removed parent takes its children with it
        entry.paths = {p for p in entry.paths if not any(p[:len(r)] == r for r in removed)}
    mine = next((e for e in entries if e.manager == manager and e.operation == "Update"), None)
    if mine is None:
        mine = Entry({"manager": manager, "operation": "Update", "apiVersion": kind.api_version})
        entries.append(mine)
    mine.paths |= changed
    mine.raw["time"] = now_iso()
    _store(new, entries, untouched)


def apply(kind: Kind, manager: str, current: dict[str, Any] | None, applied: dict[str, Any], *,
          force: bool) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `current` (None: it does not exist yet)."""
    name = (applied.get("metadata") or {}).get("name", "")
    applied_paths = field_paths(applied, kind)
    if current is None:
        result = copy.deepcopy(applied)
        _store(result, [_apply_entry(kind, manager, applied_paths)], [])
        return result
    entries = _entries(current)
    conflicts: list[tuple[Entry, Path]] = []
    for entry in entries:
        if entry.manager == manager and entry.operation == "Apply":
            continue
        for path in sorted(applied_paths & entry.paths):
            if not _same(current, applied, path):
                conflicts.append((entry, path))
    if conflicts and not force and not _upgrades_client_side_apply(kind, manager, current, conflicts):
        raise conflict_error(kind, name, conflicts)
    for entry, path in conflicts:
        entry.paths.discard(path)
    previous = next((e for e in entries if e.manager == manager and e.operation == "Apply"), None)
    merger = patch.strategic_merge_patch if kind.builtin else patch.merge_patch
    body = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}
    body["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k not in _UNTRACKED_META}
    result = merger(current, body)
    if previous is not None:
        others = set().union(*(e.paths for e in entries if e is not previous))
        for path in sorted(previous.paths - applied_paths, key=len, reverse=True):
            if path not in others and not any(o[:len(path)] == path for o in others):
                remove_at(result, path)
        previous.paths = applied_paths
        previous.raw["time"] = now_iso()
        previous.raw["apiVersion"] = kind.api_version
    else:
        entries.append(_apply_entry(kind, manager, applied_paths))
    _store(result, entries, _subresource_entries(current))
    return result


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _upgrades_client_side_apply(kind: Kind, manager: str, current: dict[str, Any],
                                conflicts: list[tuple[Entry, Path]]) -> bool:
    """Like the API server, `kubectl apply --server-side` (manager `kubectl`) takes over without conflict
    the fields an earlier client-side `kubectl apply` set, while they still hold what it applied."""
    if manager != "kubectl":
        return False
    text = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(text) if text else None
    except ValueError:
        return False
    if not isinstance(last, dict):
        return False
    allowed = {p for p in field_paths(last, kind) if _same(current, last, p)}
    return all(path in allowed for _entry, path in conflicts)


def _apply_entry(kind: Kind, manager: str, paths: set[Path]) -> Entry:
    entry = Entry({"manager": manager, "operation": "Apply", "apiVersion": kind.api_version, "time": now_iso()})
    entry.paths = set(paths)
    return entry


def conflict_error(kind: Kind, name: str, conflicts: list[tuple[Entry, Path]]) -> ApiError:
    """409 Conflict as the API server words it, one cause (FieldManagerConflict) per field."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {entry.describe()}",
               "field": path_text(path)} for entry, path in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_text(path)}"
    else:
        lines: list[str] = []
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(path_text(path))
        for described in sorted(by_manager):
            lines.append(f"conflicts with {described}:")
            lines.extend(f"- {p}" for p in by_manager[described])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})
