"""What every traffic router answers: a track's :class:`Route`, the :class:`TrafficRouter` protocol, and
:class:`RouteRefused`, the error of a route that is not as the bot expects (it is changed by no router)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.cluster.informer import Source
from bot.core.errors import ClusterError


@dataclass(frozen=True)
class Route:
    """The route sending traffic to one track, as its gateway has it.

    ``mapping`` is the object's name (an Emissary Mapping, or the HTTPRoute whose rule holds both tracks);
    ``service`` the Service it sends to; ``weight`` the track's share in percent (``None``: no explicit
    weight, Emissary gives it what the others leave).
    """

    mapping: str
    service: str
    prefix: str
    hostname: str
    weight: int | None
    kind: str = "Mapping"  # or "HTTPRoute"
    rule: str = ""  # an HTTPRoute's rule: its name, else its index

    @property
    def label(self) -> str:
        """For people, in mrkdwn: "Mapping `helloworld-canary`", "HTTPRoute `greeter` rule `0`"."""
        return f"{self.kind} `{self.mapping}`" + (f" rule `{self.rule}`" if self.rule else "")


class RouteRefused(ClusterError):
    """The route is not one the bot may change (no such rule, not exactly the two Services): nothing is written.

    Not transient (422, like an object the API server refuses): a step that meets it fails, status shows it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 422, "RouteNotAsExpected")


class TrafficRouter(Protocol):
    """The service's routes, and the canary's share of its traffic in percent."""

    @property
    def name(self) -> str:
        """What it changes, for people: "Mapping helloworld-canary", "HTTPRoute greeter rule 0"."""
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
        objects by name; a route not there is a :class:`bot.core.errors.NotFound`, as the API server answers."""
        ...
