"""The Job controller and a kubelet for its pods: a Job's pods run their containers as local processes.

A Job (`batch/v1`) gets pods from its template, owned by it (`ownerReferences`, controller) and labelled
with its selector, up to `parallelism` at once until `completions` of them succeed. Each container of such
a pod runs as a local process: its `command` and `args` (the image's entrypoint is not known here, so a
container without a command runs its `args`), `$(VAR)` references expanded from its `env` as the kubelet
does, with that `env` (and `HOSTNAME`, the pod's name) as its environment. A Service's cluster name in an
argument or a variable (`http://helloworld-canary.hello.svc.cluster.local/v1/hello`) is rewritten to the
address registered for it in :class:`ClusterDns` (the sandbox registers its helloworld processes), the
way a cluster's DNS and Service would send it there. What a process writes to stdout and stderr is the
container's log (`GET .../pods/<name>/log`, what `kubectl logs` reads).

The Job's rules, as the real controller keeps them: `status.startTime`, `active`, `ready`, `succeeded`,
`failed`; a pod that fails is replaced until more than `backoffLimit` have failed (condition `Failed`,
reason `BackoffLimitExceeded`); a Job active longer than `activeDeadlineSeconds` has its running pods
killed and fails with reason `DeadlineExceeded`; `completions` successes make it `Complete` with a
`completionTime` (each end is preceded by its `FailureTarget` / `SuccessCriteriaMet` condition, as since
Kubernetes 1.31). Deleting a Job deletes its pods (the store's garbage collection, which also deletes a
Job whose owner is deleted), and a process whose pod is gone is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import re
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import kinds
from .controllers import NODE, _random_suffix, image_id, owned_by, owner_ref, set_condition
from .store import ApiError, Store, now_iso

log = logging.getLogger(__name__)

JOBS = kinds.lookup("batch", "jobs")
PODS = kinds.lookup("", "pods")
assert JOBS and PODS

LOG_LIMIT = 10 * 1024 * 1024  # bytes of a container's log kept (the kubelet rotates at 10 MiB by default)
_VAR = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)|\$\$")
_URL_HOST = re.compile(r"(?P<scheme>https?://)(?P<host>[a-z0-9.-]+)(?::(?P<port>\d+))?")


class ClusterDns:
    """Where a Service's cluster name leads: `(namespace, service) -> "127.0.0.1:PORT"`."""

    def __init__(self) -> None:
        self._addresses: dict[tuple[str, str], str] = {}

    def register(self, namespace: str, service: str, address: str) -> None:
        self._addresses[(namespace, service)] = address

    def forget(self, namespace: str, service: str) -> None:
        self._addresses.pop((namespace, service), None)

    def resolve(self, host: str, namespace: str) -> str | None:
        """`svc`, `svc.ns`, `svc.ns.svc` or `svc.ns.svc.cluster.local` seen from a pod in `namespace`."""
        parts = host.lower().removesuffix(".cluster.local").removesuffix(".svc").split(".")
        if len(parts) == 1:
            return self._addresses.get((namespace, parts[0]))
        if len(parts) == 2:
            return self._addresses.get((parts[1], parts[0]))
        return None

    def rewrite(self, text: str, namespace: str) -> str:
        """Every `http(s)://<service>[:port]` in `text` pointed at the address registered for it."""
        def swap(match: re.Match[str]) -> str:
            address = self.resolve(match["host"], namespace)
            return f"{match['scheme']}{address}" if address else match.group(0)
        return _URL_HOST.sub(swap, text)


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion in a command or argument (`$$` is a literal `$`; unknown stay)."""
    def swap(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match[1], match.group(0))
    return _VAR.sub(swap, text)


@dataclass
class Run:
    """One container of a pod, running (or run) as a local process."""

    pod_uid: str
    container: str
    started: str
    log: bytearray = field(default_factory=bytearray)
    process: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    failure: str = ""  # why it did not start (the kubelet's StartError message)
    finished: str = ""
    task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.exit_code is not None

    def append(self, data: bytes) -> None:
        self.log.extend(data)
        if len(self.log) > LOG_LIMIT:
            del self.log[: len(self.log) - LOG_LIMIT]

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)


class JobController:
    """Jobs -> pods -> local processes, with the Job's status and conditions."""

    def __init__(self, store: Store, dns: ClusterDns) -> None:
        self.store = store
        self.dns = dns
        self.runs: dict[tuple[str, str], Run] = {}  # (pod uid, container) -> its process

    # --- the loop -------------------------------------------------------------------------------------

    def tick(self) -> None:
        self._reap()
        for job in self.store.list("batch", "jobs"):
            try:
                self._sync(job)
            except ApiError as exc:  # changed or gone under us: next tick
                log.debug("job sync: %s", exc.message)

    def stop(self) -> None:
        """Kill every process (the emulator stops)."""
        for run in self.runs.values():
            run.kill()
            if run.task is not None:
                run.task.cancel()
        self.runs.clear()

    def _reap(self) -> None:
        """A process whose pod was deleted is killed, and forgotten."""
        alive = {p["metadata"]["uid"] for p in self.store.list("", "pods")}
        for key, run in list(self.runs.items()):
            if run.pod_uid not in alive:
                run.kill()
                if run.done or run.process is None:
                    del self.runs[key]

    def log_of(self, pod: dict[str, Any], container: str) -> Run | None:
        return self.runs.get((pod["metadata"]["uid"], container))

    # --- a Job ----------------------------------------------------------------------------------------

    def _sync(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        status = copy.deepcopy(job.get("status") or {})
        conditions = status.setdefault("conditions", [])
        if _finished(conditions) or spec.get("suspend"):
            return
        status.setdefault("startTime", now_iso())
        pods = self.store.list("", "pods", meta["namespace"], lambda p: owned_by(p, meta["uid"]))
        for pod in pods:
            self._kubelet(pod)
        pods = self.store.list("", "pods", meta["namespace"], lambda p: owned_by(p, meta["uid"]))
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        active = [p for p, phase in zip(pods, phases, strict=True) if phase in ("Pending", "Running")]
        deadline = spec.get("activeDeadlineSeconds")
        if deadline and _age(status["startTime"]) > float(deadline):
            self._end_active(active)
            failed += len(active)
            active = []
            self._fail(conditions, "DeadlineExceeded", "Job was active longer than specified deadline")
        elif failed > int(spec.get("backoffLimit", 6)):
            self._end_active(active)
            failed += len(active)
            active = []
            self._fail(conditions, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif succeeded >= int(spec.get("completions", 1)):
            set_condition(conditions, "SuccessCriteriaMet", "True", "CompletionsReached",
                          "Reached expected number of succeeded pods")
            set_condition(conditions, "Complete", "True", "CompletionsReached",
                          "Reached expected number of succeeded pods")
            status["completionTime"] = now_iso()
        else:
            want = min(int(spec.get("parallelism", 1)), int(spec.get("completions", 1)) - succeeded)
            for _ in range(want - len(active)):
                active.append(self._create_pod(job))
        status.update(active=len(active), succeeded=succeeded, failed=failed, terminating=0,
                      ready=sum(1 for p in active if (p.get("status") or {}).get("phase") == "Running"),
                      uncountedTerminatedPods={})
        for key in ("active", "succeeded", "failed"):
            if not status[key]:
                del status[key]
        if not conditions:
            del status["conditions"]
        if status != (job.get("status") or {}):
            self.store.update(JOBS, meta["namespace"], meta["name"], {**job, "status": status},
                              subresource="status")

    @staticmethod
    def _fail(conditions: list[dict[str, Any]], reason: str, message: str) -> None:
        set_condition(conditions, "FailureTarget", "True", reason, message)
        set_condition(conditions, "Failed", "True", reason, message)

    def _end_active(self, pods: list[dict[str, Any]]) -> None:
        """Kill the running pods' processes and delete the pods, as the controller does at a Job's end."""
        for pod in pods:
            for run in [r for r in self.runs.values() if r.pod_uid == pod["metadata"]["uid"]]:
                run.kill()
            with contextlib.suppress(ApiError):
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _create_pod(self, job: dict[str, Any]) -> dict[str, Any]:
        meta, template = job["metadata"], job["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{meta['name']}-{_random_suffix()}", "namespace": meta["namespace"],
                            "labels": copy.deepcopy((template.get("metadata") or {}).get("labels") or {}),
                            "annotations": copy.deepcopy((template.get("metadata") or {}).get("annotations") or {}),
                            "ownerReferences": [owner_ref(job)]},
               "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": NODE},
               "status": {"phase": "Pending", "qosClass": "BestEffort",
                          "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_iso()}],
                          "containerStatuses": [
                              {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                               "restartCount": 0, "started": False,
                               "state": {"waiting": {"reason": "ContainerCreating"}}}
                              for c in (template.get("spec") or {}).get("containers") or []]}}
        return self.store.create(PODS, meta["namespace"], pod, keep_status=True)

    # --- the kubelet of its pods ----------------------------------------------------------------------

    def _kubelet(self, pod: dict[str, Any]) -> None:
        """Start a pending pod's containers; write the status of its processes as they run and end."""
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        uid = pod["metadata"]["uid"]
        containers = pod["spec"].get("containers") or []
        runs = []
        for container in containers:
            run = self.runs.get((uid, container["name"]))
            if run is None:
                run = self.runs[(uid, container["name"])] = Run(uid, container["name"], now_iso())
                run.task = asyncio.get_running_loop().create_task(self._run(run, pod, container))
            runs.append(run)
        new = self._pod_status(pod, runs)
        if new != status:
            self.store.update(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], {**pod, "status": new},
                              subresource="status")

    def _pod_status(self, pod: dict[str, Any], runs: list[Run]) -> dict[str, Any]:
        statuses = []
        for run, container in zip(runs, pod["spec"].get("containers") or [], strict=True):
            image = str(container.get("image", ""))
            if run.done:
                reason = "Completed" if run.exit_code == 0 else ("StartError" if run.failure else "Error")
                state = {"terminated": {"exitCode": run.exit_code, "reason": reason, "startedAt": run.started,
                                        "finishedAt": run.finished, "containerID": f"containerd://{run.pod_uid[:12]}",
                                        **({"message": run.failure} if run.failure else {})}}
            else:
                state = {"running": {"startedAt": run.started}}
            statuses.append({"name": run.container, "image": image, "imageID": image_id(image),
                             "containerID": f"containerd://{run.pod_uid[:12]}", "ready": not run.done,
                             "started": not run.done, "restartCount": 0, "state": state, "lastState": {}})
        if runs and all(r.done for r in runs):
            phase = "Succeeded" if all(r.exit_code == 0 for r in runs) else "Failed"
        else:
            phase = "Running"
        ready = "True" if phase == "Running" else "False"
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        conditions = [{"type": t, "status": s, "lastTransitionTime": (old.get(t, {}).get("lastTransitionTime")
                                                                      if old.get(t, {}).get("status") == s
                                                                      else now_iso())}
                      for t, s in (("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", ready),
                                   ("ContainersReady", ready), ("PodScheduled", "True"))]
        if phase != "Running":
            for c in conditions[2:4]:
                c["reason"] = "PodCompleted"
        started = (pod.get("status") or {}).get("startTime") or (runs[0].started if runs else now_iso())
        return {"phase": phase, "conditions": conditions, "containerStatuses": statuses, "hostIP": "10.0.0.1",
                "hostIPs": [{"ip": "10.0.0.1"}], "podIP": "10.244.0.2", "podIPs": [{"ip": "10.244.0.2"}],
                "qosClass": "BestEffort", "startTime": started}

    async def _run(self, run: Run, pod: dict[str, Any], container: dict[str, Any]) -> None:
        namespace = pod["metadata"]["namespace"]
        env = {e["name"]: self.dns.rewrite(expand(str(e.get("value", "")), {}), namespace)
               for e in container.get("env") or [] if isinstance(e, dict) and "name" in e and "valueFrom" not in e}
        argv = [self.dns.rewrite(expand(str(a), env), namespace)
                for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pod["metadata"]["name"], **env}
        try:
            if not argv:
                raise FileNotFoundError("the container has neither a command nor args")
            run.process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=environment, start_new_session=True)
        except OSError as exc:
            run.failure = (f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                           f"exec: {argv[0] if argv else ''!r}: {exc.strerror or exc}")
            run.append(run.failure.encode() + b"\n")
            run.exit_code, run.finished = 128, now_iso()
            return
        assert run.process.stdout is not None
        try:
            while chunk := await run.process.stdout.read(65536):
                run.append(chunk)
            code = await run.process.wait()
        except asyncio.CancelledError:
            run.kill()
            raise
        run.exit_code = code if code >= 0 else 128 - code  # killed by a signal: 128 + its number
        run.finished = now_iso()


def _finished(conditions: list[dict[str, Any]]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def _age(stamp: str) -> float:
    """Seconds since an RFC 3339 timestamp of the API."""
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - then).total_seconds()


def pod_log(controller: JobController, pod: dict[str, Any], query: Any) -> tuple[Run | None, bytes]:
    """`GET /api/v1/namespaces/<ns>/pods/<name>/log`: the container's run and its log, as the kubelet
    answers it (`container`, `tailLines`, `limitBytes`); errors are the API server's 400s."""
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in pod["spec"].get("containers") or []]
    chosen = query.get("container")
    if not chosen:
        if len(containers) != 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: "
                                              f"[{' '.join(containers)}]")
        chosen = containers[0]
    if chosen not in containers:
        raise ApiError(400, "BadRequest", f"container {chosen} is not valid for pod {name}")
    run = controller.log_of(pod, chosen)
    if run is None:
        owned_by_job = any(r.get("kind") == "Job" for r in pod["metadata"].get("ownerReferences") or [])
        if owned_by_job:
            raise ApiError(400, "BadRequest", f'container "{chosen}" in pod "{name}" is waiting to start: '
                                              "ContainerCreating")
        return None, b""  # a Deployment's pods run no process here: an empty log
    data = bytes(run.log)
    tail = query.get("tailLines")
    if tail is not None and str(tail).isdigit():
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[len(lines) - int(tail):]) if int(tail) else b""
    limit = query.get("limitBytes")
    if limit is not None and str(limit).isdigit():
        data = data[: int(limit)]
    return run, data
