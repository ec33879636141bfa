"""Role-based access control for one bearer token, from Role/ClusterRole manifests, with a usage record."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Usage = tuple[str, str, str, str]  # verb, API group, resource, subresource ("" when none)


@dataclass(frozen=True)
class Rule:
    """One PolicyRule of a Role; `namespace` None for a ClusterRole's rules (every namespace)."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    namespace: str | None

    def allows(self, verb: str, group: str, resource: str, name: str | None, namespace: str | None) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.groups and group not in self.groups:
            return False
        if "*" not in self.resources and resource not in self.resources:
            top = resource.split("/", 1)[0]
            if f"{top}/*" not in self.resources:
                return False
        if self.names:
            # resourceNames never grant list/watch/create (there is no name to check), as in Kubernetes.
            return name is not None and name in self.names
        return True


def load_rules(paths: Iterable[str | Path]) -> tuple[list[Rule], str | None]:
    """Rules of every Role and ClusterRole in the YAML files, and the user of the first ServiceAccount
    subject found in their bindings (`system:serviceaccount:<ns>:<name>`), if any."""
    rules: list[Rule] = []
    user: str | None = None
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
        for doc in docs:
            kind = doc.get("kind")
            meta = doc.get("metadata") or {}
            if kind in ("Role", "ClusterRole"):
                namespace = meta.get("namespace") if kind == "Role" else None
                for rule in doc.get("rules") or []:
                    rules.append(Rule(frozenset(rule.get("verbs") or []), frozenset(rule.get("apiGroups") or []),
                                      frozenset(rule.get("resources") or []),
                                      frozenset(rule.get("resourceNames") or []), namespace))
            elif kind in ("RoleBinding", "ClusterRoleBinding") and user is None:
                for subject in doc.get("subjects") or []:
                    if subject.get("kind") == "ServiceAccount":
                        ns = subject.get("namespace") or meta.get("namespace") or "default"
                        user = f"system:serviceaccount:{ns}:{subject.get('name')}"
                        break
                    if subject.get("kind") == "User":
                        user = subject.get("name")
                        break
    return rules, user


class Rbac:
    """Decides whether the bound token may do a request, and records what each token did."""

    def __init__(self, rules: list[Rule], user: str) -> None:
        self.rules = rules
        self.user = user
        self._usage: dict[str, set[Usage]] = {}
        self._lock = threading.Lock()

    def allows(self, verb: str, group: str, resource: str, subresource: str, name: str | None,
               namespace: str | None) -> bool:
        full = f"{resource}/{subresource}" if subresource else resource
        return any(rule.allows(verb, group, full, name, namespace) for rule in self.rules)

    def forbidden_message(self, verb: str, group: str, resource: str, subresource: str, name: str | None,
                          namespace: str | None) -> str:
        qualified = f"{resource}.{group}" if group else resource
        subject = f'{qualified} "{name}"' if name else qualified
        full = f"{resource}/{subresource}" if subresource else resource
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        return (f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{full}" in API group '
                f'"{group}"{where}')

    def record(self, token: str, usage: Usage) -> None:
        with self._lock:
            self._usage.setdefault(token, set()).add(usage)

    def usage(self, token: str) -> set[Usage]:
        with self._lock:
            return set(self._usage.get(token, set()))


def details_for(name: str | None, group: str, resource: str) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details
