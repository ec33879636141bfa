"""Kubeconfig for both clients, seeding a folder, and `python -m sandbox.kube` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client, config

from sandbox.kube import KubeEmulator
from tests.kubectl import kubectl_path, run_kubectl

FIXTURES = Path(__file__).parent / "fixtures"


def test_sync_client_loads_the_kubeconfig(emu, tmp_path):
    path = emu.write_kubeconfig(tmp_path / "config", token="admin-token", namespace="hello")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == emu.url
    with client.ApiClient(configuration) as api:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    assert {"default", "hello"} <= set(names)
    _contexts, active = config.list_kube_config_contexts(config_file=str(path))
    assert active["context"]["namespace"] == "hello"


async def test_aio_client_loads_the_kubeconfig(tmp_path):
    from kubernetes.aio import client as aclient
    from kubernetes.aio import config as aconfig

    async with KubeEmulator() as emu:
        emu.seed(FIXTURES / "app.yaml")
        path = emu.write_kubeconfig(tmp_path / "config")
        configuration = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(path), client_configuration=configuration)
        async with aclient.ApiClient(configuration) as api:
            mappings = await aclient.CustomObjectsApi(api).list_namespaced_custom_object(
                "getambassador.io", "v3alpha1", "hello", "mappings")
            leases = aclient.CoordinationV1Api(api)
            await leases.create_namespaced_lease("hello", {"metadata": {"name": "leader"},
                                                           "spec": {"holderIdentity": "a"}})
            lease = await leases.read_namespaced_lease("leader", "hello")
    assert [m["metadata"]["name"] for m in mappings["items"]] == ["helloworld", "helloworld-canary"]
    assert lease.spec.holder_identity == "a"


def _tree(folder: Path) -> Path:
    (folder / "a").mkdir(parents=True)
    # Namespaces sort after their users on purpose.
    (folder / "a" / "app.yaml").write_text((FIXTURES / "app.yaml").read_text())
    (folder / "z-namespace.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": "monitoring"}}))
    (folder / "a" / "monitor.yml").write_text(yaml.safe_dump({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "m", "namespace": "monitoring"}, "spec": {"endpoints": []}}))
    return folder


def test_seed_loads_every_yaml_file_of_a_folder_without_kustomization_namespaces_first(tmp_path):
    emu = KubeEmulator()
    emu.seed(_tree(tmp_path / "manifests"))
    emu.seed(FIXTURES / "role.yaml")  # one file
    assert emu.get("apps", "v1", "deployments", "hello", "helloworld")["spec"]["replicas"] == 2
    assert emu.get("monitoring.coreos.com", "v1", "servicemonitors", "monitoring", "m")
    assert emu.get("rbac.authorization.k8s.io", "v1", "roles", "hello", "hello-chatops")
    assert [m["metadata"]["name"] for m in emu.list("getambassador.io", "v3alpha1", "mappings", "hello")] == [
        "helloworld", "helloworld-canary"]


def test_seed_builds_a_kustomization_with_kubectl_kustomize(tmp_path):
    kubectl_path()  # skipped, saying why, without the kubectl wheel
    folder = _tree(tmp_path / "manifests")
    (folder / "kustomization.yaml").write_text("resources: [a/app.yaml, z-namespace.yaml]\n"
                                               "commonLabels: {seeded: by-kustomize}\n")
    emu = KubeEmulator()
    emu.seed(folder)
    deployment = emu.get("apps", "v1", "deployments", "hello", "helloworld")
    assert deployment["metadata"]["labels"]["seeded"] == "by-kustomize"
    assert emu.get("", "v1", "namespaces", None, "monitoring")
    assert emu.get("monitoring.coreos.com", "v1", "servicemonitors", "monitoring", "m") is None  # not listed
    emu.seed(FIXTURES)  # a second kustomization: extras, and re-applied app objects (role.yaml is not listed)
    assert emu.get("rbac.authorization.k8s.io", "v1", "roles", "hello", "hello-chatops") is None  # not listed
    assert emu.get("cert-manager.io", "v1", "clusterissuers", None, "letsencrypt")
    assert emu.get("metallb.io", "v1beta1", "ipaddresspools", "metallb-system", "sandbox-pool")


def test_seed_accepts_the_project_manifests():
    manifests = Path(__file__).resolve().parents[2] / "manifests"
    built = yaml.safe_load_all(run_kubectl("kustomize", str(manifests)).stdout)
    expected = [(d["kind"], d["metadata"]["name"]) for d in built if isinstance(d, dict)]
    assert expected, "the project's manifests/ tree builds no Kubernetes objects"
    created = KubeEmulator().seed(manifests)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in created) == sorted(expected)


def test_module_runs_as_a_process_and_stops_on_sigterm(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.kube", "--port", "0", "--seed", str(FIXTURES / "app.yaml"),
                             "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, (first, proc.stderr.read() if proc.poll() else "")
        assert second.strip() == f"kubeconfig: {kubeconfig}"
        api = config.new_client_from_config(str(kubeconfig))
        try:
            deploy = client.AppsV1Api(api).read_namespaced_deployment("helloworld", "hello")
        finally:
            api.close()
        assert deploy.spec.replicas == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
