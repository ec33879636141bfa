"""The sandbox's gateway controller: HAProxy's servers follow the emulated cluster's routes and processes.

As Emissary watches Mappings (or a Gateway API implementation watches HTTPRoutes) and programs its proxy,
:class:`ProxyRoutes` watches one service's routes in one emulated cluster, and its track processes
(:class:`~sandbox.processes.Fleet`), and programs one HAProxy backend through the runtime API
(:mod:`sandbox.haproxy`): each track's server gets its process's address (maintenance while it has none) and
its weight from the routes. So the traffic split the bot sets is done by a real proxy, and what the canary
judge sees is what the proxy did.

The weights, in percent (``{"stable": 75, "canary": 25}``), come from the service's router:

- ``emissary`` (:func:`mapping_weights`): two Mappings with the same prefix share the traffic; explicit
  ``spec.weight`` values are percentages, the Mappings without one split what is left evenly; no canary
  Mapping, no canary traffic;
- ``gateway-api`` (:func:`httproute_weights`): the ``weight`` of the stable and canary Services'
  ``backendRefs`` in the HTTPRoute's rule (by index or ``name``), relative to each other, 1 when unset;
  a missing route or rule sends nothing anywhere (HAProxy answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.core.config import Traffic
from bot.core.tasks import cancel
from sandbox.haproxy import SERVERS, HAProxyServer

log = logging.getLogger(__name__)

MAPPINGS = ("getambassador.io", "v3alpha1", "mappings")
HTTPROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")
ROUTE_KINDS = ("Mapping", "HTTPRoute")
Weights = dict[str, int]


def canary_share(stable_weight: int | None, canary_weight: int | None, *, canary_route: bool = True) -> float:
    """The canary's share of traffic (0..1) under Emissary's rule for Mappings with the same prefix.

    Explicit weights are percentages; the Mappings without one split what is left evenly. Without a
    canary Mapping the canary gets nothing.
    """
    if not canary_route:
        return 0.0
    explicit = sum(w for w in (stable_weight, canary_weight) if w is not None)
    rest = max(0, 100 - explicit)
    unweighted = [w for w in (stable_weight, canary_weight) if w is None]
    canary = canary_weight if canary_weight is not None else rest / len(unweighted)
    total = explicit + (rest if unweighted else 0)
    if total <= 0:
        return 0.0
    return max(0.0, min(1.0, canary / total))


def percent(stable: float, canary: float) -> Weights:
    """Two relative weights as HAProxy weights in percent (both 0 when neither has any)."""
    total = stable + canary
    if total <= 0:
        return {"stable": 0, "canary": 0}
    share = round(100 * canary / total)
    return {"stable": 100 - share, "canary": share}


def mapping_weights(kube: Any, namespace: str, stable: str, canary: str) -> Weights:
    """The tracks' weights as Emissary gives them from the two Mappings stored in the emulator."""

    def weight(mapping: Mapping[str, Any] | None) -> int | None:
        value = ((mapping or {}).get("spec") or {}).get("weight")
        return None if value is None else int(value)

    stable_map = kube.get(*MAPPINGS, namespace, stable)
    canary_map = kube.get(*MAPPINGS, namespace, canary)
    share = canary_share(weight(stable_map), weight(canary_map), canary_route=canary_map is not None)
    return percent(1 - share, share)


def httproute_weights(kube: Any, namespace: str, traffic: Traffic) -> Weights:
    """The tracks' weights as a Gateway API implementation gives them from the HTTPRoute's rule."""
    route = kube.get(*HTTPROUTES, namespace, traffic.route) or {}
    rules = (route.get("spec") or {}).get("rules") or []
    if isinstance(traffic.rule, int):
        rule = rules[traffic.rule] if traffic.rule < len(rules) else {}
    else:
        rule = next((r for r in rules if r.get("name") == traffic.rule), {})
    weights = {str(ref.get("name")): int(ref.get("weight", 1)) for ref in rule.get("backendRefs") or []
               if isinstance(ref, dict) and not ref.get("namespace") and (ref.get("kind") or "Service") == "Service"}
    return percent(weights.get(traffic.stable_service, 0), weights.get(traffic.canary_service, 0))


def route_weights(kube: Any, namespace: str, service: str, traffic: Traffic | None = None) -> Callable[[], Weights]:
    """The weights reader of ``service`` in one cluster: its HTTPRoute's rule, else its Mappings."""
    if traffic is not None and traffic.router == "gateway-api":
        return lambda: httproute_weights(kube, namespace, traffic)
    return lambda: mapping_weights(kube, namespace, service, f"{service}-canary")


class ProxyRoutes:
    """Keeps one HAProxy backend in step with a service's routes and track processes in one cluster."""

    def __init__(self, kube: Any, proxy: HAProxyServer, backend: str, endpoints: Callable[[], Mapping[str, str]],
                 weights: Callable[[], Weights], *, check_interval: float = 1.0) -> None:
        """``endpoints``: the live processes by track (``{"stable": "http://127.0.0.1:8001"}``, a Fleet's);
        ``weights``: the routes' weights by track (:func:`route_weights`)."""
        self.kube = kube
        self.proxy = proxy
        self.backend = backend
        self.endpoints = endpoints
        self.weights = weights
        self.check_interval = check_interval
        self.applied: dict[str, tuple[str, int]] = {}  # track -> (address or "", weight) as HAProxy has it
        self.changes = 0  # runtime API changes made (each server's address, weight or state)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> ProxyRoutes:
        """Program the backend as things are now, then follow the routes' and the processes' changes."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.kube.subscribe(self._observe)
        await self.reconcile()
        self._task = asyncio.create_task(self._follow(), name=f"proxy-routes-{self.backend}")
        return self

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        await cancel(task)

    def nudge(self) -> None:
        """Look again soon (a Fleet's ``on_change``: a process started or stopped); any thread."""
        if self._loop is None or self._loop.is_closed():
            return
        try:
            same = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same = False
        if same:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _observe(self, _event: str, obj: Mapping[str, Any]) -> None:
        """Store listener: a route changed (any Mapping or HTTPRoute: names are compared on the next look)."""
        if (obj or {}).get("kind") in ROUTE_KINDS:
            self.nudge()

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.check_interval)
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("cannot bring HAProxy's backend %s in line with the routes", self.backend)

    def desired(self) -> dict[str, tuple[str, int]]:
        """Each track's (process address or "", weight) as the cluster asks for it now."""
        live, weights = self.endpoints(), self.weights()
        return {track: (live.get(track, "").removeprefix("http://"), weights.get(track, 0)) for track in SERVERS}

    async def reconcile(self) -> bool:
        """Change what differs between HAProxy's servers and :meth:`desired`; whether anything changed."""
        changed = False
        for track, (address, weight) in self.desired().items():
            was_address, was_weight = self.applied.get(track, ("", -1))
            if (address, weight) == (was_address, was_weight):
                continue
            await self.proxy.set_server(
                self.backend, track, address=address if address and address != was_address else None,
                weight=weight if weight != was_weight else None,
                ready=bool(address) if bool(address) != bool(was_address) or track not in self.applied else None)
            self.applied[track] = (address, weight)
            self.changes += 1
            changed = True
        return changed
