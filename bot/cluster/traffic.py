"""Traffic routers: how the service's routes are read and the canary's share set, one implementation per gateway.

The router is the one way to the gateway's objects: a release step, planning, status and ``python -m bot
check`` all ask the service's :class:`TrafficRouter` (``cluster.traffic``, chosen by :func:`router_for` from
the service's configuration, ``Config.traffic``); nothing else reads or patches a Mapping or an HTTPRoute.
Two implementations: :class:`EmissaryMappings` (``router: emissary``, the default: two Mappings with the same
prefix, the canary's ``spec.weight`` is its share; :mod:`bot.cluster.mappings`) and :class:`GatewayRoute`
(``router: gateway-api``: the weights of the two ``backendRefs`` of one rule of an HTTPRoute;
:mod:`bot.cluster.httproutes`). Another gateway is another class with the same methods, chosen here.
"""

from __future__ import annotations

from bot.cluster.client import Api
from bot.cluster.httproutes import HTTPROUTE, GatewayRoute
from bot.cluster.mappings import MAPPING, EmissaryMappings, route_from
from bot.cluster.routes import Route, RouteRefused, TrafficRouter
from bot.core.config import Config

__all__ = ["HTTPROUTE", "MAPPING", "EmissaryMappings", "GatewayRoute", "Route", "RouteRefused", "TrafficRouter",
           "route_from", "router_for"]


def router_for(api: Api, config: Config) -> TrafficRouter:
    """The router of a service in one environment: its HTTPRoute's rule, or its Mappings (``config`` names them)."""
    if config.traffic.router == "gateway-api":
        return GatewayRoute(api, config.traffic)
    return EmissaryMappings(api, config.stable_mapping, config.canary_mapping)
