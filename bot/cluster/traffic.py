"""Traffic routers: how the canary's share of the traffic is read and set, one implementation per gateway.

A release step never patches a gateway object itself: it asks the service's :class:`TrafficRouter`. Today
the one implementation is :class:`EmissaryMappings` (the seed's Ambassador/Emissary: two Mappings with the
same prefix, the canary's ``spec.weight`` is its share). Another gateway (the Gateway API's HTTPRoute
``backendRefs`` weights) is another class with the same three methods.
"""

from __future__ import annotations

from typing import Protocol

from bot.cluster.kube import Cluster, Route, route_from


class TrafficRouter(Protocol):
    """The canary's share of a service's traffic, in percent."""

    @property
    def name(self) -> str:
        """What it changes, for people: "Mapping helloworld-canary"."""
        ...

    async def canary_route(self) -> Route:
        """The canary's route as the gateway has it (its weight ``None`` when none is set)."""
        ...

    async def set_canary_share(self, percent: int) -> bool:
        """Give the canary ``percent`` of the traffic (idempotent); whether anything had to change."""
        ...


class EmissaryMappings:
    """Emissary/Ambassador: the canary Mapping's ``spec.weight`` (the stable Mapping takes the rest)."""

    def __init__(self, cluster: Cluster, canary_mapping: str) -> None:
        self.cluster = cluster
        self.mapping = canary_mapping

    @property
    def name(self) -> str:
        return f"Mapping {self.mapping}"

    async def canary_route(self) -> Route:
        return route_from(await self.cluster.get_mapping(self.mapping))

    async def set_canary_share(self, percent: int) -> bool:
        if ((await self.canary_route()).weight or 0) == percent:
            return False
        await self.cluster.patch_mapping(self.mapping, {"spec": {"weight": percent}})
        return True


def router_for(cluster: Cluster, canary_mapping: str) -> TrafficRouter:
    """The router of a service (its canary Mapping, as its configuration names it)."""
    return EmissaryMappings(cluster, canary_mapping)
