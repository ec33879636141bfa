"""Leases of the namespace: the one leader election uses (:mod:`bot.cluster.leader`).

``cluster.leases`` is the part of :class:`~bot.cluster.kube.Cluster` that reaches them; a replacement
carries the resourceVersion that was read, so of two replicas taking the Lease at once one wins.
"""

from __future__ import annotations

from bot.cluster.client import Api
from bot.core.errors import NotFound


class Leases:
    """The Leases of the namespace."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def get(self, name: str) -> dict | None:
        """The Lease, or ``None`` when it does not exist."""
        try:
            return await self.api.call("get", "leases", name, self.api.coordination.read_namespaced_lease, name,
                                       self.api.namespace)
        except NotFound:
            return None

    async def create(self, body: dict) -> dict:
        return await self.api.call("create", "leases", body["metadata"]["name"],
                                   self.api.coordination.create_namespaced_lease, self.api.namespace, body)

    async def replace(self, body: dict) -> dict:
        """PUT with the resourceVersion in ``body``: raises :class:`Conflict` if someone wrote meanwhile."""
        name = body["metadata"]["name"]
        return await self.api.call("update", "leases", name, self.api.coordination.replace_namespaced_lease, name,
                                   self.api.namespace, body)
