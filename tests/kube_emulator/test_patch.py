"""The three patch types, as functions and through the client."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from sandbox.kube.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

NS = "hello"


def test_merge_patch_follows_rfc7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patched = merge_patch(target, {"a": "z", "c": {"f": None}, "list": [3]})
    assert patched == {"a": "z", "c": {"d": "e"}, "list": [3]}
    assert target["c"]["f"] == "g"  # the input is left alone


def test_json_patch_operations_and_errors():
    assert json_patch({"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}]) == {"a": [1, 2]}
    with pytest.raises(PatchError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])


def test_strategic_merge_by_merge_keys_and_directives():
    target = {"spec": {"containers": [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}],
         "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]},
        {"name": "sidecar", "image": "side:1"}], "tolerations": [{"key": "x"}],
        "volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}}
    patched = strategic_merge_patch(target, {"spec": {
        "containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}, {"name": "C",
                                                                                                "value": "4"}],
                        "ports": [{"containerPort": 81}],
                        "volumeMounts": [{"mountPath": "/etc/cfg", "$patch": "delete"}]}],
        "tolerations": [{"key": "y"}],
        "volumes": [{"name": "data", "emptyDir": {}}]}})
    app, sidecar = patched["spec"]["containers"]
    assert app["image"] == "app:2" and sidecar == {"name": "sidecar", "image": "side:1"}
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert [p["containerPort"] for p in app["ports"]] == [80, 81]
    assert app["volumeMounts"] == []
    assert patched["spec"]["tolerations"] == [{"key": "y"}]  # no merge key: replaced
    assert [v["name"] for v in patched["spec"]["volumes"]] == ["cfg", "data"]
    replaced = strategic_merge_patch(target, {"spec": {"$patch": "replace", "containers": []}})
    assert replaced == {"spec": {"containers": []}}
    retained = strategic_merge_patch({"s": {"type": "A", "a": 1, "b": 2}},
                                     {"s": {"$retainKeys": ["type", "b"], "type": "B"}})
    assert retained == {"s": {"type": "B", "b": 2}}


def test_strategic_merge_keeps_the_sidecar_when_one_image_changes(kube):
    patched = kube.apps.patch_namespaced_deployment("helloworld", NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "helloworld", "image": "registry.local/helloworld:v2",
                        "env": [{"name": "API_VERSION", "value": "v2"}]}]}}}})
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"helloworld", "sidecar"}
    assert containers["helloworld"].image == "registry.local/helloworld:v2"
    assert containers["sidecar"].image == "registry.local/statsd-exporter:0.26"
    env = {e.name: e.value for e in containers["helloworld"].env}
    assert env == {"API_VERSION": "v2", "LOG_LEVEL": "info"}
    assert containers["helloworld"].ports[0].container_port == 8000


def test_json_patch_through_the_client(kube):
    patched = kube.apps.patch_namespaced_deployment("helloworld", NS, [
        {"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "side:2"},
        {"op": "add", "path": "/metadata/annotations", "value": {"owner": "web"}}])
    assert patched.spec.template.spec.containers[1].image == "side:2"
    assert patched.metadata.annotations["owner"] == "web"
    with pytest.raises(ApiException) as err:
        kube.apps.patch_namespaced_deployment("helloworld", NS, [{"op": "remove", "path": "/spec/nothing"}])
    assert err.value.status == 422


def test_merge_patch_on_custom_objects_and_deployments(kube):
    mapping = kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                         "helloworld-canary", {"spec": {"weight": 10}})
    assert mapping["spec"]["weight"] == 10 and mapping["spec"]["prefix"] == "/hello/"
    # merge patch replaces lists whole
    patched = kube.apps.patch_namespaced_deployment("helloworld", NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "only", "image": "only:1"}]}}}}, _content_type="application/merge-patch+json")
    assert [c.name for c in patched.spec.template.spec.containers] == ["only"]


def test_patch_with_stale_resource_version_conflicts(kube):
    current = kube.custom.get_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                       "helloworld-canary")
    stale = current["metadata"]["resourceVersion"]
    kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                               "helloworld-canary", {"spec": {"weight": 5}})
    with pytest.raises(ApiException) as err:
        kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                   "helloworld-canary",
                                                   {"metadata": {"resourceVersion": stale}, "spec": {"weight": 50}})
    assert err.value.status == 409
