"""Watch streams: order, selectors, replay from a resourceVersion, timeout, 410 Gone; sync and aio clients."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from sandbox.kube import KubeEmulator

NS = "hello"


def cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def test_watch_streams_changes_in_order_and_ends_at_timeout(kube):
    start = kube.core.list_namespaced_config_map(NS).metadata.resource_version
    kube.core.create_namespaced_config_map(NS, cm("w1", app="x"))
    kube.core.patch_namespaced_config_map("w1", NS, {"data": {"a": "1"}})
    kube.core.create_namespaced_config_map(NS, cm("other", app="y"))
    kube.core.delete_namespaced_config_map("w1", NS)
    events = list(watch.Watch().stream(kube.core.list_namespaced_config_map, NS, label_selector="app=x",
                                       resource_version=start, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert events[1]["object"].data == {"a": "1"}


def test_watch_without_version_lists_then_follows_live_changes(kube, wait):
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume():
        for event in w.stream(kube.custom.list_namespaced_custom_object, "getambassador.io", "v3alpha1", NS,
                              "mappings", timeout_seconds=5):
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if len(seen) == 3:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    wait(lambda: len(seen) == 2, what="the initial ADDED events")
    kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                               "helloworld-canary", {"spec": {"weight": 10}})
    thread.join(10)
    assert not thread.is_alive()
    assert seen == [("ADDED", "helloworld"), ("ADDED", "helloworld-canary"), ("MODIFIED", "helloworld-canary")]


def test_watch_field_selector_and_selector_transitions(kube):
    start = kube.core.list_namespaced_config_map(NS).metadata.resource_version
    kube.core.create_namespaced_config_map(NS, cm("t", app="x"))
    kube.core.patch_namespaced_config_map("t", NS, {"metadata": {"labels": {"app": "y"}}})
    kube.core.patch_namespaced_config_map("t", NS, {"metadata": {"labels": {"app": "x"}}})
    events = list(watch.Watch().stream(kube.core.list_namespaced_config_map, NS, label_selector="app=x",
                                       field_selector="metadata.name=t", resource_version=start,
                                       timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"]


def test_watch_from_a_compacted_version_is_410_gone(emulator_factory, cluster_for):
    emu: KubeEmulator = emulator_factory(history=5, seed=False)
    kube = cluster_for(emu)
    old = kube.core.list_namespaced_config_map("default").metadata.resource_version
    for i in range(8):
        kube.core.create_namespaced_config_map("default", cm(f"c{i}"))
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(kube.core.list_namespaced_config_map, "default", resource_version=old,
                                      timeout_seconds=1):
            pass
    assert err.value.status == 410
    assert "Expired" in err.value.reason and "too old resource version" in err.value.reason
    # A version still inside the retained window replays normally.
    recent = kube.core.list_namespaced_config_map("default").metadata.resource_version
    kube.core.create_namespaced_config_map("default", cm("late"))
    names = [e["object"].metadata.name for e in watch.Watch().stream(
        kube.core.list_namespaced_config_map, "default", resource_version=recent, timeout_seconds=1)]
    assert names == ["late"]


async def test_aio_watch_and_typed_reads(tmp_path):
    from kubernetes.aio import client as aclient
    from kubernetes.aio import config as aconfig
    from kubernetes.aio import watch as awatch

    emu = KubeEmulator(tick=0.02, pod_ready_seconds=0.1)
    emu.seed(__import__("pathlib").Path(__file__).parent / "fixtures" / "app.yaml")
    async with emu:
        path = emu.write_kubeconfig(tmp_path / "kubeconfig")
        api = await aconfig.new_client_from_config(config_file=str(path))
        try:
            apps = aclient.AppsV1Api(api)
            deploy = await apps.read_namespaced_deployment("helloworld", NS)
            assert deploy.spec.selector.match_labels == {"app": "helloworld", "track": "stable"}
            start = deploy.metadata.resource_version
            await apps.patch_namespaced_deployment("helloworld", NS, {"spec": {"replicas": 3}})
            seen = []
            async with awatch.Watch() as w:
                async for event in w.stream(apps.list_namespaced_deployment, NS, resource_version=start,
                                            field_selector="metadata.name=helloworld", timeout_seconds=2):
                    seen.append(event["object"])
                    if event["object"].spec.replicas == 3:
                        break
            assert isinstance(seen[-1], aclient.V1Deployment) and seen[-1].spec.replicas == 3
            core = aclient.CoreV1Api(api)
            with pytest.raises(aclient.exceptions.ApiException) as err:
                await core.read_namespaced_service("missing", NS)
            assert err.value.status == 404
        finally:
            await api.close()


def test_watch_ends_when_the_emulator_stops(cluster_for, wait):
    emu = KubeEmulator(tick=0.05)
    done = threading.Event()
    with emu.run_in_thread():
        api = client.CoreV1Api(cluster_for(emu).api)

        def consume():
            for _ in watch.Watch().stream(api.list_namespaced_config_map, "default", timeout_seconds=30):
                pass
            done.set()

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        wait(lambda: emu._watches, what="the stream to be registered")
    thread.join(10)
    assert done.is_set()
