"""The Gateway API's router: the weights of the two ``backendRefs`` of one rule of an HTTPRoute the operator owns.

The bot takes nothing else of the route over: it reads the rule (by its index or its ``name``), refuses it
unless its backends are exactly the stable and the canary Services of the route's namespace
(:class:`~bot.cluster.routes.RouteRefused`, naming what it found), and changes the share with one JSON patch
that first tests the rule's ``backendRefs`` as read (and its name), then sets the two ``weight`` fields. So
filters, timeouts, matches and the other rules stay as their owner wrote them, and a rule edited between the
read and the write is refused by the API server (422) instead of overwritten: the router reads it again and
decides again. Weights are relative: the canary's share is ``canary / (stable + canary)``; the bot writes
``100 - N`` and ``N``. A backend without a weight has the API's default, 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.cluster.client import JSON_PATCH, Api
from bot.cluster.informer import Source, custom
from bot.cluster.routes import Route, RouteRefused
from bot.core.config import Traffic
from bot.core.errors import ClusterError, Conflict, NotFound
from bot.core.text import foreign

HTTPROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")
HTTPROUTES = custom(*HTTPROUTE)
ATTEMPTS = 3  # reads and patches when the rule keeps changing under the bot (then a Conflict: transient)


@dataclass(frozen=True)
class Split:
    """The rule as read: where it is, its backendRefs, which of them is stable and which canary."""

    index: int
    refs: list[dict[str, Any]]
    stable: int
    canary: int
    prefix: str
    hostname: str

    def weight(self, which: int) -> int:
        return int(self.refs[which].get("weight", 1))

    @property
    def total(self) -> int:
        return self.weight(self.stable) + self.weight(self.canary)

    @property
    def share(self) -> int:
        """The canary's share in percent (0 when neither backend has weight)."""
        return round(100 * self.weight(self.canary) / self.total) if self.total else 0

    def is_share(self, percent: int) -> bool:
        return self.total > 0 and 100 * self.weight(self.canary) == percent * self.total


def _backend(ref: dict[str, Any], namespace: str) -> str:
    """A backendRef as people read it: `helloworld`, `other/helloworld`, `ServiceImport.multicluster.x-k8s.io/a`."""
    name = str(ref.get("name", ""))
    kind, group = str(ref.get("kind") or "Service"), str(ref.get("group") or "")
    where = str(ref.get("namespace") or namespace)
    if (kind, group) != ("Service", ""):
        name = f"{kind}.{group}/{name}" if group else f"{kind}/{name}"
    return name if where == namespace else f"{where}/{name}"


class GatewayRoute:
    """One rule of an HTTPRoute: the canary's share is its Service's ``backendRefs[].weight``."""

    def __init__(self, api: Api, traffic: Traffic) -> None:
        self.api = api
        self.route = traffic.route
        self.rule = traffic.rule
        self.services = (traffic.stable_service, traffic.canary_service)

    @property
    def name(self) -> str:
        return f"HTTPRoute {self.route} rule {self.rule}"

    async def _get(self) -> dict[str, Any]:
        g, v, r = HTTPROUTE
        return await self.api.call("get", "httproutes", self.route, self.api.custom.get_namespaced_custom_object,
                                   g, v, self.api.namespace, r, self.route)

    def _rule(self, route: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        rules = (route.get("spec") or {}).get("rules") or []
        if isinstance(self.rule, int):
            if self.rule < len(rules):
                return self.rule, rules[self.rule]
            raise RouteRefused(f"HTTPRoute `{self.route}` has {len(rules)} rule(s): there is no rule {self.rule}")
        for index, rule in enumerate(rules):
            if rule.get("name") == self.rule:
                return index, rule
        names = ", ".join(f"`{foreign(r['name'], 60)}`" if r.get("name") else str(i) for i, r in enumerate(rules))
        raise RouteRefused(f"HTTPRoute `{self.route}` has no rule named `{self.rule}` (its rules: {names or 'none'})")

    def split(self, route: dict[str, Any]) -> Split:
        """The rule's two backends, or :class:`RouteRefused` naming what the rule sends to instead."""
        index, rule = self._rule(route)
        refs = [ref for ref in rule.get("backendRefs") or [] if isinstance(ref, dict)]
        namespace = self.api.namespace
        found = [_backend(ref, namespace) for ref in refs]
        if sorted(found) != sorted(self.services):
            stable, canary = self.services
            sends = ", ".join(f"`{foreign(name, 80)}`" for name in found) or "no backend"
            raise RouteRefused(f"{self.name} sends to {sends}: the bot changes only a rule whose backendRefs are "
                               f"exactly the Services `{stable}` and `{canary}`; nothing was changed")
        matches = rule.get("matches") or [{}]
        hostnames = (route.get("spec") or {}).get("hostnames") or [""]
        return Split(index=index, refs=refs, stable=found.index(self.services[0]),
                     canary=found.index(self.services[1]),
                     prefix=str(((matches[0] or {}).get("path") or {}).get("value", "")), hostname=str(hostnames[0]))

    def _route(self, split: Split, which: int, weight: int) -> Route:
        return Route(mapping=self.route, service=self.services[which], prefix=split.prefix, hostname=split.hostname,
                     weight=weight, kind="HTTPRoute", rule=str(self.rule))

    async def stable_route(self) -> Route:
        split = self.split(await self._get())
        return self._route(split, 0, 100 - split.share if split.total else 0)

    async def canary_route(self) -> Route:
        split = self.split(await self._get())
        return self._route(split, 1, split.share)

    @property
    def source(self) -> Source:
        return HTTPROUTES

    def cached_routes(self, objects: Mapping[str, dict]) -> dict[str, Route | ClusterError]:
        route = objects.get(self.route)
        if route is None:
            missing = NotFound(f"httproutes/{self.route} not found", 404, "NotFound")
            return {"stable route": missing, "canary route": missing}
        try:
            split = self.split(route)
        except RouteRefused as exc:
            return {"stable route": exc, "canary route": exc}
        return {"stable route": self._route(split, 0, 100 - split.share if split.total else 0),
                "canary route": self._route(split, 1, split.share)}

    def _patch(self, split: Split, percent: int) -> list[dict[str, Any]]:
        at = f"/spec/rules/{split.index}"
        ops: list[dict[str, Any]] = [{"op": "test", "path": f"{at}/backendRefs", "value": split.refs}]
        if isinstance(self.rule, str):
            ops.insert(0, {"op": "test", "path": f"{at}/name", "value": self.rule})
        # "add" sets a member whether or not it is there (a backend without a weight has none)
        return [*ops, {"op": "add", "path": f"{at}/backendRefs/{split.stable}/weight", "value": 100 - percent},
                {"op": "add", "path": f"{at}/backendRefs/{split.canary}/weight", "value": percent}]

    async def set_canary_share(self, percent: int) -> bool:
        g, v, r = HTTPROUTE
        for _ in range(ATTEMPTS):
            split = self.split(await self._get())
            if split.is_share(percent):
                return False
            try:
                await self.api.call("patch", "httproutes", self.route, self.api.custom.patch_namespaced_custom_object,
                                    g, v, self.api.namespace, r, self.route, self._patch(split, percent),
                                    _content_type=JSON_PATCH)
                return True
            except ClusterError as exc:  # 422: the rule changed since it was read (its test failed): again
                if exc.status != 422:
                    raise
        raise Conflict(f"{self.name} changed between each of {ATTEMPTS} reads and the bot's patch: nothing was "
                       "changed (the step is tried again)", 409, "Conflict")
