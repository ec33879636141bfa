"""What the bot must be allowed to do, asked of the API server (a SelfSubjectAccessReview per verb).

:data:`SERVICE` is what it does to a service's objects, in every namespace a catalogue environment
names; :data:`STATE` is what its own state needs, in its home namespace (``HELLO_NAMESPACE``): approval
requests, the lock and release records (ConfigMaps) and leader election (the Lease). Together they are
exactly the rules of ``manifests/bot/role.yaml``, verb by verb (a test holds the two together). Nothing
is tried: ``python -m bot check`` reports what is missing before a release would need it, asking for each
service the verbs of its own traffic router (:func:`for_service`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bot.cluster.client import Api
from bot.cluster.kube import Cluster
from bot.core.config import Config


@dataclass(frozen=True, order=True)
class Permission:
    """One verb on one resource of an API group; ``resource`` may name a subresource (``deployments/scale``)."""

    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}"


def _grant(group: str, resource: str, *verbs: str) -> tuple[Permission, ...]:
    return tuple(Permission(group, resource, verb) for verb in verbs)


# list and watch: the watch caches that status, Home and the overview read (bot.cluster.cache)
WORKLOAD: tuple[Permission, ...] = (
    *_grant("apps", "deployments", "get", "list", "watch", "patch"),  # read, set the image, follow the rollout
    *_grant("apps", "deployments/scale", "patch"),  # size the canary
    *_grant("apps", "replicasets", "list"),  # the previous revision's image, for rollback
    *_grant("", "pods", "list"),  # the image digest the ready pods run, for promotion
    *_grant("", "events", "list", "watch", "create"),  # audit records and rollout warnings
    *_grant("batch", "jobs", "get", "list", "create", "delete"),  # the load of /hello loadtest and analysis
    *_grant("", "pods/log", "get"),  # what the load's `hey` measured (its CSV)
)
CERTIFICATES: tuple[Permission, ...] = (
    *_grant("cert-manager.io", "certificates", "get", "list", "watch"),  # certificate state and re-issuance
    *_grant("cert-manager.io", "certificates/status", "patch"),  # renew, as `cmctl renew`
)
ROUTERS: dict[str, tuple[Permission, ...]] = {  # canary weights, by the service's traffic router
    "emissary": _grant("getambassador.io", "mappings", "get", "list", "watch", "patch"),
    "gateway-api": _grant("gateway.networking.k8s.io", "httproutes", "get", "list", "watch", "patch"),
}
SERVICE: tuple[Permission, ...] = (*WORKLOAD, *(p for router in ROUTERS.values() for p in router),
                                   *CERTIFICATES)  # role.yaml's: every router's verbs
STATE: tuple[Permission, ...] = (
    *_grant("", "configmaps", "get", "list", "watch", "create", "update", "delete"),  # records (a watch cache), locks
    *_grant("coordination.k8s.io", "leases", "get", "create", "update"),  # leader election
)
REQUIRED: tuple[Permission, ...] = SERVICE + STATE  # role.yaml: every router's verbs, and the state's
STATE_RESOURCES = frozenset((p.group, p.resource) for p in STATE)


def for_service(config: Config) -> tuple[Permission, ...]:
    """What one service in one environment needs: its workloads' verbs and its own router's."""
    return WORKLOAD + ROUTERS[config.traffic.router] + CERTIFICATES


def for_single(config: Config) -> tuple[Permission, ...]:
    """What a bot of one service (no catalogue) needs in ``HELLO_NAMESPACE``: the service's and its state's."""
    return for_service(config) + STATE


async def may(api: Api, permission: Permission, namespace: str | None = None) -> bool:
    """Whether the client's identity may do ``permission`` in ``namespace`` (default: the API's), as the API
    server's authorizer answers a SelfSubjectAccessReview; nothing is tried."""
    top, _, sub = permission.resource.partition("/")
    attributes = {"namespace": namespace or api.namespace, "verb": permission.verb, "group": permission.group,
                  "resource": top}
    if sub:
        attributes["subresource"] = sub
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}
    review = await api.call("create", "selfsubjectaccessreviews", None,
                            api.authorization.create_self_subject_access_review, body)
    return bool((review.get("status") or {}).get("allowed"))


async def missing(cluster: Cluster, permissions: Sequence[Permission], namespace: str | None = None
                  ) -> list[Permission]:
    """The permissions the cluster's identity lacks in ``namespace`` (default: the cluster's), in order."""
    allowed = await asyncio.gather(*(may(cluster.api, p, namespace) for p in permissions))
    return [p for p, ok in zip(permissions, allowed, strict=True) if not ok]


def refusal(lacking: Sequence[Permission], namespace: str) -> str:
    """``cannot patch deployments/scale, list replicasets in namespace hello``."""
    return f"cannot {', '.join(str(p) for p in lacking)} in namespace {namespace}"
