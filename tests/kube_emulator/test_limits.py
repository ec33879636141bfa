"""The API server's size limits: 1 MiB of ConfigMap data (and of any object), 3 MiB of request body."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from kubernetes.client.exceptions import ApiException

from sandbox.kube.kinds import MAX_OBJECT_BYTES
from sandbox.kube.server import MAX_REQUEST_BODY_BYTES

NS = "hello"
TOO_LONG = f'ConfigMap "big" is invalid: []: Too long: must have at most {MAX_OBJECT_BYTES} bytes'


def _config_map(size: int, name: str = "big") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"blob": "x" * size}}


def _refused(err: pytest.ExceptionInfo[ApiException]) -> dict:
    """The Status body of a 422 for the size limit, checked field by field."""
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": TOO_LONG,
        "reason": "Invalid", "code": 422,
        "details": {"name": "big", "kind": "ConfigMap",
                    "causes": [{"reason": "FieldValueTooLong",
                                "message": f"Too long: must have at most {MAX_OBJECT_BYTES} bytes", "field": "[]"}]},
    }
    return body


def test_create_of_one_mebibyte_and_one_byte_is_refused_and_nothing_is_stored(kube):
    events: list[tuple[str, str]] = []
    kube.emu.subscribe(lambda kind, obj: events.append((kind, obj["kind"])))
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map(NS, _config_map(MAX_OBJECT_BYTES + 1))
    _refused(err)
    assert kube.emu.get("", "v1", "configmaps", NS, "big") is None
    assert ("ADDED", "ConfigMap") not in events
    # exactly 1 MiB of data is allowed (the metadata does not count against a ConfigMap)
    created = kube.core.create_namespaced_config_map(NS, _config_map(MAX_OBJECT_BYTES))
    assert len(created.data["blob"]) == MAX_OBJECT_BYTES


@pytest.mark.parametrize("how", ["put", "strategic", "merge", "json", "apply"])
def test_growing_a_config_map_past_the_limit_is_refused_and_leaves_it_unchanged(kube, how):
    kube.core.create_namespaced_config_map(NS, _config_map(10))
    before = kube.emu.get("", "v1", "configmaps", NS, "big")
    changes: list[str] = []
    kube.emu.subscribe(lambda kind, obj: changes.append(obj["metadata"]["name"]) if obj["kind"] == "ConfigMap"
                       else None)
    blob = "y" * (MAX_OBJECT_BYTES + 1)
    with pytest.raises(ApiException) as err:
        if how == "put":
            kube.core.replace_namespaced_config_map("big", NS, {**_config_map(0), "data": {"blob": blob}})
        elif how == "json":
            kube.core.patch_namespaced_config_map("big", NS, [{"op": "replace", "path": "/data/blob", "value": blob}])
        else:
            content_type = {"strategic": "application/strategic-merge-patch+json",
                            "merge": "application/merge-patch+json",
                            "apply": "application/apply-patch+yaml"}[how]
            kube.core.patch_namespaced_config_map("big", NS, {**_config_map(0), "data": {"blob": blob}},
                                                  field_manager="test", force=how == "apply" or None,
                                                  _content_type=content_type)
    _refused(err)
    assert kube.emu.get("", "v1", "configmaps", NS, "big") == before
    assert changes == []


def test_binary_data_counts_decoded_and_with_data(kube):
    half = MAX_OBJECT_BYTES // 2
    body = {**_config_map(half), "binaryData": {"bin": "QUJD" * (half // 3 + 1)}}  # "ABC" repeated, decoded
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map(NS, body)
    _refused(err)


def test_a_secret_past_the_limit_names_its_data(kube):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"},
            "stringData": {"key": "k" * (MAX_OBJECT_BYTES + 1)}}
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_secret(NS, body)
    assert err.value.status == 422
    assert json.loads(err.value.body)["message"] == (
        f'Secret "big" is invalid: data: Too long: must have at most {MAX_OBJECT_BYTES} bytes')


def test_any_other_object_serialized_past_the_limit_is_refused(kube):
    labels = {"big": "true"}
    annotations = {f"note-{i}": "n" * 200_000 for i in range(6)}  # each under, all together over 1 MiB
    patch = {"metadata": {"labels": labels, "annotations": annotations}}
    with pytest.raises(ApiException) as err:
        kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings", "helloworld",
                                                   patch)
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    assert "[]: Too long: must have at most 1048576 bytes" in body["message"]
    mapping = kube.custom.get_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings", "helloworld")
    assert "big" not in (mapping["metadata"].get("labels") or {})


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, method="POST", data=body,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer admin-token"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_request_body_past_three_mebibytes_is_413(kube):
    url = f"{kube.emu.url}/api/v1/namespaces/{NS}/configmaps"
    body = json.dumps(_config_map(0)).encode()
    padded = body[:-1] + b" " * (MAX_REQUEST_BODY_BYTES + 1 - len(body)) + b"}"
    assert len(padded) == MAX_REQUEST_BODY_BYTES + 1
    status, answer = _post(url, padded)
    assert status == 413
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "Request entity too large: limit is 3145728", "reason": "RequestEntityTooLarge",
                      "code": 413}
    assert kube.emu.get("", "v1", "configmaps", NS, "big") is None
    # the same object in a body of exactly the limit is read (and stored)
    status, _ = _post(url, padded[:-2] + b"}")
    assert status == 201


def test_fault_rules_still_come_before_the_size_check(kube):
    kube.emu.add_fault(verb="create", resource="configmaps", status=503)
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map(NS, _config_map(MAX_OBJECT_BYTES + 1))
    assert err.value.status == 503
