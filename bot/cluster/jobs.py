"""Jobs of the namespace: the load a load test or an analysed step puts on a track (``cluster.jobs``).

A Job is created whole (:mod:`bot.release.load` writes its manifest), read for its status, listed by label,
and deleted with its pods (``propagationPolicy: Background``: a Job deleted without one orphans its pods).
Its pods' logs are what its container printed (``hey``'s CSV).
"""

from __future__ import annotations

from bot.cluster.client import Api
from bot.core.errors import NotFound

JOB_NAME = "batch.kubernetes.io/job-name"  # the label the Job controller puts on its pods


class Jobs:
    """The Jobs of the namespace, and their pods' logs."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def create(self, body: dict) -> dict:
        """Create it; a :class:`Conflict` when a Job of that name exists."""
        return await self.api.call("create", "jobs", body["metadata"]["name"], self.api.batch.create_namespaced_job,
                                   self.api.namespace, body)

    async def get(self, name: str) -> dict | None:
        """The Job, or ``None`` when it does not exist (it ended and was deleted, or someone deleted it)."""
        try:
            return await self.api.call("get", "jobs", name, self.api.batch.read_namespaced_job, name,
                                       self.api.namespace)
        except NotFound:
            return None

    async def list(self, label_selector: str) -> list[dict]:
        found = await self.api.call("list", "jobs", None, self.api.batch.list_namespaced_job, self.api.namespace,
                                    label_selector=label_selector)
        return found.get("items", [])

    async def delete(self, name: str) -> bool:
        """Delete it and its pods; returns whether it existed."""
        try:
            await self.api.call("delete", "jobs", name, self.api.batch.delete_namespaced_job, name,
                                self.api.namespace, propagation_policy="Background")
        except NotFound:
            return False
        return True

    async def logs(self, name: str) -> list[str]:
        """The logs of the Job's pods (what each one's container printed), oldest pod first."""
        found = await self.api.call("list", "pods", None, self.api.core.list_namespaced_pod, self.api.namespace,
                                    label_selector=f"{JOB_NAME}={name}")
        pods = sorted(found.get("items", []), key=lambda p: p["metadata"].get("creationTimestamp") or "")
        out = []
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            try:
                text = await self.api.call("get", "pods/log", pod_name, self.api.core.read_namespaced_pod_log,
                                           pod_name, self.api.namespace)
            except NotFound:
                continue
            out.append(text if isinstance(text, str) else "")
        return out
