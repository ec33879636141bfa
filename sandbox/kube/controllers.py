"""Simulated controllers: Deployment/ReplicaSet rollouts with pods, and cert-manager issuance.

They run as asyncio tasks in the emulator's loop and write through the store (never through HTTP), so
every change they make is seen by watches and listeners like a real controller's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from . import kinds
from .certs import LocalCA, parse_go_duration
from .store import ApiError, Store, now_iso

log = logging.getLogger(__name__)

DEPLOYMENTS = kinds.lookup("apps", "deployments")
REPLICASETS = kinds.lookup("apps", "replicasets")
PODS = kinds.lookup("", "pods")
EVENTS = kinds.lookup("", "events")
SECRETS = kinds.lookup("", "secrets")
CERTIFICATES = kinds.lookup("cert-manager.io", "certificates")
NAMESPACES = kinds.lookup("", "namespaces")
assert DEPLOYMENTS and REPLICASETS and PODS and EVENTS and SECRETS and CERTIFICATES and NAMESPACES

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
FAIL_ANNOTATION = "sandbox.hello-chatops.dev/fail-issuance"
NODE = "sandbox-node"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any]) -> str:
    """A stable, DNS-safe hash of a pod template (the `pod-template-hash` label's role)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    out = []
    for _ in range(10):
        number, rest = divmod(number, len(_SAFE))
        out.append(_SAFE[rest])
    return "".join(out)


def image_id(image: str) -> str:
    """A container's ``imageID`` as the kubelet reports it from containerd: ``<repository>@sha256:<digest>``.

    An image pinned by digest (``repo:tag@sha256:...`` or ``repo@sha256:...``) reports that digest; a
    tag stands for a deterministic digest of its reference, so one tag is one digest in every cluster.
    """
    name, _, pinned = image.partition("@")
    head, slash, last = name.rpartition("/")
    repository = head + slash + last.partition(":")[0]
    digest = pinned if pinned.startswith("sha256:") else "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return f"{repository}@{digest}"


def _random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_SAFE) for _ in range(n))


def resolve_int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """maxSurge / maxUnavailable as an absolute number (surge rounds up, unavailable down)."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)


_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", REVISION,
               "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
               "deployment.kubernetes.io/max-replicas")


def copied_annotations(deploy: dict[str, Any]) -> dict[str, str]:
    """The Deployment annotations its ReplicaSets carry too (all but the controller's own and apply's)."""
    return {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED}


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def owner_ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  *, touch: bool = False, extra: dict[str, Any] | None = None) -> None:
    """Set a condition like controllers do: lastTransitionTime moves only when the status changes,
    lastUpdateTime (when the condition kind uses it) when anything changes or `touch`."""
    stamp = now_iso()
    for cond in conditions:
        if cond.get("type") != type_:
            continue
        changed = (cond.get("status"), cond.get("reason"), cond.get("message")) != (status, reason, message)
        if cond.get("status") != status:
            cond["lastTransitionTime"] = stamp
        if "lastUpdateTime" in cond and (changed or touch):
            cond["lastUpdateTime"] = stamp
        cond.update(status=status, reason=reason, message=message, **(extra or {}))
        return
    cond = {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": stamp, **(extra or {})}
    conditions.append(cond)


class DeploymentController:
    """Deployments -> ReplicaSets -> Pods, with rolling updates, readiness and rollout conditions."""

    def __init__(self, store: Store, *, broken_images: Iterable[str] = (), pod_ready_seconds: float = 0.5,
                 deadline_scale: float = 1.0) -> None:
        self.store = store
        self.broken_images = set(broken_images)
        self.pod_ready_seconds = pod_ready_seconds
        self.deadline_scale = deadline_scale
        self._born: dict[str, float] = {}  # pod uid -> monotonic creation time
        self._progress: dict[str, tuple[Any, float]] = {}  # deployment uid -> (signature, since)
        self._backoff: set[str] = set()

    def is_broken(self, image: str) -> bool:
        return image in self.broken_images or image.rsplit("/", 1)[-1].partition(":")[2].endswith("-broken")

    def tick(self) -> None:
        self._pods()
        for deploy in self.store.list("apps", "deployments"):
            try:
                self._sync_deployment(deploy)
            except ApiError as exc:  # the object changed or vanished under us: next tick
                log.debug("deployment sync: %s", exc.message)
        for rs in self.store.list("apps", "replicasets"):
            try:
                self._sync_replicaset(rs)
            except ApiError as exc:
                log.debug("replicaset sync: %s", exc.message)
        for deploy in self.store.list("apps", "deployments"):
            try:
                self._deployment_status(deploy)
            except ApiError as exc:
                log.debug("deployment status: %s", exc.message)

    # --- pods ---------------------------------------------------------------------------------------

    def _pods(self) -> None:
        now = time.monotonic()
        for pod in self.store.list("", "pods"):
            if any(ref.get("kind") == "Job" for ref in pod["metadata"].get("ownerReferences") or []):
                continue  # a Job's pods run as processes (sandbox.kube.jobs)
            uid = pod["metadata"]["uid"]
            born = self._born.setdefault(uid, now)
            if now - born < self.pod_ready_seconds:
                continue
            containers = pod["spec"].get("containers") or []
            broken = [c for c in containers if self.is_broken(str(c.get("image", "")))]
            status = pod.get("status") or {}
            if broken:
                if uid in self._backoff:
                    continue
                self._backoff.add(uid)
                new_status = self._pod_status(pod, broken={c["name"] for c in broken})
                self.store.update(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                  {**pod, "status": new_status}, subresource="status")
                for c in broken:
                    self._event(pod, "Warning", "BackOff",
                                f"Back-off restarting failed container {c['name']} in pod "
                                f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                                field_path=f"spec.containers{{{c['name']}}}", component="kubelet")
            elif status.get("phase") != "Running" or not pod_ready(pod):
                self.store.update(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                  {**pod, "status": self._pod_status(pod, broken=set())}, subresource="status")

    def _pod_status(self, pod: dict[str, Any], broken: set[str]) -> dict[str, Any]:
        stamp = now_iso()
        ready = "False" if broken else "True"
        statuses = []
        for c in pod["spec"].get("containers") or []:
            bad = c["name"] in broken
            state = ({"waiting": {"reason": "CrashLoopBackOff",
                                  "message": f"back-off 10s restarting failed container={c['name']} "
                                             f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                                             f"({pod['metadata']['uid']})"}}
                     if bad else {"running": {"startedAt": stamp}})
            last = ({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": stamp, "finishedAt": stamp,
                                    "containerID": f"containerd://{_random_suffix(12)}"}} if bad else {})
            statuses.append({"name": c["name"], "image": c.get("image", ""),
                             "imageID": image_id(str(c.get("image", ""))),
                             "containerID": f"containerd://{_random_suffix(12)}", "ready": not bad,
                             "started": not bad, "restartCount": 1 if bad else 0, "state": state,
                             "lastState": last})
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": stamp},
            {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
            {"type": "Ready", "status": ready, "lastTransitionTime": stamp,
             **({"reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{' '.join(sorted(broken))}]"} if broken else {})},
            {"type": "ContainersReady", "status": ready, "lastTransitionTime": stamp,
             **({"reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{' '.join(sorted(broken))}]"} if broken else {})},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        ]
        return {"phase": "Running", "conditions": conditions, "containerStatuses": statuses,
                "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": self._pod_ip(pod),
                "podIPs": [{"ip": self._pod_ip(pod)}], "qosClass": "BestEffort", "startTime": stamp}

    @staticmethod
    def _pod_ip(pod: dict[str, Any]) -> str:
        n = int(hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest()[:4], 16)
        return f"10.244.{n // 256}.{n % 256 or 1}"

    def _event(self, obj: dict[str, Any], type_: str, reason: str, message: str, *, field_path: str | None = None,
               component: str = "deployment-controller") -> None:
        meta = obj["metadata"]
        stamp = now_iso()
        involved = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                    "namespace": meta["namespace"], "uid": meta["uid"],
                    "resourceVersion": meta.get("resourceVersion", "")}
        if field_path:
            involved["fieldPath"] = field_path
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta["namespace"]},
                 "involvedObject": involved, "reason": reason, "message": message, "type": type_,
                 "source": {"component": component, **({"host": NODE} if component == "kubelet" else {})},
                 "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                 "reportingComponent": component, "reportingInstance": NODE if component == "kubelet" else ""}
        try:
            self.store.create(EVENTS, meta["namespace"], event)
        except ApiError as exc:
            log.debug("event not recorded: %s", exc.message)

    # --- deployments --------------------------------------------------------------------------------

    def _owned_sets(self, deploy: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deploy["metadata"]["uid"]
        return self.store.list("apps", "replicasets", deploy["metadata"]["namespace"],
                               lambda rs: owned_by(rs, uid))

    def _sync_deployment(self, deploy: dict[str, Any]) -> None:
        meta, spec = deploy["metadata"], deploy["spec"]
        ns, name = meta["namespace"], meta["name"]
        template = spec["template"]
        digest = template_hash(template)
        sets = self._owned_sets(deploy)
        revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in sets]
        top = max(revisions, default=0)
        new_name = f"{name}-{digest}"
        new = next((rs for rs in sets if rs["metadata"]["name"] == new_name), None)
        desired = int(spec.get("replicas", 1))
        if new is None:
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
            new = self.store.create(REPLICASETS, ns, {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": new_name, "namespace": ns,
                             "labels": {**(template.get("metadata", {}).get("labels") or {}), HASH_LABEL: digest},
                             "annotations": {**copied_annotations(deploy), REVISION: str(top + 1),
                                             "deployment.kubernetes.io/desired-replicas": str(desired)},
                             "ownerReferences": [owner_ref(deploy)]},
                "spec": {"replicas": 0, "selector": selector, "template": rs_template}})
            sets.append(new)
            self._set_progress(deploy, "NewReplicaSetCreated", f'Created new replica set "{new_name}"')
        elif int(new["metadata"].get("annotations", {}).get(REVISION, "0")) != top:
            new["metadata"].setdefault("annotations", {})[REVISION] = str(top + 1)
            new["metadata"]["annotations"].update(copied_annotations(deploy))
            new = self.store.update(REPLICASETS, ns, new_name, new, internal=True)
            self._set_progress(deploy, "FoundNewReplicaSet", f'Found new replica set "{new_name}"')
        elif any(new["metadata"].get("annotations", {}).get(k) != v for k, v in copied_annotations(deploy).items()):
            # like the deployment controller, the new ReplicaSet follows the Deployment's annotations
            # (`kubectl rollout history` reads the change cause from there)
            new["metadata"].setdefault("annotations", {}).update(copied_annotations(deploy))
            new = self.store.update(REPLICASETS, ns, new_name, new, internal=True)
        revision = new["metadata"]["annotations"][REVISION]
        if (meta.get("annotations") or {}).get(REVISION) != revision:
            fresh = self.store.get("apps", "deployments", ns, name)
            if fresh is None:
                return
            fresh["metadata"].setdefault("annotations", {})[REVISION] = revision
            self.store.update(DEPLOYMENTS, ns, name, fresh, internal=True)
        if spec.get("paused"):
            return
        olds = [rs for rs in sets if rs["metadata"]["name"] != new_name]
        self._rollout(deploy, new, olds, desired)

    def _rs_pods(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        uid = rs["metadata"]["uid"]
        return self.store.list("", "pods", rs["metadata"]["namespace"], lambda p: owned_by(p, uid))

    def _scale(self, deploy: dict[str, Any], rs: dict[str, Any], replicas: int) -> None:
        before = int(rs["spec"].get("replicas", 0))
        if before == replicas:
            return
        rs["spec"]["replicas"] = replicas
        rs["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(
            deploy["spec"].get("replicas", 1))
        self.store.update(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], rs, internal=True)
        direction = "up" if replicas > before else "down"
        self._event(deploy, "Normal", "ScalingReplicaSet",
                    f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {replicas}")

    def _rollout(self, deploy: dict[str, Any], new: dict[str, Any], olds: list[dict[str, Any]],
                 desired: int) -> None:
        strategy = deploy["spec"].get("strategy") or {}
        available = {rs["metadata"]["uid"]: sum(pod_ready(p) for p in self._rs_pods(rs)) for rs in [new, *olds]}
        if strategy.get("type") == "Recreate":
            for rs in olds:
                self._scale(deploy, rs, 0)
            if not any(self._rs_pods(rs) for rs in olds):
                self._scale(deploy, new, desired)
            return
        ru = strategy.get("rollingUpdate") or {}
        surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), desired, round_up=True)
        unavailable = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        new_replicas = int(new["spec"].get("replicas", 0))
        total = new_replicas + sum(int(rs["spec"].get("replicas", 0)) for rs in olds)
        if new_replicas > desired:
            self._scale(deploy, new, desired)
            new_replicas = desired
        elif new_replicas < desired:
            room = desired + surge - total
            if room > 0:
                new_replicas = min(desired, new_replicas + room)
                self._scale(deploy, new, new_replicas)
        total = new_replicas + sum(int(rs["spec"].get("replicas", 0)) for rs in olds)
        min_available = desired - unavailable
        new_unavailable = max(new_replicas - available[new["metadata"]["uid"]], 0)
        budget = total - min_available - new_unavailable
        if budget <= 0:
            return
        olds = sorted(olds, key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")))
        # First drop old replicas that are not available anyway, then available ones within the budget.
        for rs in olds:
            replicas = int(rs["spec"].get("replicas", 0))
            unhealthy = replicas - available[rs["metadata"]["uid"]]
            cut = min(unhealthy, budget)
            if cut > 0:
                self._scale(deploy, rs, replicas - cut)
                budget -= cut
        total_available = sum(available.values())
        budget = min(budget, total_available - min_available)
        for rs in olds:
            if budget <= 0:
                break
            replicas = int(rs["spec"].get("replicas", 0))
            cut = min(replicas, budget)
            if cut > 0:
                self._scale(deploy, rs, replicas - cut)
                budget -= cut

    def _sync_replicaset(self, rs: dict[str, Any]) -> None:
        meta = rs["metadata"]
        pods = self._rs_pods(rs)
        want = int(rs["spec"].get("replicas", 0))
        if len(pods) < want:
            template = rs["spec"]["template"]
            for _ in range(want - len(pods)):
                pod = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": f"{meta['name']}-{_random_suffix()}", "namespace": meta["namespace"],
                                    "labels": copy.deepcopy(template.get("metadata", {}).get("labels") or {}),
                                    "annotations": copy.deepcopy(
                                        template.get("metadata", {}).get("annotations") or {}),
                                    "ownerReferences": [owner_ref(rs)]},
                       "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": NODE},
                       "status": {"phase": "Pending", "qosClass": "BestEffort",
                                  "conditions": [{"type": "PodScheduled", "status": "True",
                                                  "lastTransitionTime": now_iso()}],
                                  "containerStatuses": [
                                      {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                       "ready": False, "restartCount": 0, "started": False,
                                       "state": {"waiting": {"reason": "ContainerCreating"}}}
                                      for c in (template.get("spec") or {}).get("containers") or []]}}
                created = self.store.create(PODS, meta["namespace"], pod, keep_status=True)
                self._born[created["metadata"]["uid"]] = time.monotonic()
                pods.append(created)
        elif len(pods) > want:
            victims = sorted(pods, key=lambda p: (pod_ready(p), -self._born.get(p["metadata"]["uid"], 0.0)))
            for pod in victims[: len(pods) - want]:
                try:
                    self.store.delete(PODS, meta["namespace"], pod["metadata"]["name"])
                except ApiError:
                    pass
                self._born.pop(pod["metadata"]["uid"], None)
                self._backoff.discard(pod["metadata"]["uid"])
                pods.remove(pod)
        ready = sum(pod_ready(p) for p in pods)
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": meta.get("generation", 1)}
        if rs.get("status") != status:
            self.store.update(REPLICASETS, meta["namespace"], meta["name"], {**rs, "status": status},
                              subresource="status")

    def _set_progress(self, deploy: dict[str, Any], reason: str, message: str) -> None:
        self._progress[deploy["metadata"]["uid"]] = (("reason", reason, message), time.monotonic())

    def _deployment_status(self, deploy: dict[str, Any]) -> None:
        meta, spec = deploy["metadata"], deploy["spec"]
        desired = int(spec.get("replicas", 1))
        sets = self._owned_sets(deploy)
        digest = template_hash(spec["template"])
        new = next((rs for rs in sets if rs["metadata"]["name"] == f"{meta['name']}-{digest}"), None)
        if new is None:
            return
        all_pods = [p for rs in sets for p in self._rs_pods(rs)]
        new_pods = self._rs_pods(new)
        ready = sum(pod_ready(p) for p in all_pods)
        updated = len(new_pods)
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), desired, round_up=False) \
            if (spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" else 0
        status: dict[str, Any] = {"observedGeneration": meta.get("generation", 1), "replicas": len(all_pods),
                                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready}
        if desired - ready > 0:
            status["unavailableReplicas"] = desired - ready
        old_status = deploy.get("status") or {}
        conditions = copy.deepcopy(old_status.get("conditions") or [])
        if ready >= desired - max_unavailable:
            set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.", extra=None)
        else:
            set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.")
        new_name = new["metadata"]["name"]
        complete = (updated == desired and len(all_pods) == desired and ready == desired
                    and sum(pod_ready(p) for p in new_pods) == desired)
        uid = meta["uid"]
        signature = (new_name, int(new["spec"].get("replicas", 0)), updated, ready, len(all_pods))
        marker = self._progress.get(uid)
        now = time.monotonic()
        if marker is not None and marker[0][0] == "reason":
            # A ReplicaSet was just created or adopted: report that, then track progress from here.
            _, reason, message = marker[0]
            set_condition(conditions, "Progressing", "True", reason, message, touch=True)
            self._progress[uid] = (signature, now)
        elif complete:
            set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                          f'ReplicaSet "{new_name}" has successfully progressed.')
            self._progress[uid] = (signature, now)
        elif marker is None or marker[0] != signature:
            set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                          f'ReplicaSet "{new_name}" is progressing.', touch=True)
            self._progress[uid] = (signature, now)
        else:
            deadline = float(spec.get("progressDeadlineSeconds", 600)) * self.deadline_scale
            if now - marker[1] > deadline:
                set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                              f'ReplicaSet "{new_name}" has timed out progressing.')
        for cond in conditions:
            cond.setdefault("lastUpdateTime", cond.get("lastTransitionTime"))
        conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
        status["conditions"] = conditions
        if old_status != status:
            fresh = self.store.get("apps", "deployments", meta["namespace"], meta["name"])
            if fresh is None:
                return
            self.store.update(DEPLOYMENTS, meta["namespace"], meta["name"], {**fresh, "status": status},
                              subresource="status")


class CertificateController:
    """cert-manager's issuing loop for Certificates, signing with a local CA."""

    def __init__(self, store: Store, *, issue_delay: float = 0.3) -> None:
        self.store = store
        self.issue_delay = issue_delay
        self.failures = 0  # the next N issuances fail
        self.ca = LocalCA()
        self._due: dict[str, float] = {}

    def tick(self) -> None:
        now = time.monotonic()
        for cert in self.store.list("cert-manager.io", "certificates"):
            uid = cert["metadata"]["uid"]
            status = cert.get("status") or {}
            conditions = status.get("conditions") or []
            issuing = next((c for c in conditions if c.get("type") == "Issuing"), None)
            if issuing is None and not status.get("revision") and not status.get("notAfter") \
                    and not status.get("lastFailureTime"):
                message = "Issuing certificate as Secret does not exist"
                conditions = copy.deepcopy(conditions)
                set_condition(conditions, "Ready", "False", "DoesNotExist", message)
                set_condition(conditions, "Issuing", "True", "DoesNotExist", message)
                self._write_status(cert, {**status, "conditions": conditions})
                issuing = {"status": "True"}
            if issuing is not None and issuing.get("status") == "True":
                self._due.setdefault(uid, now + self.issue_delay)
                if now >= self._due[uid]:
                    del self._due[uid]
                    fresh = self.store.get("cert-manager.io", "certificates", cert["metadata"]["namespace"],
                                           cert["metadata"]["name"])
                    if fresh is not None:
                        self._issue(fresh)
            else:
                self._due.pop(uid, None)

    def _write_status(self, cert: dict[str, Any], status: dict[str, Any]) -> None:
        meta = cert["metadata"]
        try:
            self.store.update(CERTIFICATES, meta["namespace"], meta["name"], {**cert, "status": status},
                              subresource="status")
        except ApiError as exc:
            log.debug("certificate status: %s", exc.message)

    def _should_fail(self, cert: dict[str, Any]) -> bool:
        if self.failures > 0:
            self.failures -= 1
            return True
        flag = str((cert["metadata"].get("annotations") or {}).get(FAIL_ANNOTATION, "")).strip().lower()
        if flag in ("true", "always", "yes"):
            return True
        if flag.isdigit():
            return int((cert.get("status") or {}).get("failedIssuanceAttempts", 0)) < int(flag)
        return False

    def _issue(self, cert: dict[str, Any]) -> None:
        meta, spec = cert["metadata"], cert["spec"]
        status = copy.deepcopy(cert.get("status") or {})
        conditions = status.setdefault("conditions", [])
        if self._should_fail(cert):
            status["lastFailureTime"] = now_iso()
            status["failedIssuanceAttempts"] = int(status.get("failedIssuanceAttempts", 0)) + 1
            set_condition(conditions, "Issuing", "False", "Failed",
                          "The certificate request has failed to complete and will be retried: the issuer "
                          f"{spec.get('issuerRef', {}).get('name', '')!r} refused the request",
                          extra={"observedGeneration": meta.get("generation", 1)})
            self._write_status(cert, status)
            return
        duration = parse_go_duration(spec["duration"]) if spec.get("duration") else timedelta(days=90)
        key = spec.get("privateKey") or {}
        issued = self.ca.issue(list(spec.get("dnsNames") or []), duration, common_name=spec.get("commonName"),
                               ip_addresses=spec.get("ipAddresses"), algorithm=key.get("algorithm", "RSA"),
                               size=key.get("size"))
        renew_before = parse_go_duration(spec["renewBefore"]) if spec.get("renewBefore") else duration / 3
        self._write_secret(cert, issued)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        status.update(notBefore=issued.not_before.strftime(fmt), notAfter=issued.not_after.strftime(fmt),
                      renewalTime=(issued.not_after - renew_before).astimezone(UTC).strftime(fmt),
                      revision=int(status.get("revision", 0)) + 1)
        status.pop("lastFailureTime", None)
        status.pop("failedIssuanceAttempts", None)
        status["conditions"] = [c for c in conditions if c.get("type") != "Issuing"]
        set_condition(status["conditions"], "Ready", "True", "Ready", "Certificate is up to date and has not expired",
                      extra={"observedGeneration": meta.get("generation", 1)})
        self._write_status(cert, status)

    def _write_secret(self, cert: dict[str, Any], issued: Any) -> None:
        meta, spec = cert["metadata"], cert["spec"]
        issuer = spec.get("issuerRef") or {}
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                  "metadata": {"name": spec["secretName"], "namespace": meta["namespace"],
                               "labels": {"controller.cert-manager.io/fao": "true"},
                               "annotations": {"cert-manager.io/certificate-name": meta["name"],
                                               "cert-manager.io/issuer-name": issuer.get("name", ""),
                                               "cert-manager.io/issuer-kind": issuer.get("kind", "Issuer"),
                                               "cert-manager.io/issuer-group": issuer.get("group",
                                                                                          "cert-manager.io"),
                                               "cert-manager.io/alt-names": ",".join(spec.get("dnsNames") or []),
                                               "cert-manager.io/common-name": spec.get("commonName", "")}},
                  "data": {"tls.crt": base64.b64encode(issued.cert_pem).decode(),
                           "tls.key": base64.b64encode(issued.key_pem).decode(),
                           "ca.crt": base64.b64encode(issued.ca_pem).decode()}}
        existing = self.store.get("", "secrets", meta["namespace"], spec["secretName"])
        if existing is None:
            self.store.create(SECRETS, meta["namespace"], secret)
        else:
            existing["type"] = "kubernetes.io/tls"
            existing["data"] = {**(existing.get("data") or {}), **secret["data"]}
            existing["metadata"].setdefault("annotations", {}).update(secret["metadata"]["annotations"])
            existing["metadata"].setdefault("labels", {}).update(secret["metadata"]["labels"])
            self.store.update(SECRETS, meta["namespace"], spec["secretName"], existing, internal=True)


class NamespaceController:
    """Removes a Terminating namespace and everything in it, `finalize_seconds` after its deletion."""

    def __init__(self, store: Store, *, finalize_seconds: float = 1.0) -> None:
        self.store = store
        self.finalize_seconds = finalize_seconds
        self._since: dict[str, float] = {}

    def tick(self) -> None:
        now = time.monotonic()
        for ns in self.store.list("", "namespaces"):
            meta = ns["metadata"]
            if not meta.get("deletionTimestamp"):
                continue
            since = self._since.setdefault(meta["uid"], now)
            if now - since >= self.finalize_seconds:
                try:
                    self.store.delete(NAMESPACES, None, meta["name"])
                except ApiError as exc:
                    log.debug("namespace finalization: %s", exc.message)
                self._since.pop(meta["uid"], None)


QUIET_SECONDS = 1.0  # a store unchanged this long is idle: controllers then tick every IDLE_TICK at most
IDLE_TICK = 0.25


async def run_controllers(controllers: list[Any], tick: float, store: Store | None = None) -> None:
    """Run each controller's `tick()` every `tick` seconds until cancelled.

    With the ``store``, a cluster where nothing has changed for ``QUIET_SECONDS`` is idle: the controllers
    then tick every ``IDLE_TICK`` seconds (what waits for time, such as a progress deadline, is seen that
    late at most), and any change wakes them at once. A test's idle clusters cost next to nothing.
    """
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:  # called by the store, perhaps from another thread
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(changed.set)

    stop = store.on_change(wake) if store is not None else None
    seen, quiet_since = -1, time.monotonic()
    try:
        while True:
            for controller in controllers:
                try:
                    controller.tick()
                except Exception:
                    log.exception("controller %s failed", type(controller).__name__)
            if store is None:
                await asyncio.sleep(tick)
                continue
            now = time.monotonic()
            if store.resource_version != seen:
                seen, quiet_since = store.resource_version, now
            if now - quiet_since < QUIET_SECONDS:
                await asyncio.sleep(tick)
                continue
            changed.clear()
            if store.resource_version == seen:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), max(tick, IDLE_TICK))
    finally:
        if stop is not None:
            stop()


def utcnow() -> datetime:
    return datetime.now(UTC)
