"""The service's workloads: its Deployments (read, patched, scaled, watched through a rollout), and the
ReplicaSets and Pods behind them (a previous revision's image, the digest the ready pods run).

Each is a part of :class:`~bot.cluster.kube.Cluster`: ``cluster.deployments``, ``cluster.replicasets``,
``cluster.pods``. Objects are the API's JSON; :mod:`bot.cluster.deployments` reads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.cluster.client import Api


class Deployments:
    """The Deployments of the namespace."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def get(self, name: str) -> dict:
        return await self.api.call("get", "deployments", name, self.api.apps.read_namespaced_deployment, name,
                                   self.api.namespace)

    async def patch(self, name: str, patch: dict | list) -> dict:
        """Strategic-merge patch (dict) or JSON patch (list) on a Deployment."""
        return await self.api.call("patch", "deployments", name, self.api.apps.patch_namespaced_deployment, name,
                                   self.api.namespace, patch)

    async def scale(self, name: str, replicas: int) -> dict:
        return await self.api.call("patch", "deployments/scale", name,
                                   self.api.apps.patch_namespaced_deployment_scale, name, self.api.namespace,
                                   {"spec": {"replicas": replicas}})

    async def watch(self, name: str, *, timeout: float, resource_version: str | None = None) -> AsyncIterator[dict]:
        """Yield the Deployment each time it changes, for at most ``timeout`` seconds."""
        async for obj in self.api.watch("deployments", name, self.api.apps.list_namespaced_deployment,
                                        timeout=timeout, resource_version=resource_version):
            yield obj


class ReplicaSets:
    """The ReplicaSets of the namespace (each revision of a Deployment is one)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def list(self, label_selector: str) -> list[dict]:
        found = await self.api.call("list", "replicasets", None, self.api.apps.list_namespaced_replica_set,
                                    self.api.namespace, label_selector=label_selector)
        return found.get("items", [])


class Pods:
    """The Pods of the namespace."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def list(self, label_selector: str) -> list[dict]:
        found = await self.api.call("list", "pods", None, self.api.core.list_namespaced_pod, self.api.namespace,
                                    label_selector=label_selector)
        return found.get("items", [])
