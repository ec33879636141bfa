"""The bot's cluster layer: a thin async wrapper over the official ``kubernetes.aio`` client.

Everything the bot does to Kubernetes goes through :class:`Cluster`. Objects come back as plain
dicts (the API's JSON), API failures come back as the project's own exceptions
(:mod:`bot.errors`) whose messages are fit for a Slack channel: they name the object and the
reason, never tokens or raw response bodies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig
from kubernetes.aio import watch as kwatch
from kubernetes.aio.client.exceptions import ApiException

from bot.cluster.deployments import RolloutStatus, image_version, status_of
from bot.core.config import Config
from bot.core.errors import ClusterError, Conflict, Forbidden, NotFound
from bot.core.retry import retry
from bot.core.text import foreign
from bot.core.times import parse_time

log = logging.getLogger(__name__)

MAPPING = ("getambassador.io", "v3alpha1", "mappings")
CERTIFICATE = ("cert-manager.io", "v1", "certificates")
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

T = TypeVar("T")


# Writes that may be repeated with no harm: a patch that sets a value, an audit Event (a repeat after a
# lost answer is refused as existing). Replacements carry a resourceVersion: their callers decide again.
IDEMPOTENT_WRITES = {("patch", "deployments"), ("patch", "deployments/scale"), ("patch", "mappings"),
                     ("create", "events"), ("create", "selfsubjectaccessreviews")}  # a review stores nothing

# ---------------------------------------------------------------- state dataclasses


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Track:
    """One Deployment of the service (stable or canary) as the bot sees it."""

    name: str  # "stable" | "canary"
    deployment: str
    image: str
    version: str
    desired: int
    updated: int
    ready: int
    available: int
    generation: int
    observed_generation: int
    revision: str
    conditions: tuple[Condition, ...] = ()
    rollout: RolloutStatus | None = None  # the one model of "rolled out / stuck" (bot.cluster.deployments)

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def stuck(self) -> bool:
        return self.rollout is not None and self.rollout.stuck

    @property
    def rolled_out(self) -> bool:
        return self.rollout is not None and self.rollout.done


@dataclass(frozen=True)
class Route:
    """An Emissary Mapping sending traffic to one track."""

    mapping: str
    service: str
    prefix: str
    hostname: str
    weight: int | None  # None: no explicit weight (Emissary gives it what the others leave)


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


@dataclass(frozen=True)
class EventInfo:
    type: str
    reason: str
    message: str
    object: str  # "Pod/helloworld-abc"
    count: int
    last_seen: datetime | None


@dataclass(frozen=True)
class ReleaseState:
    """Everything ``/hello status`` shows. ``missing`` maps a part to why it could not be read."""

    namespace: str
    stable: Track | None
    canary: Track | None
    stable_route: Route | None
    canary_route: Route | None
    certificate: CertState | None
    warnings: tuple[EventInfo, ...] = ()
    missing: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- helpers


def _container(deploy: dict, container: str) -> dict:
    containers = deploy.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    for c in containers:
        if c.get("name") == container:
            return c
    return containers[0] if containers else {}


def track_from(name: str, deploy: dict, container: str) -> Track:
    meta, spec, status = deploy.get("metadata", {}), deploy.get("spec", {}), deploy.get("status") or {}
    image = _container(deploy, container).get("image", "")
    conds = tuple(
        Condition(c.get("type", ""), c.get("status", ""), c.get("reason") or "", c.get("message") or "")
        for c in status.get("conditions") or []
    )
    return Track(
        name=name,
        deployment=meta.get("name", ""),
        image=image,
        version=image_version(image) if image else "",
        desired=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        revision=str((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "")),
        conditions=conds,
        rollout=status_of(deploy, container),
    )


def route_from(mapping: dict) -> Route:
    spec = mapping.get("spec", {})
    weight = spec.get("weight")
    return Route(
        mapping=mapping.get("metadata", {}).get("name", ""),
        service=str(spec.get("service", "")),
        prefix=str(spec.get("prefix", "")),
        hostname=str(spec.get("hostname", spec.get("host", ""))),
        weight=None if weight is None else int(weight),
    )


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
        issuing=(
            Condition("Issuing", issuing.get("status", ""), issuing.get("reason") or "", issuing.get("message") or "")
            if issuing
            else None
        ),
        failed_attempts=int(status.get("failedIssuanceAttempts") or 0),
        last_failure=parse_time(status.get("lastFailureTime")),
        dns_names=tuple(cert.get("spec", {}).get("dnsNames") or ()),
    )


_SECRETISH = re.compile(r"(?i)(bearer\s+\S+|token[=:]\s*\S+|xox[abpr]-[\w-]+|eyJ[\w-]{10,}\.[\w-]+\.[\w-]+)")


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from a message meant for users or logs."""
    return _SECRETISH.sub("[redacted]", text)


def _what(verb: str, kind: str, name: str | None) -> str:
    return f"{verb} {kind}/{name}" if name else f"{verb} {kind}"


def translate(exc: BaseException, verb: str, kind: str, name: str | None = None) -> ClusterError:
    """Turn a client exception into the project's error with a user-safe message.

    The message is mrkdwn like every :class:`~bot.errors.CommandError`'s: what the API server (or an
    admission webhook) wrote is scrubbed of credentials, cut and escaped here, where it enters the bot.
    """
    what = _what(verb, kind, name)
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = ""
        message = ""
        try:
            import json

            body = json.loads(exc.body) if exc.body else {}
            reason = str(body.get("reason") or "")
            message = foreign(scrub(str(body.get("message") or "")))
        except (ValueError, TypeError, AttributeError):
            pass
        if status == 404:
            return NotFound(f"{kind}/{name} not found" if name else f"{kind} not found", 404, reason)
        if status == 409:
            return Conflict(f"conflict on {what}: it changed meanwhile", 409, reason)
        if status == 403:
            return Forbidden(f"the bot is not allowed to {what} (403 Forbidden)", 403, reason)
        if status == 422:
            detail = f": {message}" if message else ""
            return ClusterError(f"Kubernetes rejected {what}{detail}", 422, reason)
        phrase = foreign(exc.reason or "", 80)
        return ClusterError(f"Kubernetes API error on {what}: HTTP {status} {phrase}".strip(), status, reason)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ClusterError(f"Kubernetes API timed out on {what}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ClusterError(f"Kubernetes API unreachable ({type(exc).__name__}) on {what}")
    return ClusterError(f"Kubernetes call failed on {what}: {type(exc).__name__}")


# ---------------------------------------------------------------- the wrapper


def _kubeconfig_path(configured: str) -> tuple[str, bool]:
    """The kubeconfig file to load (first of ``KUBECONFIG``'s list) and whether to use it."""
    if configured:
        return configured.split(os.pathsep)[0], True
    default = os.path.expanduser("~/.kube/config")
    return default, os.path.exists(default)


class Cluster:
    """Async access to the service's namespace. Create with :meth:`connect`; close with :meth:`close`."""

    def __init__(self, api_client: kclient.ApiClient, config: Config, *, host: str = "") -> None:
        self._api = api_client
        self.config = config
        self.namespace = config.namespace
        self.host = host
        self.apps = kclient.AppsV1Api(api_client)
        self.core = kclient.CoreV1Api(api_client)
        self.custom = kclient.CustomObjectsApi(api_client)
        self.coordination = kclient.CoordinationV1Api(api_client)
        self.authorization = kclient.AuthorizationV1Api(api_client)
        self.request_timeout = 10.0

    @classmethod
    async def connect(cls, config: Config) -> Cluster:
        """Load kubeconfig (``KUBECONFIG`` / ``~/.kube/config``) or the in-cluster service account.

        Raises :class:`ClusterError` when neither is available; nothing is contacted yet.
        """
        configuration = kclient.Configuration()
        path, exists = _kubeconfig_path(config.kubeconfig)
        if config.kube_in_cluster:
            path = "the in-cluster service account"
        try:
            if config.kube_in_cluster:  # a catalogue environment in the bot's own cluster
                kconfig.load_incluster_config(client_configuration=configuration)
            elif exists:
                await kconfig.load_kube_config(
                    config_file=path,
                    context=config.kube_context or None,
                    client_configuration=configuration,
                    persist_config=False,
                )
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                kconfig.load_incluster_config(client_configuration=configuration)
            else:
                raise ClusterError("no Kubernetes configuration: set KUBECONFIG or run in a cluster")
        except ClusterError:
            raise
        except Exception as exc:  # the loaders raise many kinds; report which file failed
            raise ClusterError(f"cannot load Kubernetes configuration from {path}: {type(exc).__name__}") from None
        return cls(kclient.ApiClient(configuration), config, host=configuration.host)

    def scoped(self, config: Config) -> Cluster:
        """The same connection for another service or namespace (``config`` from ``Service.config_for``);
        closing the original closes it."""
        return Cluster(self._api, config, host=self.host)

    async def close(self) -> None:
        await self._api.close()

    def _dict(self, obj: Any) -> dict:
        return self._api.sanitize_for_serialization(obj) if not isinstance(obj, dict) else obj

    async def _call(self, verb: str, kind: str, name: str | None, fn: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> Any:
        """One API call, its errors translated; idempotent ones (reads, patches that set a value) are
        retried here by the one policy of :mod:`bot.core.retry`, so callers never wrap them."""
        kwargs.setdefault("_request_timeout", self.request_timeout)

        async def once() -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc, verb, kind, name) from None

        if verb in ("get", "list") or (verb, kind) in IDEMPOTENT_WRITES:
            return await retry(once)
        return await once()

    # -- deployments
    async def get_deployment(self, name: str) -> dict:
        obj = await self._call("get", "deployments", name, self.apps.read_namespaced_deployment, name,
                               self.namespace)
        return self._dict(obj)

    async def patch_deployment(self, name: str, patch: dict | list) -> dict:
        """Strategic-merge patch (dict) or JSON patch (list) on a Deployment."""
        obj = await self._call("patch", "deployments", name, self.apps.patch_namespaced_deployment, name,
                               self.namespace, patch)
        return self._dict(obj)

    async def set_image(self, name: str, image: str, *, env: dict[str, str] | None = None) -> dict:
        container: dict[str, Any] = {"name": self.config.container, "image": image}
        if env:
            container["env"] = [{"name": k, "value": v} for k, v in env.items()]
        return await self.patch_deployment(name, {"spec": {"template": {"spec": {"containers": [container]}}}})

    async def scale_deployment(self, name: str, replicas: int) -> dict:
        obj = await self._call("patch", "deployments/scale", name, self.apps.patch_namespaced_deployment_scale,
                               name, self.namespace, {"spec": {"replicas": replicas}})
        return self._dict(obj)

    async def list_replicasets(self, label_selector: str) -> list[dict]:
        obj = await self._call("list", "replicasets", None, self.apps.list_namespaced_replica_set,
                               self.namespace, label_selector=label_selector)
        return self._dict(obj).get("items", [])

    async def list_pods(self, label_selector: str) -> list[dict]:
        obj = await self._call("list", "pods", None, self.core.list_namespaced_pod, self.namespace,
                               label_selector=label_selector)
        return self._dict(obj).get("items", [])

    async def watch_deployment(self, name: str, *, timeout: float, resource_version: str | None = None
                               ) -> AsyncIterator[dict]:
        """Yield the Deployment each time it changes, for at most ``timeout`` seconds."""
        async for obj in self._watch(
            "deployments", name, self.apps.list_namespaced_deployment, timeout, resource_version
        ):
            yield obj

    async def _watch(self, kind: str, name: str, fn: Callable[..., Any], timeout: float,
                     resource_version: str | None, *args: Any) -> AsyncIterator[dict]:
        w = kwatch.Watch()
        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "timeout_seconds": max(1, int(timeout)),
        }
        if resource_version:
            kwargs["resource_version"] = resource_version
        try:
            async with asyncio.timeout(timeout + 5):
                async for event in w.stream(fn, *args, self.namespace, **kwargs):
                    if event.get("type") == "ERROR":
                        raw = event.get("raw_object") or {}
                        raise ClusterError(f"watch on {kind}/{name} ended: {foreign(raw.get('reason', 'error'), 80)}",
                                           int(raw.get("code") or 0))
                    obj = event.get("raw_object") or self._dict(event.get("object"))
                    yield obj
        except ClusterError:
            raise
        except TimeoutError:
            return
        except Exception as exc:
            raise translate(exc, "watch", kind, name) from None
        finally:
            await w.close()

    # -- mappings
    async def get_mapping(self, name: str) -> dict:
        g, v, r = MAPPING
        return await self._call("get", "mappings", name, self.custom.get_namespaced_custom_object, g, v,
                                self.namespace, r, name)

    async def patch_mapping(self, name: str, patch: dict) -> dict:
        g, v, r = MAPPING
        return await self._call("patch", "mappings", name, self.custom.patch_namespaced_custom_object, g, v,
                                self.namespace, r, name, patch, _content_type=MERGE)

    # -- certificates
    async def get_certificate(self, name: str | None = None) -> dict:
        g, v, r = CERTIFICATE
        name = name or self.config.certificate
        return await self._call("get", "certificates", name, self.custom.get_namespaced_custom_object, g, v,
                                self.namespace, r, name)

    async def patch_certificate_status(self, name: str, patch: dict | list) -> dict:
        g, v, r = CERTIFICATE
        ctype = JSON_PATCH if isinstance(patch, list) else MERGE
        return await self._call("patch", "certificates/status", name,
                                self.custom.patch_namespaced_custom_object_status, g, v, self.namespace, r,
                                name, patch, _content_type=ctype)

    async def watch_certificate(self, name: str, *, timeout: float, resource_version: str | None = None
                                ) -> AsyncIterator[dict]:
        g, v, r = CERTIFICATE

        async def lister(namespace: str, **kw: Any) -> Any:
            """List certificates (raw response: the watch reads the stream itself).

            :rtype: object
            """
            kw.pop("_preload_content", None)
            return await self.custom.list_namespaced_custom_object_without_preload_content(
                g, v, namespace, r, **kw)

        async for obj in self._watch("certificates", name, lister, timeout, resource_version):
            yield obj

    # -- events
    async def list_events(self, *, warnings_only: bool = False, limit: int = 20) -> list[EventInfo]:
        kwargs: dict[str, Any] = {}
        if warnings_only:
            kwargs["field_selector"] = "type=Warning"
        obj = await self._call("list", "events", None, self.core.list_namespaced_event, self.namespace, **kwargs)
        items = self._dict(obj).get("items", [])
        out = []
        for e in items:
            if warnings_only and e.get("type") != "Warning":
                continue
            inv = e.get("involvedObject") or {}
            out.append(EventInfo(
                type=e.get("type", ""), reason=e.get("reason", ""), message=scrub(e.get("message", ""))[:300],
                object=f"{inv.get('kind', '')}/{inv.get('name', '')}", count=int(e.get("count") or 1),
                last_seen=parse_time(e.get("lastTimestamp") or e.get("eventTime")
                                     or (e.get("metadata") or {}).get("creationTimestamp")),
            ))
        out.sort(key=lambda ev: ev.last_seen or datetime.min.replace(tzinfo=UTC), reverse=True)
        return out[:limit]

    async def list_raw_events(self, label_selector: str | None = None) -> list[dict]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        obj = await self._call("list", "events", None, self.core.list_namespaced_event, self.namespace, **kwargs)
        return self._dict(obj).get("items", [])

    async def create_event(self, body: dict) -> dict:
        obj = await self._call("create", "events", None, self.core.create_namespaced_event, self.namespace, body)
        return self._dict(obj)

    # -- configmaps (bot state: requests and their locks, releases, schedules)
    async def get_configmap(self, name: str) -> dict | None:
        try:
            obj = await self._call("get", "configmaps", name, self.core.read_namespaced_config_map, name,
                                   self.namespace)
        except NotFound:
            return None
        return self._dict(obj)

    async def list_configmaps(self, label_selector: str) -> list[dict]:
        obj = await self._call("list", "configmaps", None, self.core.list_namespaced_config_map, self.namespace,
                               label_selector=label_selector)
        return self._dict(obj).get("items", [])

    async def create_configmap(self, name: str, data: dict[str, str], labels: dict[str, str] | None = None
                               ) -> dict:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self.namespace,
                             "labels": labels or {"app.kubernetes.io/managed-by": "hello-chatops"}},
                "data": data}
        obj = await self._call("create", "configmaps", name, self.core.create_namespaced_config_map,
                               self.namespace, body)
        return self._dict(obj)

    async def replace_configmap(self, cm: dict) -> dict:
        """PUT with the resourceVersion in ``cm``: raises :class:`Conflict` if someone wrote meanwhile."""
        name = cm["metadata"]["name"]
        obj = await self._call("update", "configmaps", name, self.core.replace_namespaced_config_map, name,
                               self.namespace, cm)
        return self._dict(obj)

    async def delete_configmap(self, name: str) -> bool:
        """Delete it; returns whether it existed."""
        try:
            await self._call("delete", "configmaps", name, self.core.delete_namespaced_config_map, name,
                             self.namespace)
        except NotFound:
            return False
        return True

    # -- leases
    async def get_lease(self, name: str) -> dict | None:
        try:
            obj = await self._call("get", "leases", name, self.coordination.read_namespaced_lease, name,
                                   self.namespace)
        except NotFound:
            return None
        return self._dict(obj)

    async def create_lease(self, body: dict) -> dict:
        obj = await self._call("create", "leases", body["metadata"]["name"],
                               self.coordination.create_namespaced_lease, self.namespace, body)
        return self._dict(obj)

    async def replace_lease(self, body: dict) -> dict:
        name = body["metadata"]["name"]
        obj = await self._call("update", "leases", name, self.coordination.replace_namespaced_lease, name,
                               self.namespace, body)
        return self._dict(obj)

    # -- the release as a whole
    async def release_state(self, *, events: bool = True) -> ReleaseState:
        """Read both tracks, both routes, the certificate and (``events``) recent warnings, concurrently.

        A part that cannot be read is recorded in ``missing`` with the reason instead of failing the whole.
        """
        cfg = self.config
        missing: dict[str, str] = {}

        async def part(key: str, coro: Any) -> Any:
            try:
                return await coro
            except NotFound as exc:
                missing[key] = str(exc)
            except ClusterError as exc:
                missing[key] = str(exc)
            return None

        reads = [
            part("stable", self.get_deployment(cfg.stable_deployment)),
            part("canary", self.get_deployment(cfg.canary_deployment)),
            part("stable route", self.get_mapping(cfg.stable_mapping)),
            part("canary route", self.get_mapping(cfg.canary_mapping)),
            part("certificate", self.get_certificate()),
        ]
        if events:
            reads.append(part("events", self.list_events(warnings_only=True, limit=5)))
        stable, canary, sroute, croute, cert, *warnings = await asyncio.gather(*reads)
        unreachable = [m for m in missing.values() if "unreachable" in m or "timed out" in m]
        if unreachable and len(missing) == len(reads):
            raise ClusterError(unreachable[0])
        return ReleaseState(
            namespace=self.namespace,
            stable=track_from("stable", stable, cfg.container) if stable else None,
            canary=track_from("canary", canary, cfg.container) if canary else None,
            stable_route=route_from(sroute) if sroute else None,
            canary_route=route_from(croute) if croute else None,
            certificate=cert_from(cert) if cert else None,
            warnings=tuple(warnings[0] or ()) if warnings else (),
            missing=missing,
        )

    # -- access
    async def may(self, verb: str, group: str, resource: str, *, namespace: str | None = None) -> bool:
        """Whether this client's identity may ``verb`` ``resource`` (``deployments/scale`` names a
        subresource) of API ``group`` in ``namespace`` (default: the service's), as the API server's
        authorizer answers a SelfSubjectAccessReview; nothing is tried."""
        top, _, sub = resource.partition("/")
        attributes = {"namespace": namespace or self.namespace, "verb": verb, "group": group, "resource": top}
        if sub:
            attributes["subresource"] = sub
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}
        review = self._dict(await self._call("create", "selfsubjectaccessreviews", None,
                                             self.authorization.create_self_subject_access_review, body))
        return bool((review.get("status") or {}).get("allowed"))

    async def check(self) -> str:
        """One line for ``bot check``: can we read the stable Deployment?"""
        await self.get_deployment(self.config.stable_deployment)
        return f"ok, {self.host}, namespace {self.namespace}"
