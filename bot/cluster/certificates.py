"""cert-manager Certificates: read, watched through a re-issuance, renewed through the status subresource.

``cluster.certificates`` is the part of :class:`~bot.cluster.kube.Cluster` that reaches them;
:func:`cert_from` reads one into the :class:`CertState` that status, ``/hello cert`` and the renewal step
show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.cluster.client import JSON_PATCH, MERGE, Api, Condition
from bot.core.times import parse_time

CERTIFICATE = ("cert-manager.io", "v1", "certificates")


@dataclass(frozen=True)
class CertState:
    name: str
    ready: bool
    reason: str
    message: str
    not_before: datetime | None
    not_after: datetime | None
    renewal_time: datetime | None
    revision: int
    issuing: Condition | None
    failed_attempts: int
    last_failure: datetime | None
    dns_names: tuple[str, ...] = ()

    def days_left(self, now: datetime) -> float | None:
        if self.not_after is None:
            return None
        return (self.not_after - now).total_seconds() / 86400


def cert_from(cert: dict) -> CertState:
    status = cert.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conds.get("Ready", {})
    issuing = conds.get("Issuing")
    return CertState(
        name=cert.get("metadata", {}).get("name", ""),
        ready=ready.get("status") == "True",
        reason=ready.get("reason") or "",
        message=ready.get("message") or "",
        not_before=parse_time(status.get("notBefore")),
        not_after=parse_time(status.get("notAfter")),
        renewal_time=parse_time(status.get("renewalTime")),
        revision=int(status.get("revision") or 0),
        issuing=Condition.of(issuing) if issuing else None,
        failed_attempts=int(status.get("failedIssuanceAttempts") or 0),
        last_failure=parse_time(status.get("lastFailureTime")),
        dns_names=tuple(cert.get("spec", {}).get("dnsNames") or ()),
    )


class Certificates:
    """The Certificates of the namespace; ``default`` is the service's (``HELLO_CERTIFICATE``)."""

    def __init__(self, api: Api, default: str) -> None:
        self.api = api
        self.default = default

    async def get(self, name: str | None = None) -> dict:
        g, v, r = CERTIFICATE
        name = name or self.default
        return await self.api.call("get", "certificates", name, self.api.custom.get_namespaced_custom_object, g, v,
                                   self.api.namespace, r, name)

    async def patch_status(self, name: str, patch: dict | list) -> dict:
        """Merge patch (dict) or JSON patch (list) on the status subresource, as ``cmctl renew`` does."""
        g, v, r = CERTIFICATE
        ctype = JSON_PATCH if isinstance(patch, list) else MERGE
        return await self.api.call("patch", "certificates/status", name,
                                   self.api.custom.patch_namespaced_custom_object_status, g, v, self.api.namespace,
                                   r, name, patch, _content_type=ctype)

    async def watch(self, name: str, *, timeout: float, resource_version: str | None = None) -> AsyncIterator[dict]:
        """Yield the Certificate each time it changes, for at most ``timeout`` seconds."""
        g, v, r = CERTIFICATE
        custom = self.api.custom

        async def lister(namespace: str, **kw: Any) -> Any:
            """List certificates (raw response: the watch reads the stream itself).

            :rtype: object
            """
            kw.pop("_preload_content", None)
            return await custom.list_namespaced_custom_object_without_preload_content(g, v, namespace, r, **kw)

        async for obj in self.api.watch("certificates", name, lister, timeout=timeout,
                                        resource_version=resource_version):
            yield obj
