"""Jobs in the emulator: their pods run as local processes (the real `hey` against a real helloworld), with the
Job's rules: completion, backoffLimit, activeDeadlineSeconds, owners and garbage collection, logs, kubectl."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from helloworld import runner
from sandbox.kube import KubeEmulator, kinds
from tests.kubectl import kubectl_path, run_kubectl

from .conftest import FAST, Cluster, wait_for

NS = "hello"


@pytest.fixture(scope="module")
def service() -> Iterator[runner.Running]:
    with runner.start("v1") as running:
        yield running


@pytest.fixture(scope="module")
def emu(service: runner.Running) -> Iterator[KubeEmulator]:
    emulator = KubeEmulator(**FAST)
    emulator.store.create(kinds.lookup("", "namespaces"), None, {"metadata": {"name": NS}})
    emulator.dns.register(NS, "helloworld", f"{service.host}:{service.port}")
    with emulator.run_in_thread():
        yield emulator


@pytest.fixture(scope="module")
def kube(emu: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(emu, tmp_path_factory.mktemp("jobs"))
    yield cluster
    cluster.close()


def job(name: str, command: list[str], *, deadline: int | None = None, backoff: int | None = None,
        env: dict[str, str] | None = None, owner: dict | None = None, policy: str = "Never") -> dict:
    spec: dict = {"template": {"spec": {"restartPolicy": policy, "containers": [
        {"name": "main", "image": "registry.local/tools:1", "command": command,
         "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}]}}}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    if backoff is not None:
        spec["backoffLimit"] = backoff
    meta: dict = {"name": name, "namespace": NS, **({"ownerReferences": [owner]} if owner else {})}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def batch(kube: Cluster) -> client.BatchV1Api:
    return client.BatchV1Api(kube.api)


def condition(found: client.V1Job, type_: str) -> client.V1JobCondition | None:
    held = (found.status and found.status.conditions) or []
    return next((c for c in held if c.type == type_ and c.status == "True"), None)


def ended(kube: Cluster, name: str, type_: str):
    def check():
        found = batch(kube).read_namespaced_job(name, NS)
        return found if condition(found, type_) else None
    return wait_for(check, timeout=30, what=f"job {name} {type_}")


def pods_of(kube: Cluster, name: str) -> list[client.V1Pod]:
    return kube.core.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={name}").items


def test_hey_job_reaches_the_service_by_its_cluster_name_and_completes_with_its_csv_in_the_log(kube):
    url = "http://helloworld.hello.svc.cluster.local/v1/hello"
    batch(kube).create_namespaced_job(NS, job("hey", ["hey", "-z", "2s", "-q", "5", "-c", "2", "-o", "csv", url]))
    done = ended(kube, "hey", "Complete")
    assert done.status.succeeded == 1 and not done.status.active and done.status.completion_time is not None
    assert condition(done, "SuccessCriteriaMet") is not None
    assert done.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": done.metadata.uid}
    [pod] = pods_of(kube, "hey")
    assert pod.status.phase == "Succeeded"
    assert pod.metadata.owner_references[0].kind == "Job" and pod.metadata.owner_references[0].controller
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == "Completed"
    rows = list(csv.DictReader(io.StringIO(kube.core.read_namespaced_pod_log(pod.metadata.name, NS))))
    assert len(rows) >= 5 and {r["status-code"] for r in rows} == {"200"}
    tail = kube.core.read_namespaced_pod_log(pod.metadata.name, NS, tail_lines=2)
    assert len(tail.splitlines()) == 2


def test_a_container_gets_its_env_expanded_and_the_pod_name_as_hostname(kube):
    batch(kube).create_namespaced_job(NS, job("greet", ["sh", "-c", 'echo "$(GREETING) from $HOSTNAME"'],
                                              env={"GREETING": "hi"}))
    ended(kube, "greet", "Complete")
    [pod] = pods_of(kube, "greet")
    assert kube.core.read_namespaced_pod_log(pod.metadata.name, NS).strip() == f"hi from {pod.metadata.name}"


def test_active_deadline_kills_the_process_and_fails_the_job(kube, emu, tmp_path):
    marker = tmp_path / "pid"
    batch(kube).create_namespaced_job(NS, job("slow", ["sh", "-c", f"echo $$$$ > {marker}; exec sleep 60"],
                                              deadline=1))
    pid = int(wait_for(lambda: marker.exists() and marker.read_text().strip(), what="the process"))
    failed = ended(kube, "slow", "Failed")
    reason = condition(failed, "Failed")
    assert reason.reason == "DeadlineExceeded" and reason.message == "Job was active longer than specified deadline"
    assert condition(failed, "FailureTarget").reason == "DeadlineExceeded"
    assert failed.status.failed == 1 and not failed.status.active and failed.status.completion_time is None
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), what="the process killed")


def test_failed_pods_are_replaced_until_the_backoff_limit(kube):
    batch(kube).create_namespaced_job(NS, job("flaky", ["sh", "-c", "echo boom; exit 3"], backoff=1))
    failed = ended(kube, "flaky", "Failed")
    assert condition(failed, "Failed").reason == "BackoffLimitExceeded"
    pods = pods_of(kube, "flaky")
    assert failed.status.failed == 2 and len(pods) == 2
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {3}


def test_a_missing_executable_fails_the_container_as_the_kubelet_says(kube):
    batch(kube).create_namespaced_job(NS, job("nope", ["no-such-tool-here"], backoff=0))
    ended(kube, "nope", "Failed")
    [pod] = pods_of(kube, "nope")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "StartError" and terminated.exit_code == 128
    assert "no-such-tool-here" in terminated.message


def test_deleting_the_owner_deletes_the_job_its_pods_and_kills_the_process(kube, tmp_path):
    owner = kube.core.create_namespaced_config_map(NS, {"metadata": {"name": "release-x"}, "data": {"a": "b"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "release-x", "uid": owner.metadata.uid}
    marker = tmp_path / "pid"
    batch(kube).create_namespaced_job(NS, job("owned", ["sh", "-c", f"echo $$$$ > {marker}; exec sleep 60"],
                                              owner=ref, deadline=120))
    pid = int(wait_for(lambda: marker.exists() and marker.read_text().strip(), what="the process"))
    kube.core.delete_namespaced_config_map("release-x", NS)
    with pytest.raises(ApiException) as gone:
        batch(kube).read_namespaced_job("owned", NS)
    assert gone.value.status == 404 and pods_of(kube, "owned") == []
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), what="the process killed")


def test_a_job_must_not_restart_always(kube):
    with pytest.raises(ApiException) as refused:
        batch(kube).create_namespaced_job(NS, job("always", ["true"], policy="Always"))
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in message


def test_kubectl_get_jobs_and_logs(kube, emu, tmp_path):
    kubectl_path()
    batch(kube).create_namespaced_job(NS, job("shown", ["echo", "printed"]))
    ended(kube, "shown", "Complete")
    config = emu.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    table = run_kubectl("get", "jobs", kubeconfig=config).stdout
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert ["shown", "Complete", "1/1"] == next(r.split()[:3] for r in rows if r.startswith("shown"))
    assert run_kubectl("logs", "job/shown", kubeconfig=config).stdout.strip() == "printed"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
