"""The HTTP face of the emulated API server (aiohttp.web): routing, verbs, watch streams, errors."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from . import kinds, managed, openapi, patch, tables
from .faults import Fault
from .jobs import pod_log
from .kinds import Kind
from .rbac import details_for
from .selectors import SelectorError, parse_field_selector, parse_label_selector, selector_string
from .store import ApiError, Watcher, not_found, now_iso

if TYPE_CHECKING:
    from .emulator import KubeEmulator

log = logging.getLogger(__name__)

SERVER_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0", "gitCommit": "sandbox",
                  "gitTreeState": "clean", "buildDate": "2026-08-26T00:00:00Z", "goVersion": "go1.26.0",
                  "compiler": "gc", "platform": "linux/amd64"}
DEFAULT_WATCH_SECONDS = 1800
# The API server reads at most this much of a request body (apiserver's MaxRequestBodyBytes, 3 MiB).
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    kind: Kind
    namespace: str | None  # None: cluster-scoped kind, or a list/watch across all namespaces
    name: str | None
    subresource: str
    watch_path: bool = False  # legacy /watch/ URL


ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), exc.code)


def _warned(response: web.Response, warnings: list[str]) -> web.Response:
    """Add `Warning` headers (RFC 7234 code 299, as the API server sends them; kubectl prints them)."""
    for text in warnings:
        response.headers.add("Warning", '299 - ' + json.dumps(text))
    return response


def _sets_resource_version(content_type: str, body: Any, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a patch names a resourceVersion of its own (a merge patch's ``metadata.resourceVersion``, a JSON
    patch that changes it), which the update then checks against the stored one."""
    if content_type == patch.JSON:
        rv = (after.get("metadata") or {}).get("resourceVersion")
        return bool(rv) and rv != (before.get("metadata") or {}).get("resourceVersion")
    return isinstance(body, dict) and bool((body.get("metadata") or {}).get("resourceVersion"))


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    unknown = [v for v in values if v != "All"]
    if unknown:
        raise ApiError(400, "BadRequest", f"Invalid dry run value: {unknown[0]!r}")
    return bool(values)


def parse_target(path: str, *, namespaced_hint: dict[str, Any] | None = None) -> Target | None:
    """Parse `/api/v1/...` and `/apis/{group}/{version}/...` resource URLs."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch_path = False
    if rest[:1] == ["watch"]:
        watch_path, rest = True, rest[1:]
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3
                                                             and rest[2] in ("status", "finalize")):
        namespace, resource, tail = rest[1], rest[2], rest[3:]
        kind = kinds.for_resource(group, version, resource, namespaced=True,
                                  kind=(namespaced_hint or {}).get("kind"))
    else:
        namespace, resource, tail = None, rest[0], rest[1:]
        kind = kinds.for_resource(group, version, resource, namespaced=False,
                                  kind=(namespaced_hint or {}).get("kind"))
    name = tail[0] if tail else None
    sub = "/".join(tail[1:])
    return Target(kind, namespace, name, sub, watch_path)


class ApiServer:
    """Request handling for one emulator; the aiohttp application is `self.app`."""

    def __init__(self, emulator: KubeEmulator) -> None:
        self.emu = emulator
        self.store = emulator.store
        self.app = web.Application(client_max_size=32 * 1024 * 1024)
        self._documents: dict[tuple[str, int, int], str] = {}
        self.app.router.add_route("*", "/_emulator/faults", self.faults_endpoint)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)

    # --- admin --------------------------------------------------------------------------------------

    async def faults_endpoint(self, request: web.Request) -> web.Response:
        """POST a JSON fault rule (or a list of them); GET lists them; DELETE clears them."""
        if request.method == "GET":
            return _json({"faults": self.emu.faults.describe()})
        if request.method == "DELETE":
            self.emu.faults.clear()
            return _json({"faults": []})
        if request.method != "POST":
            return _json({"error": "method not allowed"}, 405)
        try:
            body = await request.json()
            rules = body if isinstance(body, list) else [body]
            for rule in rules:
                self.emu.faults.add(Fault(**rule))
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"faults": self.emu.faults.describe()}, 201)

    # --- dispatch -----------------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/openapi/"):
            return self.openapi(request, path)
        discovery = self.discovery(path)
        if discovery is not None:
            return discovery
        body: Any = None
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.can_read_body:  # DELETE: DeleteOptions
            if request.content_type.startswith(("application/vnd.kubernetes.protobuf", "application/cbor")):
                # the emulator speaks JSON only; clients fall back to it on 415
                return _error(ApiError(415, "UnsupportedMediaType",
                                       "the body of the request was in an unknown format - accepted media types "
                                       "include: application/json, application/yaml"))
            raw = await request.read()
            if len(raw) > MAX_REQUEST_BODY_BYTES:
                return _error(ApiError(413, "RequestEntityTooLarge",
                                       f"Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                if request.content_type != patch.APPLY:
                    return _error(ApiError(400, "BadRequest", "the request body is not valid JSON"))
                try:
                    body = yaml.safe_load(raw)
                except yaml.YAMLError as exc:
                    return _error(ApiError(400, "BadRequest", f"error decoding YAML: {exc}"))
        if path == ACCESS_REVIEWS and request.method == "POST":
            return self.access_review(request, body)
        target = parse_target(path, namespaced_hint=body if request.method == "POST" and isinstance(body, dict)
                              else None)
        if target is None:
            return _error(ApiError(404, "NotFound", "the server could not find the requested resource"))
        verb = self._verb(request, target)
        self.emu.requests[(verb, target.kind.resource)] += 1
        try:
            self._authorize(request, verb, target)
            fault = self.emu.faults.take(verb, target.kind.resource, target.subresource, target.name)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status:
                    details = details_for(target.name, target.kind.group, target.kind.resource)
                    raise ApiError(fault.status, fault.reason(), fault.message or fault.default_message(), details)
            if verb == "watch":
                return await self.watch(request, target)
            handler = getattr(self, f"do_{verb}")
            return await handler(request, target, body)
        except ApiError as exc:
            return _error(exc)
        except SelectorError as exc:
            return _error(ApiError(400, "BadRequest", str(exc)))

    @staticmethod
    def _verb(request: web.Request, target: Target) -> str:
        method = request.method
        if method == "GET":
            if target.name is None:
                flag = request.query.get("watch", "").lower()
                return "watch" if target.watch_path or flag in ("true", "1") else "list"
            return "watch" if target.watch_path else "get"
        if method == "DELETE":
            return "delete" if target.name else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())

    def _authorize(self, request: web.Request, verb: str, target: Target) -> None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        kind = target.kind
        namespace = target.namespace if kind.namespaced else None
        self.emu.rbac.record(token, (verb, kind.group, kind.resource, target.subresource))
        if not self.emu.rbac_enabled or token == self.emu.admin_token:
            return
        if token != self.emu.rbac_token:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        name = target.name if verb not in ("create",) else None
        if not self.emu.rbac.allows(verb, kind.group, kind.resource, target.subresource, name, namespace):
            message = self.emu.rbac.forbidden_message(verb, kind.group, kind.resource, target.subresource,
                                                      target.name, namespace)
            raise ApiError(403, "Forbidden", message, details_for(target.name, kind.group, kind.resource))

    def access_review(self, request: web.Request, body: Any) -> web.Response:
        """``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``: may the caller do this?

        As in Kubernetes every authenticated caller may ask about itself (nothing is stored): the
        admin token and an emulator without RBAC may do anything; the bot's token is answered from the
        rules of the Roles the emulator enforces. Non-resource requests (``/healthz``) are allowed.
        """
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if self.emu.rbac_enabled and token not in (self.emu.admin_token, self.emu.rbac_token):
            return _error(ApiError(401, "Unauthorized", "Unauthorized"))
        spec = body.get("spec") if isinstance(body, dict) else None
        attrs = spec.get("resourceAttributes") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or (not isinstance(attrs, dict) and not spec.get("nonResourceAttributes")):
            return _error(ApiError(422, "Invalid", "SelfSubjectAccessReview.authorization.k8s.io is invalid: "
                                   "spec.resourceAttributes: Invalid value: null: exactly one of "
                                   "nonResourceAttributes or resourceAttributes must be specified"))
        if not self.emu.rbac_enabled or token == self.emu.admin_token or not isinstance(attrs, dict):
            allowed, reason = True, "" if self.emu.rbac_enabled else "the emulator enforces no RBAC"
        else:
            allowed = self.emu.rbac.allows(str(attrs.get("verb") or ""), str(attrs.get("group") or ""),
                                           str(attrs.get("resource") or ""), str(attrs.get("subresource") or ""),
                                           attrs.get("name") or None, attrs.get("namespace") or None)
            reason = f'RBAC: allowed by a Role bound to "{self.emu.rbac.user}"' if allowed else ""
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        review = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
        return _json(review, 201)

    # --- discovery ----------------------------------------------------------------------------------

    def openapi(self, request: web.Request, path: str) -> web.Response:
        """`/openapi/v3` (index and group-version documents) and `/openapi/v2` (JSON only)."""
        served = kinds.all_kinds()
        key = (path, len(served), self.emu.crds.generation)
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if accept and not any(t in accept for t in ("json", "*/*")):
                return _json(ApiError(406, "NotAcceptable", "only application/json is served for /openapi/v2 "
                                                            "(no protobuf)").status(), 406)
            if key not in self._documents:
                self._documents[key] = json.dumps(openapi.v2_document(served, self.emu.crds))
        elif path == "/openapi/v3":
            if key not in self._documents:
                self._documents[key] = json.dumps(openapi.v3_index(served, self.emu.crds))
        else:
            rest = path.removeprefix("/openapi/v3/").split("/")
            if rest[:1] == ["api"] and len(rest) == 2:
                group, version = "", rest[1]
            elif rest[:1] == ["apis"] and len(rest) == 3:
                group, version = rest[1], rest[2]
            else:
                return _error(ApiError(404, "NotFound", "the server could not find the requested resource"))
            if (group, version) not in openapi.group_versions(served):
                return _error(ApiError(404, "NotFound", "the server could not find the requested resource"))
            if key not in self._documents:
                self._documents[key] = json.dumps(
                    openapi.group_version_document(group, version, served, self.emu.crds, v3=True))
        return web.Response(text=self._documents[key], content_type="application/json",
                            headers={"Cache-Control": "no-cache, private"})

    def discovery(self, path: str) -> web.Response | None:
        if path == "/version":
            return _json(SERVER_VERSION)
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/api":
            return _json({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                          "serverAddress": self.emu.address}]})
        if path == "/apis":
            groups: dict[str, set[str]] = {}
            for kind in kinds.all_kinds():
                if kind.group:
                    groups.setdefault(kind.group, set()).add(kind.version)
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(vs)],
                 "preferredVersion": {"groupVersion": f"{g}/{sorted(vs)[-1]}", "version": sorted(vs)[-1]}}
                for g, vs in sorted(groups.items())]})
        parts = [p for p in path.split("/") if p]
        if parts == ["api", "v1"] or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            resources = []
            for kind in kinds.all_kinds():
                if kind.group != group or kind.version != version:
                    continue
                entry: dict[str, Any] = {"name": kind.resource, "singularName": kind.kind.lower(),
                                         "namespaced": kind.namespaced, "kind": kind.kind,
                                         "verbs": ["create", "delete", "deletecollection", "get", "list", "patch",
                                                   "update", "watch"]}
                short_names, categories = self.emu.crds.names(kind)
                if short_names:
                    entry["shortNames"] = list(short_names)
                if categories:
                    entry["categories"] = list(categories)
                resources.append(entry)
                if kind.status:
                    resources.append({"name": f"{kind.resource}/status", "singularName": "",
                                      "namespaced": kind.namespaced, "kind": kind.kind,
                                      "verbs": ["get", "patch", "update"]})
                if kind.scale:
                    resources.append({"name": f"{kind.resource}/scale", "singularName": "",
                                      "namespaced": kind.namespaced, "group": "autoscaling", "version": "v1",
                                      "kind": "Scale", "verbs": ["get", "patch", "update"]})
            return _json({"kind": "APIResourceList", "apiVersion": "v1",
                          "groupVersion": f"{group}/{version}" if group else version, "resources": resources})
        return None

    # --- verbs --------------------------------------------------------------------------------------

    def _check_sub(self, target: Target) -> None:
        kind, sub = target.kind, target.subresource
        if sub == "" or (sub == "status" and kind.status) or (sub == "scale" and kind.scale):
            return
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _current(self, target: Target) -> dict[str, Any]:
        kind = target.kind
        obj = self.store.get(kind.group, kind.resource, target.namespace if kind.namespaced else None,
                             target.name or "")
        if obj is None:
            raise not_found(kind, target.name or "")
        return obj

    def _predicate(self, request: web.Request) -> Any:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"))
        return lambda obj: labels(obj.get("metadata", {}).get("labels") or {}) and fields(obj)

    def _check_fields(self, request: web.Request, kind: Kind, body: Any) -> list[str]:
        """Field validation: unknown fields refuse the request (`Strict`) or come back as warnings."""
        mode = request.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise ApiError(400, "BadRequest", f'fieldValidation must be one of "Ignore", "Warn" or "Strict", '
                                              f'not "{mode}"')
        if mode == "Ignore" or not isinstance(body, dict):
            return []
        unknown = [f'unknown field "{path}"' for path in openapi.unknown_fields(kind, body, self.emu.crds)]
        if unknown and mode == "Strict":
            raise ApiError(400, "BadRequest", f'{kind.kind} in version "{kind.version}" cannot be handled as a '
                                              f"{kind.kind}: strict decoding error: {', '.join(unknown)}")
        return unknown

    @staticmethod
    def _as_table(request: web.Request) -> bool:
        return tables.wants_table(request.headers.get("Accept", ""))

    async def do_get(self, request: web.Request, target: Target, body: Any) -> web.StreamResponse:
        if target.subresource == "log" and target.kind.group == "" and target.kind.resource == "pods":
            return await self.pod_log(request, target)
        self._check_sub(target)
        obj = self._current(target)
        if target.subresource == "scale":
            return _json(self.scale_of(obj))
        if self._as_table(request):
            return _json(tables.table(target.kind, [obj], resource_version=obj["metadata"]["resourceVersion"],
                                      include_object=request.query.get("includeObject", "Metadata"),
                                      crd_version=self.emu.crds.version(target.kind)))
        return _json(obj)

    async def pod_log(self, request: web.Request, target: Target) -> web.StreamResponse:
        """A container's log as text; with `follow=true`, streamed until its process ends."""
        run, data = pod_log(self.emu.jobs, self._current(target), request.query)
        if request.query.get("follow", "").lower() not in ("true", "1") or run is None:
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(data)
        sent = len(run.log)
        while True:
            if len(run.log) > sent:
                await response.write(bytes(run.log[sent:]))
                sent = len(run.log)
            if run.done:
                break
            await asyncio.sleep(0.1)
        await response.write_eof()
        return response

    async def do_list(self, request: web.Request, target: Target, body: Any) -> web.Response:
        kind = target.kind
        predicate = self._predicate(request)
        rv = self.store.snapshot_rv()
        items = self.store.list(kind.group, kind.resource, target.namespace, predicate)
        if self._as_table(request):
            return _json(tables.table(kind, items, resource_version=str(rv),
                                      include_object=request.query.get("includeObject", "Metadata"),
                                      crd_version=self.emu.crds.version(target.kind)))
        return _json({"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                      "metadata": {"resourceVersion": str(rv)}, "items": items})

    async def do_create(self, request: web.Request, target: Target, body: Any) -> web.Response:
        if target.name is not None or target.subresource:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                    "resource")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        kind = target.kind
        meta = body.get("metadata") or {}
        if kind.namespaced and target.namespace is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                    "resource")
        if kind.namespaced and meta.get("namespace") not in (None, "", target.namespace):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                              "sent on the request")
        warnings = self._check_fields(request, kind, body)
        managed.record_update(kind, self._manager(request), None, body)
        created = self.store.create(kind, target.namespace, body, dry_run=_dry_run(request))
        return _warned(_json(created, 201), warnings)

    async def do_update(self, request: web.Request, target: Target, body: Any) -> web.Response:
        self._check_sub(target)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        kind = target.kind
        if target.subresource == "scale":
            return _json(self._write_scale(request, target, body))
        warnings = self._check_fields(request, kind, body)
        if not target.subresource:
            managed.record_update(kind, self._manager(request), self._current(target), body)
        updated = self.store.update(kind, target.namespace, target.name or "", body,
                                    subresource=target.subresource or None, dry_run=_dry_run(request))
        return _warned(_json(updated), warnings)

    async def do_patch(self, request: web.Request, target: Target, body: Any) -> web.Response:
        self._check_sub(target)
        kind = target.kind
        content_type = request.content_type
        accepted = [patch.JSON, patch.MERGE] + ([patch.STRATEGIC] if kind.builtin else []) + [patch.APPLY]
        if content_type == patch.APPLY and not target.subresource:
            return await self.server_side_apply(request, target, body)
        if content_type not in accepted:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: "
                           f"{', '.join(accepted)}")
        current = self._current(target)
        base = self.scale_of(current) if target.subresource == "scale" else current
        try:
            patched = patch.apply_patch(content_type, base, body)
        except patch.MalformedPatch as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc
        except patch.JsonPatchFailed as exc:  # the real server keeps the reason to itself (its details are empty)
            raise ApiError(422, "Invalid", patch.JsonPatchFailed.MESSAGE, {}) from exc
        except patch.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        if target.subresource == "scale":
            return _json(self._write_scale(request, target, patched))
        warnings = self._check_fields(request, kind, body) if content_type != patch.JSON else []
        if not target.subresource:
            managed.record_update(kind, self._manager(request), current, patched)
        if not _sets_resource_version(content_type, body, base, patched):
            # A patch only conflicts when it carries a resourceVersion itself (a JSON patch that replaces it
            # with a stale one conflicts: 409, as on the API server).
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        updated = self.store.update(kind, target.namespace, target.name or "", patched,
                                    subresource=target.subresource or None, dry_run=_dry_run(request))
        return _warned(_json(updated), warnings)

    @staticmethod
    def _manager(request: web.Request) -> str:
        return managed.manager_name(request.query.get("fieldManager"), request.headers.get("User-Agent", ""))

    async def server_side_apply(self, request: web.Request, target: Target, body: Any) -> web.Response:
        """PATCH with `application/apply-patch+yaml`: create or merge, owning fields per field manager."""
        kind = target.kind
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        manager = request.query.get("fieldManager")
        if not manager:
            raise ApiError(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                                              "value: is required for apply patch")
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, target.name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if body.get("kind") not in (None, kind.kind) or body.get("apiVersion") not in (None, kind.api_version):
            raise ApiError(400, "BadRequest", f"the apiVersion and kind of the object must be {kind.api_version} "
                                              f"{kind.kind}")
        warnings = self._check_fields(request, kind, body)
        force = request.query.get("force", "").lower() == "true"
        current = self.store.get(kind.group, kind.resource, target.namespace if kind.namespaced else None,
                                 target.name or "")
        applied = {**body, "apiVersion": kind.api_version, "kind": kind.kind,
                   "metadata": {**meta, "name": target.name}}
        result = managed.apply(kind, manager, current, applied, force=force)
        if current is None:
            created = self.store.create(kind, target.namespace, result, dry_run=_dry_run(request))
            return _warned(_json(created, 201), warnings)
        sent_rv = meta.get("resourceVersion")
        result["metadata"]["resourceVersion"] = sent_rv or current["metadata"]["resourceVersion"]
        updated = self.store.update(kind, target.namespace, target.name or "", result, dry_run=_dry_run(request))
        return _warned(_json(updated), warnings)

    async def do_delete(self, request: web.Request, target: Target, body: Any) -> web.Response:
        if target.subresource:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                    "resource")
        kind = target.kind
        precondition = (body or {}).get("preconditions") if isinstance(body, dict) else None
        if precondition:
            current = self._current(target)
            for field in ("uid", "resourceVersion"):
                if precondition.get(field) and precondition[field] != current["metadata"].get(field):
                    raise ApiError(409, "Conflict",
                                   f'Operation cannot be fulfilled on {kind.qualified} "{target.name}": '
                                   f"Precondition failed: {field}: {precondition[field]}, "
                                   f"ObjectMeta.{field[0].upper() + field[1:]}: {current['metadata'].get(field)}")
        if kind.group == "" and kind.resource == "namespaces":
            return _json(self._terminate_namespace(target, _dry_run(request)))
        gone = self.store.delete(kind, target.namespace, target.name or "", dry_run=_dry_run(request))
        if kind.group == "" and kind.resource == "pods":
            return _json(gone)
        details = {"name": target.name, "kind": kind.resource, "uid": gone["metadata"]["uid"]}
        if kind.group:
            details["group"] = kind.group
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": details})

    def _terminate_namespace(self, target: Target, dry_run: bool) -> dict[str, Any]:
        """A deleted namespace turns Terminating; the namespace controller removes it and its contents."""
        current = self._current(target)
        if current["metadata"].get("deletionTimestamp") or dry_run:
            return current
        current["metadata"]["deletionTimestamp"] = now_iso()
        current["status"] = {"phase": "Terminating"}
        return self.store.update(target.kind, None, target.name or "", current, internal=True)

    async def do_deletecollection(self, request: web.Request, target: Target, body: Any) -> web.Response:
        kind = target.kind
        items = self.store.list(kind.group, kind.resource, target.namespace, self._predicate(request))
        for obj in items:
            with contextlib.suppress(ApiError):
                self.store.delete(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        return _json({"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                      "metadata": {"resourceVersion": str(self.store.snapshot_rv())}, "items": items})

    # --- scale --------------------------------------------------------------------------------------

    @staticmethod
    def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": int(obj.get("spec", {}).get("replicas", 1))},
                "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0)),
                           "selector": selector_string(obj.get("spec", {}).get("selector"))}}

    def _write_scale(self, request: web.Request, target: Target, scale: dict[str, Any]) -> dict[str, Any]:
        current = self._current(target)
        before = copy.deepcopy(current)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: '
                                           f"Invalid value: {replicas}: must be greater than or equal to 0")
        sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
        current["spec"]["replicas"] = replicas
        current["metadata"]["resourceVersion"] = sent_rv or current["metadata"]["resourceVersion"]
        managed.record_update(target.kind, self._manager(request), before, current)
        updated = self.store.update(target.kind, target.namespace, target.name or "", current,
                                    dry_run=_dry_run(request))
        return self.scale_of(updated)

    # --- watch --------------------------------------------------------------------------------------

    async def watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind = target.kind
        predicate = self._predicate(request)
        if target.name is not None:
            by_name = predicate
            predicate = lambda obj: obj["metadata"]["name"] == target.name and by_name(obj)  # noqa: E731
        raw_rv = request.query.get("resourceVersion", "")
        try:
            since = int(raw_rv) if raw_rv not in ("", "0") else None
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resource version: {raw_rv}") from None
        try:
            timeout = float(request.query.get("timeoutSeconds", DEFAULT_WATCH_SECONDS))
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid timeoutSeconds") from None
        initial = request.query.get("sendInitialEvents", "").lower() == "true"
        bookmarks = request.query.get("allowWatchBookmarks", "").lower() == "true"
        as_table = self._as_table(request)
        include = request.query.get("includeObject", "Metadata")
        headers_sent = False

        def line(event_type: str, obj: dict[str, Any]) -> bytes:
            nonlocal headers_sent
            if as_table and event_type != "BOOKMARK":
                obj = tables.table(kind, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                                   include_object=include, headers=not headers_sent,
                                   crd_version=self.emu.crds.version(kind))
                headers_sent = True
            return (json.dumps({"type": event_type, "object": obj}) + "\n").encode()

        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                           "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        try:
            watcher, first, reached = self.store.watch(kind.group, kind.resource, target.namespace, predicate,
                                                       None if initial else since, loop)
        except ApiError as exc:
            await response.prepare(request)
            await response.write((json.dumps({"type": "ERROR", "object": exc.status()}) + "\n").encode())
            await response.write_eof()
            return response
        self.emu.track_watch(watcher)
        try:
            await response.prepare(request)
            if first and not await self.emu.watch_released(kind.resource, loop.time() + timeout):
                await response.write_eof()  # held until its timeout: it ends having said nothing
                return response
            for event_type, obj in first:
                await response.write(line(event_type, obj))
            if initial:
                # The watch-list protocol: the initial state ends with a bookmark carrying this annotation.
                await response.write(line("BOOKMARK", {
                    "kind": kind.kind, "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(reached),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}}))
            await self._follow(request, response, watcher, kind, line, timeout, bookmarks)
        except ConnectionResetError:
            pass
        finally:
            self.store.unwatch(watcher)
            self.emu.untrack_watch(watcher)
        return response

    async def _follow(self, request: web.Request, response: web.StreamResponse, watcher: Watcher, kind: Kind,
                      line: Callable[[str, dict[str, Any]], bytes], timeout: float, bookmarks: bool) -> None:
        """Stream the watcher's changes until ``timeout`` (then end the response) or a drop (then break the
        connection without ending it).

        With ``allowWatchBookmarks``, as the API server's watch cache does: a BOOKMARK carrying the newest
        resourceVersion this watch is known to be complete up to, every ``bookmark_seconds`` when it has moved
        on, and one more just before the timeout ends the stream, so a client resumes from there rather
        than from its last event (which may have left the kept history by then).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        told = 0

        async def bookmark() -> None:
            nonlocal told
            rv = self.store.bookmark(watcher)
            if rv is not None and rv > told:
                told = rv
                await response.write(line("BOOKMARK", {"kind": kind.kind, "apiVersion": kind.api_version,
                                                       "metadata": {"resourceVersion": str(rv)}}))

        next_mark = loop.time() + self.emu.bookmark_seconds
        while True:
            if not await self.emu.watch_released(kind.resource, deadline):
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            wait = min(remaining, next_mark - loop.time()) if bookmarks else remaining
            try:
                item = await asyncio.wait_for(watcher.queue.get(), max(wait, 0))
            except TimeoutError:
                if bookmarks and loop.time() >= next_mark:
                    await bookmark()
                    next_mark = loop.time() + self.emu.bookmark_seconds
                continue
            if item is not None and item[0] != "DROP" and not await self.emu.watch_released(kind.resource, deadline):
                await response.write_eof()  # held until its timeout: no BOOKMARK past what it did not say
                return
            self.store.taken(watcher)
            if item is None:
                break
            if item[0] == "DROP":
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError("watch dropped")
            await response.write(line(item[0], item[1]))
        if bookmarks:
            await bookmark()
        await response.write_eof()

