"""Emissary/Ambassador's router: two Mappings with the same prefix share traffic, the canary's ``spec.weight``
is its share in percent and the stable Mapping (no weight) takes the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.cluster.client import MERGE, Api
from bot.cluster.informer import Source, custom
from bot.cluster.routes import Route, RouteRefused
from bot.core.errors import ClusterError, NotFound
from bot.core.text import foreign

MAPPING = ("getambassador.io", "v3alpha1", "mappings")
MAPPINGS = custom(*MAPPING)


def route_from(mapping: dict) -> Route:
    spec = mapping.get("spec", {})
    weight = spec.get("weight")
    return Route(
        mapping=mapping.get("metadata", {}).get("name", ""),
        service=str(spec.get("service", "")),
        prefix=str(spec.get("prefix", "")),
        hostname=str(spec.get("hostname", spec.get("host", ""))),
        weight=None if weight is None else int(weight),
    )


class EmissaryMappings:
    """Emissary/Ambassador: the canary Mapping's ``spec.weight`` (the stable Mapping takes the rest)."""

    def __init__(self, api: Api, stable_mapping: str, canary_mapping: str) -> None:
        self.api = api
        self.stable_mapping = stable_mapping
        self.mapping = canary_mapping

    @property
    def name(self) -> str:
        return f"Mapping {self.mapping}"

    async def _get(self, name: str) -> Route:
        g, v, r = MAPPING
        return route_from(await self.api.call("get", "mappings", name, self.api.custom.get_namespaced_custom_object,
                                              g, v, self.api.namespace, r, name))

    async def stable_route(self) -> Route:
        return await self._get(self.stable_mapping)

    async def canary_route(self) -> Route:
        return await self._get(self.mapping)

    @property
    def source(self) -> Source:
        return MAPPINGS

    def cached_routes(self, objects: Mapping[str, dict]) -> dict[str, Route | ClusterError]:
        found: dict[str, Route | ClusterError] = {}
        for key, name in (("stable route", self.stable_mapping), ("canary route", self.mapping)):
            obj = objects.get(name)
            found[key] = route_from(obj) if obj is not None else NotFound(f"mappings/{name} not found", 404, "NotFound")
        return found

    async def _pair(self) -> Route:
        """The canary Mapping, refused unless it shares the stable one's traffic (same prefix and hostname)."""
        stable, canary = await asyncio.gather(self.stable_route(), self.canary_route())
        if (canary.prefix, canary.hostname) != (stable.prefix, stable.hostname):
            def where(route: Route) -> str:
                return f"prefix `{foreign(route.prefix, 80)}`, hostname `{foreign(route.hostname, 80)}`"

            raise RouteRefused(f"Mapping `{self.mapping}` ({where(canary)}) does not share the traffic of Mapping "
                               f"`{self.stable_mapping}` ({where(stable)}): Emissary splits only Mappings with the "
                               "same prefix and hostname; nothing was changed")
        return canary

    async def set_canary_share(self, percent: int) -> bool:
        if ((await self._pair()).weight or 0) == percent:
            return False
        g, v, r = MAPPING
        await self.api.call("patch", "mappings", self.mapping, self.api.custom.patch_namespaced_custom_object, g, v,
                            self.api.namespace, r, self.mapping, {"spec": {"weight": percent}}, _content_type=MERGE)
        return True
