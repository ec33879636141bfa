"""Leader election on a ``coordination.k8s.io/v1`` Lease, so exactly one replica does scheduled work.

The rules follow Kubernetes' own leader election (client-go ``tools/leaderelection``):

* the Lease's ``spec.holderIdentity`` names the leader; ``renewTime`` is when it last renewed and
  ``leaseDurationSeconds`` how long others wait after that before taking over;
* a candidate acquires a Lease that does not exist (create), has no holder (released), or whose
  ``renewTime + leaseDurationSeconds`` is in the past (the holder stopped renewing);
  ``leaseTransitions`` counts changes of holder and ``acquireTime`` is set on each change;
* the holder renews by writing a fresh ``renewTime`` (about every third of the duration);
* on shutdown the holder releases: ``holderIdentity`` cleared, so a successor need not wait;
* every write is a PUT carrying the ``resourceVersion`` that was read, so two candidates racing for
  the same Lease cannot both win: the loser gets ``409 Conflict`` and stays a follower.

A leader that cannot renew stops calling itself leader once its renew deadline (two thirds of the
duration after its last successful renewal began) has passed, before anyone else may take over.

Slow answers do not make the Lease change hands while its holder lives: the ``renewTime`` written is when
the write was sent (the step's time plus what its read took, in whole seconds), not when the step began,
and a holder whose calls are slow renews that much earlier, so a renewal that lands late still lands
before others may count the Lease as expired. A holder whose recent renewals were slow also says so in
the Lease itself: the ``leaseDurationSeconds`` it writes is its duration plus twice the slowest of its
last renewals (:meth:`LeaderElector.slack`, to the nearest second, at most the duration again), and its own renew
deadline grows by as much. So every candidate, however fast its own reads, waits for a renewal on its
way as long as the holder's renewals take; nothing depends on the candidate noticing the slowness. A
candidate whose read was slow (a second or more) and found the Lease expired also looks again after as
long before it takes over: a holder's renewal on its way meanwhile keeps the Lease its holder's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cluster.kube import Cluster
from bot.core.errors import ClusterError, Conflict
from bot.core.times import parse_time

log = logging.getLogger(__name__)


def default_identity() -> str:
    """``hostname_pid``: unique per process on a node, readable in ``kubectl get lease -o yaml``."""
    return f"{socket.gethostname()}_{os.getpid()}"


def micro_time(value: datetime) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 in UTC with microseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version(lease: dict) -> str:
    return str((lease.get("metadata") or {}).get("resourceVersion") or "")


class LeaderElector:
    """One candidate for one Lease. Call :meth:`step` periodically and :meth:`release` on shutdown.

    ``cluster`` is an async factory for the :class:`~bot.kube.Cluster` (``services.cluster``).
    Time is passed in (``now``) so tests can drive it.
    """

    def __init__(self, cluster: Callable[[], Awaitable[Cluster]], *, name: str, identity: str,
                 lease_seconds: int, timer: Callable[[], float] = time.monotonic) -> None:
        self._cluster = cluster
        self.timer = timer  # monotonic seconds: how long the calls of a step take (its ``now`` stands still)
        self.call_seconds = 0.0  # how long the last renewal's calls took (at most half the renew interval)
        self._calls: deque[float] = deque(maxlen=3)  # how long the last renewals' calls took
        self.name = name
        self.identity = identity
        self.lease_seconds = int(lease_seconds)
        self.holder = ""  # last observed holder ("" when none)
        self.transitions = 0
        self._leading_until: datetime | None = None
        self._last_renew: datetime | None = None
        self.leading_since: datetime | None = None  # when this candidate last became leader
        self._last_error = ""  # the last problem reported, so a lasting one is logged once
        self._lock = asyncio.Lock()  # schedules and releases share one candidate: one step at a time

    @property
    def renew_interval(self) -> float:
        """Seconds between renewals: a third of the lease duration."""
        return max(1.0, self.lease_seconds / 3)

    @property
    def renew_deadline(self) -> float:
        return self.lease_seconds * 2 / 3

    @property
    def slack(self) -> int:
        """Seconds the Lease is written to last beyond its duration: twice the slowest of the last renewals'
        calls, to the nearest second, at most the duration again (0 while renewals take under a quarter second)."""
        return min(self.lease_seconds, math.floor(2 * max(self._calls, default=0.0) + 0.5))

    @property
    def problem(self) -> str:
        """Why this candidate cannot renew or acquire the Lease ("" when it can)."""
        return f"cannot reach the cluster to renew the leader Lease ({self._last_error})" if self._last_error else ""

    def is_leader(self, now: datetime) -> bool:
        """Whether this candidate holds the Lease and is still within its renew deadline."""
        return self._leading_until is not None and now < self._leading_until

    def _body(self, lease: dict | None, now: datetime, *, acquire: bool, slack: int = 0) -> dict:
        spec: dict[str, Any] = dict((lease or {}).get("spec") or {})
        if acquire:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
            spec["acquireTime"] = micro_time(now)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self.lease_seconds + slack,
                    renewTime=micro_time(now))
        metadata: dict[str, Any] = {"name": self.name}
        if lease:
            meta = lease.get("metadata") or {}
            metadata.update({k: meta[k] for k in ("namespace", "resourceVersion", "labels") if k in meta})
        else:
            metadata["labels"] = {"app.kubernetes.io/managed-by": "hello-chatops"}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    @staticmethod
    def expired(lease: dict, now: datetime) -> bool:
        """No holder, or the holder has not renewed within ``leaseDurationSeconds``."""
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return True
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or 0)
        if renewed is None:
            return True
        return renewed + timedelta(seconds=duration) < now

    def _won(self, lease: dict, now: datetime, slack: int = 0) -> bool:
        self._last_error = ""
        if self._leading_until is None or now >= self._leading_until:
            self.leading_since = now
        self.holder = self.identity
        self.transitions = int((lease.get("spec") or {}).get("leaseTransitions") or 0)
        self._last_renew = now
        self._leading_until = now + timedelta(seconds=self.renew_deadline + slack)
        return True

    def _lost(self, holder: str) -> bool:
        if self._leading_until is not None and holder != self.identity:
            log.info("lease %s: no longer leading (holder now %r)", self.name, holder or "none")
            self._leading_until = None
        self.holder = holder
        return False

    async def step(self, now: datetime) -> bool:
        """Acquire or renew as needed; returns whether this candidate leads after the step.

        A leader renews only once ``renew_interval`` has passed since its last renewal, so calling
        this often costs one read at most. Cluster errors are logged and leave the state as it was
        (a leader keeps leading until its renew deadline).
        """
        async with self._lock:
            return await self._step(now)

    async def _step(self, now: datetime) -> bool:
        if self.is_leader(now) and self._last_renew is not None and \
                (now - self._last_renew).total_seconds() < self.renew_interval - self.call_seconds:
            return True  # not due yet (due earlier by what the last renewal's calls took)
        try:
            return await self._try(now)
        except Conflict:
            log.info("lease %s: lost a race for the lease", self.name)
            return self._lost(self.holder if self.holder != self.identity else "")
        except ClusterError as exc:
            # say it once per distinct problem, not every few seconds while the cluster is away
            level = logging.DEBUG if str(exc) == self._last_error else logging.WARNING
            log.log(level, "lease %s: %s", self.name, exc)
            self._last_error = str(exc)
            return self.is_leader(now)

    async def _try(self, now: datetime) -> bool:
        cluster = await self._cluster()
        began = self.timer()
        lease = await cluster.leases.get(self.name)
        sent = now + timedelta(seconds=int(self.timer() - began))  # when the write goes, in the step's time
        if lease is None:
            created = await cluster.leases.create(self._body(None, sent, acquire=True))
            log.info("lease %s: created, %s leads", self.name, self.identity)
            return self._won(created, now)
        holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
        if holder == self.identity:
            slack = self.slack  # what the Lease written says of the renewals to come
            renewed = await cluster.leases.replace(self._body(lease, sent, acquire=False, slack=slack))
            self._calls.append(self.timer() - began)
            self.call_seconds = min(self._calls[-1], self.renew_interval / 2)
            return self._won(renewed, now, slack)
        if not self.expired(lease, now):
            return self._lost(holder)
        read = self.timer() - began
        if read >= 1.0:  # slow answers: the holder's renewal may be on its way; look again after as long
            await asyncio.sleep(min(read, self.renew_interval))
            again = await cluster.leases.get(self.name)
            if again is None or _version(again) != _version(lease):
                return self._lost(str(((again or {}).get("spec") or {}).get("holderIdentity") or ""))
        taken = await cluster.leases.replace(self._body(lease, sent, acquire=True))
        log.info("lease %s: %s took over from %r", self.name, self.identity, holder or "nobody")
        return self._won(taken, now)

    async def release(self, now: datetime) -> bool:
        """Give the Lease up (clear ``holderIdentity``) if this candidate holds it. Returns whether released."""
        was_leader = self._leading_until is not None
        self._leading_until = None
        if not was_leader:
            return False
        try:
            cluster = await self._cluster()
            lease = await cluster.leases.get(self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return False
            body = self._body(lease, now, acquire=False)
            body["spec"]["holderIdentity"] = ""
            body["spec"]["leaseDurationSeconds"] = 1
            await cluster.leases.replace(body)
        except ClusterError as exc:
            log.warning("lease %s: cannot release: %s", self.name, exc)
            return False
        self.holder = ""
        log.info("lease %s: released by %s", self.name, self.identity)
        return True
