"""Traffic routers: how the service's routes are read and the canary's share set, one implementation per gateway.

The router is the one way to the gateway's objects: a release step, planning, status and ``python -m bot
check`` all ask the service's :class:`TrafficRouter` (``cluster.traffic``, chosen by :func:`router_for` from
the service's configuration); nothing else reads or patches a Mapping. Today the one implementation is
:class:`EmissaryMappings` (the seed's Ambassador/Emissary: two Mappings with the same prefix, the canary's
``spec.weight`` is its share). Another gateway (the Gateway API's HTTPRoute ``backendRefs`` weights) is
another class with the same methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.cluster.client import MERGE, Api
from bot.cluster.informer import Source, custom
from bot.core.config import Config
from bot.core.errors import ClusterError, NotFound

MAPPING = ("getambassador.io", "v3alpha1", "mappings")
MAPPINGS = custom(*MAPPING)


@dataclass(frozen=True)
class Route:
    """An Emissary Mapping sending traffic to one track."""

    mapping: str
    service: str
    prefix: str
    hostname: str
    weight: int | None  # None: no explicit weight (Emissary gives it what the others leave)


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


class TrafficRouter(Protocol):
    """The service's routes, and the canary's share of its traffic in percent."""

    @property
    def name(self) -> str:
        """What it changes, for people: "Mapping helloworld-canary"."""
        ...

    async def stable_route(self) -> Route:
        """The stable track's route as the gateway has it."""
        ...

    async def canary_route(self) -> Route:
        """The canary's route as the gateway has it (its weight ``None`` when none is set)."""
        ...

    async def set_canary_share(self, percent: int) -> bool:
        """Give the canary ``percent`` of the traffic (idempotent); whether anything had to change."""
        ...

    @property
    def source(self) -> Source:
        """Where a watch cache follows the routes' objects (:mod:`bot.cluster.cache`)."""
        ...

    def cached_routes(self, objects: Mapping[str, dict]) -> dict[str, Route | ClusterError]:
        """The stable and canary routes (keys "stable route", "canary route") read from a cache of the source's
        objects by name; a route not there is a :class:`NotFound` as the API server would answer."""
        ...


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

    async def set_canary_share(self, percent: int) -> bool:
        if ((await self.canary_route()).weight or 0) == percent:
            return False
        g, v, r = MAPPING
        await self.api.call("patch", "mappings", self.mapping, self.api.custom.patch_namespaced_custom_object, g, v,
                            self.api.namespace, r, self.mapping, {"spec": {"weight": percent}}, _content_type=MERGE)
        return True


def router_for(api: Api, config: Config) -> TrafficRouter:
    """The router of a service in one environment (its Mappings, as ``config`` names them)."""
    return EmissaryMappings(api, config.stable_mapping, config.canary_mapping)
