"""Optional RBAC from Role manifests with a usage record, and fault rules checked before any change."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

NS = "hello"
ROLE = Path(__file__).parent / "fixtures" / "role.yaml"


@pytest.fixture
def rbac(emulator_factory, cluster_for):
    emu = emulator_factory(rbac_files=[ROLE])
    return emu, cluster_for(emu, token="bot-token"), cluster_for(emu)


def test_role_allows_its_rules_and_forbids_the_rest(rbac):
    _, bot, admin = rbac
    assert bot.apps.read_namespaced_deployment("helloworld", NS).metadata.name == "helloworld"
    assert bot.apps.list_namespaced_deployment(NS).items
    bot.apps.patch_namespaced_deployment("helloworld", NS, {"metadata": {"annotations": {"a": "1"}}})
    bot.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                              "helloworld-canary", {"spec": {"weight": 10}})
    # resourceNames limits the patch to helloworld; admin sees the canary unchanged by the bot
    admin.apps.create_namespaced_deployment(NS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "other"},
        "spec": {"selector": {"matchLabels": {"app": "o"}}, "template": {
            "metadata": {"labels": {"app": "o"}}, "spec": {"containers": [{"name": "o", "image": "o:1"}]}}}})
    with pytest.raises(ApiException) as err:
        bot.apps.patch_namespaced_deployment("other", NS, {"spec": {"replicas": 0}})
    assert err.value.status == 403
    body = json.loads(err.value.body)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('deployments.apps "other" is forbidden: User '
                               '"system:serviceaccount:hello:hello-chatops" cannot patch resource "deployments" '
                               'in API group "apps" in the namespace "hello"')
    assert admin.apps.read_namespaced_deployment("other", NS).spec.replicas == 1
    with pytest.raises(ApiException) as err:
        bot.apps.patch_namespaced_deployment_scale("helloworld", NS, {"spec": {"replicas": 5}})
    assert err.value.status == 403 and 'resource "deployments/scale"' in json.loads(err.value.body)["message"]
    with pytest.raises(ApiException) as err:
        bot.apps.delete_namespaced_deployment("helloworld", NS)
    assert err.value.status == 403
    with pytest.raises(ApiException) as err:
        bot.core.list_namespaced_secret(NS)
    assert json.loads(err.value.body)["message"] == (
        'secrets is forbidden: User "system:serviceaccount:hello:hello-chatops" cannot list resource "secrets" '
        'in API group "" in the namespace "hello"')
    with pytest.raises(ApiException) as err:
        bot.apps.list_namespaced_deployment("default")
    assert err.value.status == 403  # a Role is bound to its namespace
    with pytest.raises(ApiException) as err:
        bot.custom.patch_namespaced_custom_object_status("getambassador.io", "v3alpha1", NS, "mappings",
                                                         "helloworld", {"status": {}})
    assert err.value.status == 403


def test_usage_record_and_admin_bypass(rbac):
    emu, bot, admin = rbac
    bot.apps.read_namespaced_deployment("helloworld", NS)
    bot.core.list_namespaced_pod(NS)
    bot.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                              "helloworld-canary", {"spec": {"weight": 20}})
    admin.core.list_namespaced_secret(NS)
    admin.apps.patch_namespaced_deployment_scale("helloworld", NS, {"spec": {"replicas": 1}})
    assert emu.rbac_usage("bot-token") == {("get", "apps", "deployments", ""), ("list", "", "pods", ""),
                                           ("patch", "getambassador.io", "mappings", "")}
    assert ("patch", "apps", "deployments", "scale") in emu.rbac_usage("admin-token")


def test_unknown_token_is_unauthorized_when_rbac_is_on(rbac, cluster_for):
    emu, _, _ = rbac
    stranger = cluster_for(emu, token="who-knows")
    with pytest.raises(ApiException) as err:
        stranger.core.list_namespaced_pod(NS)
    assert err.value.status == 401


def test_injected_500_leaves_state_unchanged(kube):
    emu = kube.emu
    before = kube.custom.get_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                      "helloworld-canary")
    emu.add_fault(verb="patch", resource="mappings", name="helloworld-canary", status=500)
    with pytest.raises(ApiException) as err:
        kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                   "helloworld-canary", {"spec": {"weight": 30}})
    assert err.value.status == 500
    body = json.loads(err.value.body)
    assert body["kind"] == "Status" and body["reason"] == "InternalError" and body["code"] == 500
    after = kube.custom.get_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                     "helloworld-canary")
    assert after == before
    # count=1: the next attempt goes through
    patched = kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                         "helloworld-canary", {"spec": {"weight": 30}})
    assert patched["spec"]["weight"] == 30


def test_fault_count_and_wildcards(kube):
    kube.emu.add_fault(verb="create", resource="configmaps", status=503, count=2)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "retry"}}
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            kube.core.create_namespaced_config_map(NS, body)
        assert err.value.status == 503
    assert kube.core.create_namespaced_config_map(NS, body).metadata.name == "retry"
    kube.emu.add_fault(status=409, count=1)  # any verb, any resource
    with pytest.raises(ApiException) as err:
        kube.core.read_namespaced_config_map("retry", NS)
    assert err.value.status == 409
    assert kube.core.read_namespaced_config_map("retry", NS).metadata.name == "retry"


def test_delay_fault_outlasts_a_client_timeout(kube):
    # every matching request (the client retries reads that time out), until the rule is cleared
    kube.emu.add_fault(verb="get", resource="deployments", status=None, delay=1.0, count=None)
    with pytest.raises(Exception) as err:
        kube.apps.read_namespaced_deployment("helloworld", NS, _request_timeout=0.2)
    assert "timed out" in str(err.value).lower() or "timeout" in type(err.value).__name__.lower()
    kube.emu.clear_faults()
    assert kube.apps.read_namespaced_deployment("helloworld", NS).metadata.name == "helloworld"


def test_fault_rules_over_http(kube):
    request = urllib.request.Request(
        f"{kube.emu.url}/_emulator/faults", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"verb": "patch", "resource": "deployments/status", "status": 403, "count": 1}).encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
    with pytest.raises(ApiException) as err:
        kube.apps.patch_namespaced_deployment_status("helloworld", NS, {"status": {"observedGeneration": 1}})
    assert err.value.status == 403
    # the plain resource was not matched by the subresource rule
    kube.apps.patch_namespaced_deployment("helloworld", NS, {"metadata": {"labels": {"x": "y"}}})


def _review(cluster, verb: str, resource: str, *, group: str = "", subresource: str = "", name: str = "",
            namespace: str = NS) -> dict:
    from kubernetes import client

    attributes = {"verb": verb, "group": group, "resource": resource, "namespace": namespace}
    attributes.update({k: v for k, v in (("subresource", subresource), ("name", name)) if v})
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}
    review = client.AuthorizationV1Api(cluster.api).create_self_subject_access_review(body)
    return cluster.api.sanitize_for_serialization(review)


def test_self_subject_access_review_answers_from_the_role_of_the_caller(rbac, cluster_for):
    emu, bot, admin = rbac
    review = _review(bot, "patch", "deployments", group="apps", name="helloworld")
    assert review["kind"] == "SelfSubjectAccessReview" and review["status"]["allowed"] is True
    assert review["spec"]["resourceAttributes"]["name"] == "helloworld"
    assert _review(bot, "patch", "deployments", group="apps", name="other")["status"]["allowed"] is False
    assert _review(bot, "patch", "deployments", group="apps", subresource="scale",
                   name="helloworld")["status"]["allowed"] is False
    assert _review(bot, "list", "events")["status"]["allowed"] is True
    assert _review(bot, "create", "events")["status"]["allowed"] is False
    assert _review(bot, "list", "events", namespace="default")["status"]["allowed"] is False  # a Role's namespace
    assert _review(admin, "delete", "secrets")["status"]["allowed"] is True
    with pytest.raises(ApiException) as err:
        _review(cluster_for(emu, token="who-knows"), "get", "pods")
    assert err.value.status == 401
    assert emu.rbac_usage("bot-token") == set()  # asking is not using: the Role's usage record is untouched


def test_self_subject_access_review_allows_everything_without_rbac(emu, cluster_for):
    review = _review(cluster_for(emu, token="anyone"), "delete", "secrets")
    assert review["status"]["allowed"] is True
    with pytest.raises(ApiException) as err:  # the real API's validation: the spec names what is asked
        from kubernetes import client

        client.AuthorizationV1Api(cluster_for(emu).api).create_self_subject_access_review(
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {}})
    assert err.value.status == 422
