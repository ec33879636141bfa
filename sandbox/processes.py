"""One real helloworld process per release track, following the emulated cluster's Deployments.

The :class:`Fleet` watches the ``helloworld`` (stable) and ``helloworld-canary`` Deployments in the
Kubernetes emulator. When a track's image version changes it starts ``python -m helloworld`` for the
new version, switches traffic to it once it is ready, and stops the old process with SIGTERM so it
drains its in-flight requests, the way a rolling update replaces pods. A track scaled to 0 replicas
has no process. Whenever the set of processes changes, the emulator's cluster DNS learns where each
track's Service leads (its Jobs' load reaches the process), and ``on_change`` is called (the sandbox uses
it to rewrite Prometheus's scrape targets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.tasks import cancel
from helloworld import runner

log = logging.getLogger(__name__)

FAULTY_SUFFIX = "-faulty"
FAULTY_ERROR_RATE = "0.2"
TRACKS: dict[str, str] = {"stable": "helloworld", "canary": "helloworld-canary"}


@dataclass(frozen=True)
class Wanted:
    """What a Deployment asks for: a version, and whether any replica should run."""

    version: str
    replicas: int

    @property
    def active(self) -> bool:
        return self.replicas > 0 and bool(self.version)


def wanted_from(deployment: Mapping[str, Any] | None, container: str = "helloworld") -> Wanted | None:
    """The version and replica count a Deployment object asks for (None when there is no Deployment)."""
    if not deployment:
        return None
    spec = deployment.get("spec") or {}
    containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == container), containers[0] if containers else {})
    image = str(chosen.get("image") or "")
    replicas = spec.get("replicas")
    return Wanted(version=image_version(image), replicas=1 if replicas is None else int(replicas))


def image_version(image: str) -> str:
    """``registry/helloworld:v2`` -> ``v2`` (``latest`` without a tag, ``""`` without an image)."""
    if not image:
        return ""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def process_env(version: str) -> dict[str, str]:
    """Environment for a version's process: versions ending in ``-faulty`` fail a share of requests."""
    if version.endswith(FAULTY_SUFFIX):
        return {"HELLO_FAULT_ERROR_RATE": FAULTY_ERROR_RATE}
    return {}


@dataclass
class TrackProcess:
    track: str
    version: str
    running: runner.Running

    @property
    def alive(self) -> bool:
        return self.running.process.poll() is None

    @property
    def address(self) -> str:
        return f"{self.running.host}:{self.running.port}"


class Fleet:
    """Keeps one helloworld process per active track, in step with the emulator's Deployments."""

    def __init__(
        self,
        kube: Any,
        *,
        namespace: str = "hello",
        deployments: Mapping[str, str] = TRACKS,
        container: str = "helloworld",
        drain_seconds: float = 2.0,
        on_change: Callable[[], None] | None = None,
        check_interval: float = 1.0,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """``labels`` go on every scrape target beside its track (e.g. the service's namespace and app)."""
        self.kube = kube
        self.labels = dict(labels or {})
        self.namespace = namespace
        self.deployments = dict(deployments)
        self.container = container
        self.drain_seconds = drain_seconds
        self.on_change = on_change
        self.check_interval = check_interval
        self.current: dict[str, TrackProcess] = {}
        self.errors: dict[str, str] = {}
        self._draining: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False

    # ---------------------------------------------------------------- reads
    def endpoints(self) -> dict[str, str]:
        """``{"stable": "http://127.0.0.1:PORT", ...}`` for the live processes."""
        return {track: proc.running.url for track, proc in self.current.items() if proc.alive}

    def versions(self) -> dict[str, str]:
        return {track: proc.version for track, proc in self.current.items() if proc.alive}

    def targets(self) -> list[tuple[str, dict[str, str]]]:
        """Prometheus ``file_sd`` targets: one per live process, labelled with its track and ``labels``."""
        return [(proc.address, {**self.labels, "track": track})
                for track, proc in sorted(self.current.items()) if proc.alive]

    def pids(self) -> list[int]:
        return [proc.running.pid for proc in self.current.values()]

    def wanted(self) -> dict[str, Wanted | None]:
        return {
            track: wanted_from(self.kube.get("apps", "v1", "deployments", self.namespace, name), self.container)
            for track, name in self.deployments.items()
        }

    # ---------------------------------------------------------------- life cycle
    async def start(self) -> Fleet:
        """Start the processes the Deployments ask for now, then follow their changes."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.kube.subscribe(self._observe)
        await self.reconcile()
        self._task = asyncio.create_task(self._follow(), name="helloworld-fleet")
        return self

    async def stop(self) -> None:
        """Stop following and stop every process (SIGTERM, wait for them to drain)."""
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        await cancel(task)
        current, self.current = list(self.current.values()), {}
        for proc in current:
            self._drain(proc)
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)

    def _observe(self, *args: Any) -> None:
        """Store listener: called after every change in the emulator (maybe from another thread)."""
        obj = next((a for a in reversed(args) if isinstance(a, dict)), None)
        if obj is not None and "object" in obj and "kind" not in obj:
            obj = obj["object"]
        if obj is not None and obj.get("kind") not in (None, "Deployment"):
            return
        if self._loop is None or self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _follow(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.check_interval)
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("cannot bring the helloworld processes in line with the Deployments")

    async def reconcile(self) -> None:
        """Start, replace or stop processes so each track runs what its Deployment asks for."""
        changed = False
        for track, want in self.wanted().items():
            if self._stopping:
                return
            proc = self.current.get(track)
            if want is None or not want.active:
                if proc is not None:
                    del self.current[track]
                    self._drain(proc)
                    changed = True
                continue
            if proc is not None and proc.version == want.version and proc.alive:
                continue
            if self.errors.get(track) == want.version:
                continue  # this version failed to start: keep what runs, as a stuck rollout would
            new = await self._spawn(track, want.version)
            if new is None:
                continue
            if self._stopping:
                self._drain(new)
                return
            self.current[track] = new
            if proc is not None:
                self._drain(proc)
            changed = True
        if changed:
            self._publish()
        if changed and self.on_change is not None:
            self.on_change()

    def _publish(self) -> None:
        """The cluster's DNS: each track's Service (named as its Deployment) leads to its process, so a Job's
        `hey` aimed at ``http://helloworld-canary.hello.svc.cluster.local`` reaches it."""
        dns = getattr(self.kube, "dns", None)
        if dns is None:
            return
        for track, name in self.deployments.items():
            proc = self.current.get(track)
            if proc is not None and proc.alive:
                dns.register(self.namespace, name, proc.address)
            else:
                dns.forget(self.namespace, name)

    async def _spawn(self, track: str, version: str) -> TrackProcess | None:
        try:
            running = await asyncio.to_thread(
                runner.start, version, env=process_env(version), drain_seconds=self.drain_seconds
            )
        except (runner.StartError, OSError) as exc:
            if self.errors.get(track) != version:
                log.warning("helloworld %s (%s) did not start: %s", version, track, exc)
            self.errors[track] = version
            return None
        self.errors.pop(track, None)
        log.info("helloworld %s started for the %s track on %s", version, track, running.url)
        return TrackProcess(track=track, version=version, running=running)

    def _drain(self, proc: TrackProcess) -> None:
        """SIGTERM the process and wait for it in a thread; it finishes in-flight requests first."""
        task = asyncio.ensure_future(self._stop_process(proc))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _stop_process(self, proc: TrackProcess) -> None:
        code = await asyncio.to_thread(proc.running.stop, self.drain_seconds + 10)
        log.info("helloworld %s (%s) stopped with code %s", proc.version, proc.track, code)
