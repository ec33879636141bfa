"""Label selectors (string and structured forms) and field selectors, as the API server reads them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """A selector the API server would refuse with 400 BadRequest."""


_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_CMP_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def parse_label_selector(text: str | None) -> Callable[[dict[str, str]], bool]:
    """Compile a `labelSelector` query string (=, ==, !=, in, notin, exists, !key) to a predicate on labels."""
    if not text:
        return lambda labels: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split_top(text):
        cmp = _CMP_RE.match(part)
        if cmp and " in " not in f" {part} " and " notin " not in f" {part} ":
            key, op, value = cmp.groups()
            if op == "!=":
                tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        m = _SET_RE.match(part)
        if not m:
            raise SelectorError(f"unable to parse requirement: {part!r}")
        neg, key, op, values = m.groups()
        if op:
            if neg:
                raise SelectorError(f"unable to parse requirement: {part!r}")
            members = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                tests.append(lambda labels, k=key, s=members: labels.get(k) in s)
            else:
                tests.append(lambda labels, k=key, s=members: labels.get(k) not in s)
        elif neg:
            tests.append(lambda labels, k=key: k not in labels)
        else:
            tests.append(lambda labels, k=key: k in labels)
    return lambda labels: all(t(labels) for t in tests)


def match_label_selector(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether `labels` match a structured LabelSelector (`matchLabels` + `matchExpressions`)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_string(selector: dict[str, Any] | None) -> str:
    """The query-string form of a structured selector (as Scale's `status.selector` carries it)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                      "DoesNotExist": f"!{key}"}.get(op, key))
    return ",".join(parts)


def _field(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return str(node).lower()
    return str(node)


def parse_field_selector(text: str | None) -> Predicate:
    """Compile a `fieldSelector` (`metadata.name=x`, `involvedObject.name==y`, `status.phase!=Running`)."""
    if not text:
        return lambda obj: True
    tests: list[Predicate] = []
    for part in _split_top(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        path, op, value = m.groups()
        if op == "!=":
            tests.append(lambda obj, p=path, v=value: _field(obj, p) != v)
        else:
            tests.append(lambda obj, p=path, v=value: _field(obj, p) == v)
    return lambda obj: all(t(obj) for t in tests)
