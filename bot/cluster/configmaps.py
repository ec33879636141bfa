"""ConfigMaps of the namespace: where the bot keeps its state (requests and their locks, releases, holds,
schedules, alert groups).

``cluster.configmaps`` is the part of :class:`~bot.cluster.kube.Cluster` that reaches them. State is
changed through the one compare-and-swap store on top of it (:mod:`bot.cluster.store`): read, change,
:meth:`ConfigMaps.replace` with the resourceVersion that was read.
"""

from __future__ import annotations

from kubernetes.aio import client as kclient

from bot.cluster.client import Api
from bot.core.errors import NotFound

MANAGED = {"app.kubernetes.io/managed-by": "hello-chatops"}


class ConfigMaps:
    """The ConfigMaps of the namespace."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def get(self, name: str) -> dict | None:
        """The ConfigMap, or ``None`` when it does not exist."""
        try:
            return await self.api.call("get", "configmaps", name, self.api.core.read_namespaced_config_map, name,
                                       self.api.namespace)
        except NotFound:
            return None

    async def list(self, label_selector: str) -> list[dict]:
        found = await self.api.call("list", "configmaps", None, self.api.core.list_namespaced_config_map,
                                    self.api.namespace, label_selector=label_selector)
        return found.get("items", [])

    async def create(self, name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict:
        """Create it (labelled as the bot's, unless ``labels`` says otherwise); a :class:`Conflict` if it exists."""
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self.api.namespace, "labels": labels or dict(MANAGED)},
                "data": data}
        return await self.api.call("create", "configmaps", name, self.api.core.create_namespaced_config_map,
                                   self.api.namespace, body)

    async def replace(self, cm: dict) -> dict:
        """PUT with the resourceVersion in ``cm``: raises :class:`Conflict` if someone wrote meanwhile."""
        name = cm["metadata"]["name"]
        return await self.api.call("update", "configmaps", name, self.api.core.replace_namespaced_config_map, name,
                                   self.api.namespace, cm)

    async def delete(self, name: str, *, resource_version: str = "") -> bool:
        """Delete it; returns whether it existed. With ``resource_version``, only that version of it (the
        delete's precondition): a :class:`Conflict` if it changed since."""
        options = {"body": kclient.V1DeleteOptions(preconditions=kclient.V1Preconditions(
            resource_version=resource_version))} if resource_version else {}
        try:
            await self.api.call("delete", "configmaps", name, self.api.core.delete_namespaced_config_map, name,
                                self.api.namespace, **options)
        except NotFound:
            return False
        return True
