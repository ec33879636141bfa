"""The connection to one API server and the one way to call it.

:func:`load_configuration` reads the kubeconfig (or the in-cluster service account); :class:`Api` holds the
official ``kubernetes.aio`` client's API groups for one namespace and makes every call through
:meth:`Api.call`: objects come back as plain dicts (the API's JSON), failures as the project's own
exceptions (:mod:`bot.core.errors`, by :func:`translate`) whose messages are fit for a Slack channel (they
name the object and the reason, never tokens or raw response bodies), and calls that may be repeated with
no harm are retried by the one policy of :mod:`bot.core.retry`. The parts of a
:class:`~bot.cluster.kube.Cluster` (Deployments, Certificates, Events, ConfigMaps, Leases, the traffic
router) are built on one :class:`Api`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig
from kubernetes.aio import watch as kwatch
from kubernetes.aio.client.exceptions import ApiException

from bot.core.config import Config
from bot.core.errors import ClusterError, Conflict, Forbidden, NotFound
from bot.core.retry import retry
from bot.core.text import foreign

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Writes that may be repeated with no harm: a patch that sets a value, an audit Event (a repeat after a
# lost answer is refused as existing). Replacements carry a resourceVersion: their callers decide again.
IDEMPOTENT_WRITES = {("patch", "deployments"), ("patch", "deployments/scale"), ("patch", "mappings"),
                     ("create", "events"), ("create", "selfsubjectaccessreviews")}  # a review stores nothing


@dataclass(frozen=True)
class Condition:
    """One entry of an object's ``status.conditions`` (a Deployment's ``Progressing``, a Certificate's ``Issuing``)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""

    @classmethod
    def of(cls, raw: dict) -> Condition:
        return cls(raw.get("type", ""), raw.get("status", ""), raw.get("reason") or "", raw.get("message") or "")


# ---------------------------------------------------------------- errors fit for a channel

_SECRETISH = re.compile(r"(?i)(bearer\s+\S+|token[=:]\s*\S+|xox[abpr]-[\w-]+|eyJ[\w-]{10,}\.[\w-]+\.[\w-]+)")


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from a message meant for users or logs."""
    return _SECRETISH.sub("[redacted]", text)


def _what(verb: str, kind: str, name: str | None) -> str:
    return f"{verb} {kind}/{name}" if name else f"{verb} {kind}"


def _status_body(exc: ApiException) -> tuple[str, str]:
    """The Status body's reason and message (scrubbed, cut and escaped); empty when it has none."""
    try:
        body = json.loads(exc.body) if exc.body else {}
        return str(body.get("reason") or ""), foreign(scrub(str(body.get("message") or "")))
    except (ValueError, TypeError, AttributeError):
        return "", ""


def translate(exc: BaseException, verb: str, kind: str, name: str | None = None) -> ClusterError:
    """Turn a client exception into the project's error with a user-safe message.

    The message is mrkdwn like every :class:`~bot.core.errors.CommandError`'s: what the API server (or an
    admission webhook) wrote is scrubbed of credentials, cut and escaped here, where it enters the bot.
    """
    what = _what(verb, kind, name)
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason, message = _status_body(exc)
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


# ---------------------------------------------------------------- the connection


def _kubeconfig_path(configured: str) -> tuple[str, bool]:
    """The kubeconfig file to load (first of ``KUBECONFIG``'s list) and whether to use it."""
    if configured:
        return configured.split(os.pathsep)[0], True
    default = os.path.expanduser("~/.kube/config")
    return default, os.path.exists(default)


async def load_configuration(config: Config) -> kclient.Configuration:
    """The client configuration from kubeconfig (``KUBECONFIG`` / ``~/.kube/config``, ``HELLO_KUBE_CONTEXT``)
    or the in-cluster service account.

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
    return configuration


class Api:
    """The official client's API groups, aimed at one namespace, and the one way to call them.

    ``client`` is the connection (``kubernetes.aio.client.ApiClient``); the :class:`Api` of several namespaces
    may share it (:meth:`bot.cluster.kube.Cluster.scoped`), and closing any of them closes it.
    """

    def __init__(self, client: kclient.ApiClient, namespace: str, *, request_timeout: float = 10.0) -> None:
        self.client = client
        self.namespace = namespace
        self.request_timeout = request_timeout
        self.apps = kclient.AppsV1Api(client)
        self.batch = kclient.BatchV1Api(client)
        self.core = kclient.CoreV1Api(client)
        self.custom = kclient.CustomObjectsApi(client)
        self.coordination = kclient.CoordinationV1Api(client)
        self.authorization = kclient.AuthorizationV1Api(client)

    async def close(self) -> None:
        await self.client.close()

    def as_dict(self, obj: Any) -> dict:
        """The API's JSON of what a call returned (a client model, or the dict a custom-object call gives)."""
        return self.client.sanitize_for_serialization(obj) if not isinstance(obj, dict) else obj

    async def call(self, verb: str, kind: str, name: str | None, fn: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> dict:
        """One API call, its answer as a dict, its errors translated; idempotent ones (reads, patches that
        set a value) are retried here by the one policy of :mod:`bot.core.retry`, so callers never wrap them."""
        kwargs.setdefault("_request_timeout", self.request_timeout)

        async def once() -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc, verb, kind, name) from None

        if verb in ("get", "list") or (verb, kind) in IDEMPOTENT_WRITES:
            return self.as_dict(await retry(once))
        return self.as_dict(await once())

    async def watch(self, kind: str, name: str, fn: Callable[..., Any], *, timeout: float,
                    resource_version: str | None = None) -> AsyncIterator[dict]:
        """Yield the object named ``name`` each time it changes, for at most ``timeout`` seconds.

        ``fn`` is the namespaced list call of its kind (it takes the namespace first). From
        ``resource_version`` the changes after it are replayed first; an ERROR event (410 Gone, say) ends
        the watch with a :class:`ClusterError` carrying its code.
        """
        w = kwatch.Watch()
        kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}", "timeout_seconds": max(1, int(timeout))}
        if resource_version:
            kwargs["resource_version"] = resource_version
        try:
            async with asyncio.timeout(timeout + 5):
                async for event in w.stream(fn, self.namespace, **kwargs):
                    if event.get("type") == "ERROR":
                        raw = event.get("raw_object") or {}
                        raise ClusterError(f"watch on {kind}/{name} ended: {foreign(raw.get('reason', 'error'), 80)}",
                                           int(raw.get("code") or 0))
                    yield event.get("raw_object") or self.as_dict(event.get("object"))
        except ClusterError:
            raise
        except TimeoutError:
            return
        except Exception as exc:
            raise translate(exc, "watch", kind, name) from None
        finally:
            await w.close()
