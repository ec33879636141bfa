"""Simulated controllers: Deployment rollouts (success, failure, rollback, scale to 0) and cert-manager."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cryptography import x509
from kubernetes.client.exceptions import ApiException

NS = "hello"
REVISION = "deployment.kubernetes.io/revision"


def condition(deploy, type_):
    return next((c for c in deploy.status.conditions or [] if c.type == type_), None)


def set_image(kube, image):
    return kube.apps.patch_namespaced_deployment("helloworld", NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "helloworld", "image": image}]}}}})


def rollout_complete(kube, generation=None):
    def check():
        d = kube.apps.read_namespaced_deployment("helloworld", NS)
        progressing = condition(d, "Progressing")
        done = (progressing is not None and progressing.reason == "NewReplicaSetAvailable"
                and d.status.observed_generation == d.metadata.generation
                and d.status.updated_replicas == d.spec.replicas == d.status.available_replicas
                and d.status.replicas == d.spec.replicas)
        return d if done else None
    return check


def test_rollout_of_a_new_image_reaches_revision_2(kube, wait):
    first = wait(rollout_complete(kube), what="initial rollout")
    assert first.metadata.annotations[REVISION] == "1"
    assert condition(first, "Available").reason == "MinimumReplicasAvailable"
    set_image(kube, "registry.local/helloworld:v2")
    done = wait(rollout_complete(kube), what="rollout of v2")
    assert done.metadata.annotations[REVISION] == "2"
    sets = {rs.metadata.name: rs for rs in kube.apps.list_namespaced_replica_set(NS).items}
    assert len(sets) == 2
    new = next(rs for rs in sets.values() if rs.metadata.annotations[REVISION] == "2")
    old = next(rs for rs in sets.values() if rs.metadata.annotations[REVISION] == "1")
    digest = new.metadata.labels["pod-template-hash"]
    assert new.metadata.name == f"helloworld-{digest}"
    assert new.metadata.owner_references[0].name == "helloworld" and new.metadata.owner_references[0].controller
    assert new.spec.replicas == 2 and old.spec.replicas == 0
    pods = wait(lambda: [p for p in kube.core.list_namespaced_pod(NS, label_selector="app=helloworld").items
                         if p.metadata.labels["pod-template-hash"] == digest] or None, what="pods")
    pods = kube.core.list_namespaced_pod(NS, label_selector="app=helloworld").items
    assert len(pods) == 2 and {p.metadata.labels["pod-template-hash"] for p in pods} == {digest}
    for pod in pods:
        assert pod.status.phase == "Running" and pod.spec.containers[0].image == "registry.local/helloworld:v2"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert pod.status.container_statuses[0].ready
    progressing = condition(done, "Progressing")
    assert progressing.last_update_time is not None and progressing.last_transition_time is not None


def test_surge_limits_are_honoured_during_a_rollout(emulator_factory, cluster_for, wait):
    emu = emulator_factory(pod_ready_seconds=0.3)
    kube = cluster_for(emu)
    wait(rollout_complete(kube), what="initial rollout")
    kube.apps.patch_namespaced_deployment("helloworld", NS, {"spec": {
        "replicas": 4, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}})
    wait(rollout_complete(kube), what="scale to 4")
    peak = []
    unsubscribe = emu.subscribe(lambda kind, obj: obj.get("kind") == "Pod" and peak.append(
        len(emu.list("", "v1", "pods", NS, label_selector="app=helloworld"))))
    set_image(kube, "registry.local/helloworld:v3")
    done = wait(rollout_complete(kube), what="rollout of v3")
    unsubscribe()
    assert done.metadata.annotations[REVISION] == "2"
    assert max(peak) <= 5  # replicas + maxSurge


def test_broken_image_never_gets_ready_and_misses_the_deadline(kube, wait):
    wait(rollout_complete(kube), what="initial rollout")
    set_image(kube, "registry.local/helloworld:v2-broken")

    def deadline_exceeded():
        d = kube.apps.read_namespaced_deployment("helloworld", NS)
        progressing = condition(d, "Progressing")
        return d if progressing and progressing.reason == "ProgressDeadlineExceeded" else None

    failed = wait(deadline_exceeded, what="ProgressDeadlineExceeded")
    assert condition(failed, "Progressing").status == "False"
    assert failed.status.available_replicas == 2  # old pods keep serving (maxUnavailable 25% of 2 = 0)
    pods = kube.core.list_namespaced_pod(NS, label_selector="app=helloworld").items
    broken = [p for p in pods if p.spec.containers[0].image.endswith("-broken")]
    assert broken
    waiting = broken[0].status.container_statuses[0].state.waiting
    assert waiting.reason == "CrashLoopBackOff" and not broken[0].status.container_statuses[0].ready
    events = wait(lambda: [e for e in kube.core.list_namespaced_event(NS).items if e.reason == "BackOff"],
                  what="BackOff event")
    assert events[0].type == "Warning" and events[0].involved_object.kind == "Pod"
    assert events[0].involved_object.name == broken[0].metadata.name
    assert events[0].message.startswith("Back-off restarting failed container helloworld in pod ")
    field = kube.core.list_namespaced_event(NS, field_selector=f"involvedObject.name={broken[0].metadata.name}")
    assert [e.reason for e in field.items] == ["BackOff"]


def test_broken_images_option(emulator_factory, cluster_for, wait):
    emu = emulator_factory(broken_images=["registry.local/helloworld:v9"])
    kube = cluster_for(emu)
    wait(rollout_complete(kube), what="initial rollout")
    set_image(kube, "registry.local/helloworld:v9")
    wait(lambda: [e for e in kube.core.list_namespaced_event(NS).items if e.reason == "BackOff"],
         what="BackOff event")


def test_rollback_reuses_the_old_replicaset_with_a_new_revision(kube, wait):
    wait(rollout_complete(kube), what="initial rollout")
    original = {rs.metadata.name for rs in kube.apps.list_namespaced_replica_set(NS).items}
    set_image(kube, "registry.local/helloworld:v2")
    wait(rollout_complete(kube), what="rollout of v2")
    set_image(kube, "registry.local/helloworld:v1")
    done = wait(rollout_complete(kube), what="rollback to v1")
    assert done.metadata.annotations[REVISION] == "3"
    sets = kube.apps.list_namespaced_replica_set(NS).items
    assert len(sets) == 2
    current = next(rs for rs in sets if rs.spec.replicas == 2)
    assert current.metadata.name in original and current.metadata.annotations[REVISION] == "3"


def test_scale_to_zero_removes_pods_and_delete_collects_garbage(kube, wait):
    wait(rollout_complete(kube), what="initial rollout")
    kube.apps.patch_namespaced_deployment_scale("helloworld", NS, {"spec": {"replicas": 0}})
    wait(lambda: not kube.core.list_namespaced_pod(NS).items, what="pods gone")
    wait(rollout_complete(kube), what="scaled to zero")
    kube.apps.delete_namespaced_deployment("helloworld", NS)
    assert kube.apps.list_namespaced_replica_set(NS).items == []


def certificate(kube, name="helloworld-tls"):
    return kube.custom.get_namespaced_custom_object("cert-manager.io", "v1", NS, "certificates", name)


def add_certificate(kube, **annotations):
    kube.custom.create_namespaced_custom_object("cert-manager.io", "v1", NS, "certificates", {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "helloworld-tls", "annotations": annotations},
        "spec": {"secretName": "helloworld-tls", "duration": "2160h", "dnsNames": ["hello.example.test",
                                                                                  "www.hello.example.test"],
                 "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}})


def ready(cert):
    return next((c for c in cert.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})


def renew(kube):
    """What `cmctl renew` does: set Issuing=True through the status subresource."""
    cert = certificate(kube)
    conditions = [c for c in cert["status"].get("conditions", []) if c["type"] != "Issuing"]
    conditions.append({"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
                       "message": "Certificate re-issuance manually triggered",
                       "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    kube.custom.patch_namespaced_custom_object_status("cert-manager.io", "v1", NS, "certificates",
                                                      "helloworld-tls", {"status": {"conditions": conditions}})


def test_new_certificate_is_issued_and_renewal_makes_revision_2(kube, wait):
    add_certificate(kube)
    first = wait(lambda: (c := certificate(kube)).get("status", {}).get("revision") == 1 and c,
                 what="first issuance")
    assert ready(first)["status"] == "True"
    renew(kube)
    second = wait(lambda: (c := certificate(kube))["status"].get("revision") == 2 and c, what="renewal")
    status = second["status"]
    assert ready(second) | {"lastTransitionTime": None} == {
        "type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not "
        "expired", "lastTransitionTime": None, "observedGeneration": 1}
    assert not [c for c in status["conditions"] if c["type"] == "Issuing"]
    secret = kube.core.read_namespaced_secret("helloworld-tls", NS)
    assert secret.type == "kubernetes.io/tls" and set(secret.data) == {"tls.crt", "tls.key", "ca.crt"}
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret.data["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == ["hello.example.test", "www.hello.example.test"]
    not_after = datetime.strptime(status["notAfter"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    not_before = datetime.strptime(status["notBefore"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert cert.not_valid_after_utc == not_after and cert.not_valid_before_utc == not_before
    assert (not_after - not_before).total_seconds() == 2160 * 3600
    renewal = datetime.strptime(status["renewalTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (not_after - renewal).total_seconds() == 720 * 3600  # a third of the duration
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret.data["ca.crt"]))
    cert.verify_directly_issued_by(ca)


def test_failed_issuance_records_failure(kube, wait):
    add_certificate(kube)
    wait(lambda: certificate(kube).get("status", {}).get("revision") == 1, what="first issuance")
    kube.emu.cert_failures = 2
    for attempt in (1, 2):
        renew(kube)
        failed = wait(lambda a=attempt: (c := certificate(kube))["status"].get("failedIssuanceAttempts") == a
                      and c, what=f"failure {attempt}")
        issuing = next(c for c in failed["status"]["conditions"] if c["type"] == "Issuing")
        assert issuing["status"] == "False" and issuing["reason"] == "Failed" and issuing["message"]
        assert failed["status"]["lastFailureTime"] and failed["status"]["revision"] == 1
    renew(kube)
    fixed = wait(lambda: (c := certificate(kube))["status"].get("revision") == 2 and c, what="issued again")
    assert "failedIssuanceAttempts" not in fixed["status"] and "lastFailureTime" not in fixed["status"]


def test_failure_annotation(kube, wait):
    add_certificate(kube, **{"sandbox.hello-chatops.dev/fail-issuance": "always"})
    failed = wait(lambda: (c := certificate(kube)).get("status", {}).get("failedIssuanceAttempts") == 1 and c,
                  what="failure")
    assert "revision" not in failed["status"]
    try:
        kube.core.read_namespaced_secret("helloworld-tls", NS)
        raise AssertionError("no Secret should exist")
    except ApiException as exc:
        assert exc.status == 404
