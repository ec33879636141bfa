"""Core API rules: metadata, verbs, conflicts, validation, selectors, subresources, typed reads."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

NS = "hello"


def configmap(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": {"k": "v"}}


def status_body(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_create_fills_metadata_from_one_counter(kube):
    a = kube.core.create_namespaced_config_map(NS, configmap("a"))
    b = kube.core.create_namespaced_config_map(NS, configmap("b"))
    assert a.metadata.namespace == NS and a.metadata.uid and a.metadata.uid != b.metadata.uid
    assert int(b.metadata.resource_version) > int(a.metadata.resource_version)
    assert a.metadata.creation_timestamp is not None
    assert a.metadata.generation is None  # as on a cluster, ConfigMaps keep no generation (Deployments do)
    listed = kube.core.list_namespaced_config_map(NS)
    assert int(listed.metadata.resource_version) >= int(b.metadata.resource_version)


def test_generation_moves_on_spec_changes_only(kube):
    d = kube.apps.read_namespaced_deployment("helloworld", NS)
    gen = d.metadata.generation
    d = kube.apps.patch_namespaced_deployment("helloworld", NS, {"metadata": {"labels": {"team": "web"}}})
    assert d.metadata.generation == gen
    d = kube.apps.patch_namespaced_deployment("helloworld", NS, {"spec": {"replicas": 3}})
    assert d.metadata.generation == gen + 1


def test_create_existing_is_409_already_exists(kube):
    kube.core.create_namespaced_config_map(NS, configmap("dup"))
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map(NS, configmap("dup"))
    assert err.value.status == 409
    body = status_body(err.value)
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists" and body["code"] == 409
    assert body["message"] == 'configmaps "dup" already exists'
    assert body["details"] == {"name": "dup", "kind": "configmaps"}


def test_stale_put_is_409_conflict_and_put_without_version_wins(kube):
    first = kube.apps.read_namespaced_deployment("helloworld", NS)
    kube.apps.patch_namespaced_deployment("helloworld", NS, {"metadata": {"annotations": {"x": "1"}}})
    first.spec.replicas = 5
    with pytest.raises(ApiException) as err:
        kube.apps.replace_namespaced_deployment("helloworld", NS, first)
    assert err.value.status == 409
    assert status_body(err.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_body(err.value)["message"]
    first.metadata.resource_version = None
    replaced = kube.apps.replace_namespaced_deployment("helloworld", NS, first)
    assert replaced.spec.replicas == 5


def test_missing_object_is_404_not_found(kube):
    with pytest.raises(ApiException) as err:
        kube.apps.read_namespaced_deployment("nope", NS)
    assert err.value.status == 404
    body = status_body(err.value)
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'deployments.apps "nope" not found', "reason": "NotFound",
                    "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404}
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map("no-such-namespace", configmap("x"))
    assert err.value.status == 404


DEPLOY_TEMPLATE = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}


@pytest.mark.parametrize(("spec", "field"), [
    ({"template": DEPLOY_TEMPLATE}, "spec.selector"),
    ({"selector": {"matchLabels": {"a": "b"}}}, "spec.template"),
    ({"selector": {"matchLabels": {"a": "other"}}, "template": DEPLOY_TEMPLATE}, "spec.template.metadata.labels"),
])
def test_invalid_deployment_is_422_invalid(kube, spec, field):
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"}, "spec": spec}
    # The typed client refuses such bodies itself; the generic custom-objects call sends them as they are.
    with pytest.raises(ApiException) as err:
        kube.custom.create_namespaced_custom_object("apps", "v1", NS, "deployments", manifest)
    assert err.value.status == 422
    body = status_body(err.value)
    assert body["reason"] == "Invalid" and body["message"].startswith('Deployment.apps "bad" is invalid: ')
    assert field in [c["field"] for c in body["details"]["causes"]]


@pytest.mark.parametrize(("spec", "field"), [
    ({"prefix": "/x/", "service": "s:80", "weight": 101}, "spec.weight"),
    ({"prefix": "/x/", "service": "s:80", "weight": -1}, "spec.weight"),
    ({"service": "s:80"}, "spec.prefix"),
    ({"prefix": "/x/"}, "spec.service"),
])
def test_invalid_mapping_is_422(kube, spec, field):
    body = {"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping", "metadata": {"name": "m"}, "spec": spec}
    with pytest.raises(ApiException) as err:
        kube.custom.create_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings", body)
    assert err.value.status == 422
    assert field in [c["field"] for c in status_body(err.value)["details"]["causes"]]


def test_weight_patch_out_of_range_is_refused_and_leaves_mapping(kube):
    with pytest.raises(ApiException) as err:
        kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                   "helloworld-canary", {"spec": {"weight": 150}})
    assert err.value.status == 422
    mapping = kube.custom.get_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings",
                                                       "helloworld-canary")
    assert mapping["spec"]["weight"] == 0


@pytest.mark.parametrize(("spec", "field"), [
    ({"issuerRef": {"name": "le"}, "dnsNames": ["a.test"]}, "spec.secretName"),
    ({"secretName": "s", "dnsNames": ["a.test"]}, "spec.issuerRef"),
])
def test_invalid_certificate_is_422(kube, spec, field):
    body = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}, "spec": spec}
    with pytest.raises(ApiException) as err:
        kube.custom.create_namespaced_custom_object("cert-manager.io", "v1", NS, "certificates", body)
    assert err.value.status == 422
    assert field in [c["field"] for c in status_body(err.value)["details"]["causes"]]


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "x" * 254])
def test_invalid_name_is_422(kube, name):
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map(NS, configmap(name))
    assert err.value.status == 422
    assert status_body(err.value)["details"]["causes"][0]["field"] == "metadata.name"


def test_custom_object_create_answers_201_with_the_object(kube):
    body = {"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping", "metadata": {"name": "extra"},
            "spec": {"prefix": "/extra/", "service": "extra:80"}}
    data, status, _ = kube.custom.create_namespaced_custom_object_with_http_info(
        "getambassador.io", "v3alpha1", NS, "mappings", body)
    assert status == 201
    assert data["metadata"]["uid"] and data["metadata"]["resourceVersion"]


def test_delete_answers_status_or_pod_and_removes(kube):
    kube.core.create_namespaced_config_map(NS, configmap("gone"))
    result = kube.core.delete_namespaced_config_map("gone", NS)
    assert result["kind"] == "Status" and result["status"] == "Success" and result["details"]["name"] == "gone"
    with pytest.raises(ApiException) as err:
        kube.core.delete_namespaced_config_map("gone", NS)
    assert err.value.status == 404
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    kube.core.create_namespaced_pod(NS, pod)
    deleted = kube.core.delete_namespaced_pod("solo", NS)
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.name == "solo"


def test_a_delete_with_a_precondition_deletes_only_that_version(kube):
    made = kube.core.create_namespaced_config_map(NS, configmap("kept"))
    kube.core.patch_namespaced_config_map("kept", NS, {"data": {"a": "changed"}})
    old = made.metadata.resource_version
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=old))
    with pytest.raises(ApiException) as err:
        kube.core.delete_namespaced_config_map("kept", NS, body=stale)
    assert err.value.status == 409 and "Precondition failed: resourceVersion" in status_body(err.value)["message"]
    current = kube.core.read_namespaced_config_map("kept", NS).metadata.resource_version
    fresh = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=current))
    kube.core.delete_namespaced_config_map("kept", NS, body=fresh)
    with pytest.raises(ApiException) as err:
        kube.core.read_namespaced_config_map("kept", NS)
    assert err.value.status == 404


def test_label_selectors(kube):
    kube.core.create_namespaced_config_map(NS, configmap("c1", tier="web", env="prod"))
    kube.core.create_namespaced_config_map(NS, configmap("c2", tier="web", env="dev"))
    kube.core.create_namespaced_config_map(NS, configmap("c3", tier="db"))

    def names(selector: str) -> list[str]:
        return [c.metadata.name for c in kube.core.list_namespaced_config_map(NS, label_selector=selector).items]

    assert names("tier=web") == ["c1", "c2"]
    assert names("tier==web,env!=prod") == ["c2"]
    assert names("env in (prod, dev)") == ["c1", "c2"]
    assert names("tier,env notin (prod)") == ["c2", "c3"]
    assert names("env") == ["c1", "c2"]
    assert names("!env") == ["c3"]
    with pytest.raises(ApiException) as err:
        names("tier in in (")
    assert err.value.status == 400


def test_field_selectors_and_all_namespaces(kube):
    kube.core.create_namespaced_config_map(NS, configmap("same"))
    kube.core.create_namespaced_config_map("default", configmap("same"))
    everywhere = kube.core.list_config_map_for_all_namespaces(field_selector="metadata.name=same")
    assert sorted(c.metadata.namespace for c in everywhere.items) == ["default", NS]
    only = kube.core.list_config_map_for_all_namespaces(field_selector="metadata.name=same,metadata.namespace=hello")
    assert [c.metadata.namespace for c in only.items] == [NS]


def test_status_is_isolated_from_spec_both_ways(kube, wait):
    wait(lambda: kube.apps.read_namespaced_deployment("helloworld", NS).status.observed_generation, what="status")
    before = kube.apps.read_namespaced_deployment("helloworld", NS)
    # A write to the main resource ignores status.
    changed = kube.apps.patch_namespaced_deployment(
        "helloworld", NS, {"spec": {"paused": True}, "status": {"observedGeneration": 999}})
    assert changed.spec.paused is True and changed.status.observed_generation != 999
    # A write to /status ignores everything else.
    mapping = kube.custom.patch_namespaced_custom_object_status(
        "getambassador.io", "v3alpha1", NS, "mappings", "helloworld",
        {"spec": {"prefix": "/changed/"}, "status": {"state": "Running"}})
    assert mapping["status"] == {"state": "Running"} and mapping["spec"]["prefix"] == "/hello/"
    status_only = kube.apps.patch_namespaced_deployment_status(
        "helloworld", NS, {"spec": {"replicas": 9}, "status": {"observedGeneration": 5}})
    assert status_only.spec.replicas == before.spec.replicas
    assert status_only.status.observed_generation == 5
    # Creating ignores a status too.
    body = {"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping", "metadata": {"name": "s"},
            "spec": {"prefix": "/s/", "service": "s:80"}, "status": {"state": "Fake"}}
    created = kube.custom.create_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings", body)
    assert "status" not in created


def test_scale_subresource(kube, wait):
    scale = kube.apps.read_namespaced_deployment_scale("helloworld", NS)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=helloworld,track=stable"
    scaled = kube.apps.patch_namespaced_deployment_scale("helloworld", NS, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert kube.apps.read_namespaced_deployment("helloworld", NS).spec.replicas == 4

    def replace_to_one():
        # The controllers write the Deployment's status concurrently: re-read on conflict, as clients do.
        scale = kube.apps.read_namespaced_deployment_scale("helloworld", NS)
        scale.spec.replicas = 1
        try:
            return kube.apps.replace_namespaced_deployment_scale("helloworld", NS, scale), scale
        except ApiException as exc:
            assert exc.status == 409
            return None

    replaced, scale = wait(replace_to_one, what="an unconflicted scale update")
    assert replaced.spec.replicas == 1
    scale.spec.replicas = 3  # stale resourceVersion now
    with pytest.raises(ApiException) as err:
        kube.apps.replace_namespaced_deployment_scale("helloworld", NS, scale)
    assert err.value.status == 409
    wait(lambda: kube.apps.read_namespaced_deployment_scale("helloworld", NS).status.replicas == 1,
         what="scale status follows the pods")


def test_unsupported_patch_type_is_415(kube):
    with pytest.raises(ApiException) as err:
        kube.custom.patch_namespaced_custom_object("getambassador.io", "v3alpha1", NS, "mappings", "helloworld",
                                                   {"spec": {"weight": 5}},
                                                   _content_type="application/strategic-merge-patch+json")
    assert err.value.status == 415
    with pytest.raises(ApiException) as err:  # server-side apply is served, but needs a field manager
        kube.apps.patch_namespaced_deployment("helloworld", NS, {"spec": {"replicas": 1}},
                                              _content_type="application/apply-patch+yaml")
    assert err.value.status == 400 and "fieldManager" in err.value.body


def test_every_kind_reads_back_through_the_typed_client(kube, wait):
    emu = kube.emu
    emu.seed(__import__("pathlib").Path(__file__).parent / "fixtures" / "extras.yaml")
    kube.coordination.create_namespaced_lease(NS, {"metadata": {"name": "hello-chatops-leader"},
                                                   "spec": {"holderIdentity": "bot-1", "leaseDurationSeconds": 15,
                                                            "acquireTime": "2026-01-01T00:00:00.000000Z",
                                                            "renewTime": "2026-01-01T00:00:05.000000Z"}})
    wait(lambda: kube.core.list_namespaced_pod(NS, label_selector="app=helloworld").items, what="pods")
    deploy = kube.apps.read_namespaced_deployment("helloworld", NS)
    assert deploy.spec.strategy.rolling_update.max_surge == "25%"
    assert deploy.spec.revision_history_limit == 10 and deploy.spec.progress_deadline_seconds == 600
    assert deploy.spec.template.spec.containers[0].termination_message_path == "/dev/termination-log"
    assert kube.apps.list_namespaced_replica_set(NS).items[0].metadata.owner_references[0].kind == "Deployment"
    pod = kube.core.list_namespaced_pod(NS).items[0]
    assert pod.spec.containers[0].name == "helloworld"
    service = kube.core.read_namespaced_service("helloworld", NS)
    assert service.spec.cluster_ip and service.spec.ports[0].protocol == "TCP"
    assert kube.core.read_namespace(NS).status.phase == "Active"
    assert kube.core.read_namespaced_service_account("hello-chatops", NS).metadata.uid
    lease = kube.coordination.read_namespaced_lease("hello-chatops-leader", NS)
    assert lease.spec.holder_identity == "bot-1"
    wait(lambda: kube.core.list_namespaced_event(NS).items, what="events")
    assert kube.core.list_namespaced_event(NS).items[0].involved_object.name
    assert client.NetworkingV1Api(kube.api).read_namespaced_network_policy("allow-gateway", NS).spec.pod_selector
    assert kube.custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", "letsencrypt")
    for group, version, ns, plural in [("getambassador.io", "v3alpha1", NS, "mappings"),
                                       ("cert-manager.io", "v1", NS, "certificates"),
                                       ("metallb.io", "v1beta1", "metallb-system", "ipaddresspools"),
                                       ("metallb.io", "v1beta1", "metallb-system", "l2advertisements"),
                                       ("monitoring.coreos.com", "v1", NS, "servicemonitors")]:
        items = kube.custom.list_namespaced_custom_object(group, version, ns, plural)["items"]
        assert items, plural


def test_discovery_endpoints(kube):
    version = client.VersionApi(kube.api).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.")
    groups = client.ApisApi(kube.api).get_api_versions()
    assert {"apps", "getambassador.io", "cert-manager.io"} <= {g.name for g in groups.groups}
    core = client.CoreApi(kube.api).get_api_versions()
    assert core.versions == ["v1"]
    resources = client.AppsV1Api(kube.api).get_api_resources()
    assert {"deployments", "deployments/status", "deployments/scale"} <= {r.name for r in resources.resources}
