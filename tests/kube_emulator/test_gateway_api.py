"""The Gateway API kinds (gateway.networking.k8s.io/v1) as the emulator serves them, and JSON patches with
`test` operations answered as the real API server answers them: 422 when an operation does not apply (with
its generic message), 400 for a body that is not a patch, 409 when the patch sets a stale resourceVersion."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kubernetes.client.exceptions import ApiException

from sandbox.kube import KubeEmulator

NS = "hello"
GROUP, VERSION = "gateway.networking.k8s.io", "v1"
JSON_PATCH = "application/json-patch+json"


def route(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": NS},
            "spec": {"parentRefs": [{"name": "hello"}], "hostnames": ["web.example.com"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": "web", "port": 80, "weight": 100},
                                                {"name": "web-canary", "port": 80, "weight": 0}]}]}}


def status_of(err: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    return json.loads(err.value.body)


def patch(kube: Any, ops: Any, name: str = "web") -> dict[str, Any]:
    return kube.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", name, ops,
                                                      _content_type=JSON_PATCH)


def test_gateway_kinds_are_served_with_their_scope(kube: Any, emu: KubeEmulator) -> None:
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "gatewayclasses", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayClass", "metadata": {"name": "eg"},
        "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}})
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "gateways", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "hello", "namespace": NS},
        "spec": {"gatewayClassName": "eg", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}})
    created = kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", route())
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, NS, "httproutes")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web"]
    assert emu.get(GROUP, VERSION, "gatewayclasses", None, "eg")["spec"]["controllerName"].startswith("gateway.")
    by_name = {r.name: r for r in kube.custom.get_api_resources(GROUP, VERSION).resources}
    assert by_name["gatewayclasses"].namespaced is False and by_name["gatewayclasses"].short_names == ["gc"]
    assert by_name["gateways"].short_names == ["gtw"] and by_name["httproutes"].namespaced is True
    assert by_name["httproutes"].categories == ["gateway-api"]


def test_a_json_patch_whose_test_fails_is_refused_with_422_and_changes_nothing(kube: Any, emu: KubeEmulator) -> None:
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", route())
    before = emu.get(GROUP, VERSION, "httproutes", NS, "web")
    refs = before["spec"]["rules"][0]["backendRefs"]
    stale = [dict(refs[0], weight=90), refs[1]]
    with pytest.raises(ApiException) as err:
        patch(kube, [{"op": "test", "path": "/spec/rules/0/backendRefs", "value": stale},
                     {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10}])
    assert err.value.status == 422
    assert status_of(err) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": "the server rejected our request due to an error in our request",
                              "reason": "Invalid", "details": {}, "code": 422}
    assert emu.get(GROUP, VERSION, "httproutes", NS, "web") == before
    # the same patch testing what is there applies, and changes only the weight
    patched = patch(kube, [{"op": "test", "path": "/spec/rules/0/backendRefs", "value": refs},
                           {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10}])
    assert patched["spec"]["rules"][0]["backendRefs"][1] == {"name": "web-canary", "port": 80, "weight": 10}
    assert patched["metadata"]["generation"] == 2


def test_a_json_patch_that_sets_a_stale_resource_version_conflicts(kube: Any) -> None:
    created = kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", route())
    stale = created["metadata"]["resourceVersion"]
    patch(kube, [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 5}])
    with pytest.raises(ApiException) as err:
        patch(kube, [{"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
                     {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}])
    assert err.value.status == 409 and status_of(err)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(err)["message"]
    current = kube.custom.get_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", "web")
    assert current["spec"]["rules"][0]["backendRefs"][1]["weight"] == 5
    # the current resourceVersion applies
    fresh = current["metadata"]["resourceVersion"]
    patched = patch(kube, [{"op": "replace", "path": "/metadata/resourceVersion", "value": fresh},
                           {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}])
    assert patched["spec"]["rules"][0]["backendRefs"][1]["weight"] == 50


def test_a_body_that_is_not_a_json_patch_is_a_bad_request(kube: Any, emu: KubeEmulator) -> None:
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", route())
    answer = httpx.patch(f"{emu.url}/apis/{GROUP}/{VERSION}/namespaces/{NS}/httproutes/web",
                         content=json.dumps({"spec": {"rules": []}}),
                         headers={"Content-Type": JSON_PATCH, "Authorization": f"Bearer {emu.admin_token}"})
    assert answer.status_code == 400 and answer.json()["reason"] == "BadRequest"
    assert kube.custom.get_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", "web")["spec"]["rules"]


@pytest.mark.parametrize(("weight", "message"), [
    (1_000_001, "spec.rules[0].backendRefs[1].weight: Invalid value: 1000001: spec.rules[0].backendRefs[1].weight "
                "in body should be less than or equal to 1000000"),
    (-1, "spec.rules[0].backendRefs[1].weight: Invalid value: -1: spec.rules[0].backendRefs[1].weight in body "
         "should be greater than or equal to 0"),
])
def test_backend_weights_are_checked_as_the_crd_schema_says(kube: Any, weight: int, message: str) -> None:
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "httproutes", route())
    with pytest.raises(ApiException) as err:
        patch(kube, [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": weight}])
    assert err.value.status == 422
    body = status_of(err)
    assert body["message"] == f'HTTPRoute.gateway.networking.k8s.io "web" is invalid: {message}'
    assert body["details"]["causes"][0]["field"] == "spec.rules[0].backendRefs[1].weight"
