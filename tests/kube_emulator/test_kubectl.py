"""The real kubectl (1.37, from the pinned wheel) against the emulator: discovery, tables, watches.

One emulator per module, seeded like the sandbox (manifests/ and, when they are beside the checkout,
the upstream CRDs); each test reads what the seed made or works on objects of its own.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.kube import KubeEmulator
from tests.crds import CRD_DIR
from tests.kubectl import kubectl_path, run_kubectl

from .conftest import FAST, wait_for

REPO = Path(__file__).resolve().parents[2]
NS = "hello"


class Kubectl:
    """`kubectl(...)` against one emulator: stdout of a successful run, or the whole result."""

    def __init__(self, emu: KubeEmulator, folder: Path) -> None:
        self.emu = emu
        self.kubeconfig = emu.write_kubeconfig(folder / "kubeconfig")

    def __call__(self, *args: str, input: str | None = None) -> str:
        return run_kubectl(*args, kubeconfig=self.kubeconfig, input=input).stdout

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_kubectl(*args, kubeconfig=self.kubeconfig, input=input, check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.kubeconfig.parent / "kube-cache"),
               "PATH": "/usr/bin:/bin"}
        return subprocess.Popen([str(kubectl_path()), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)


@pytest.fixture(scope="module")
def emu() -> Iterator[KubeEmulator]:
    kubectl_path()  # skip the module early when the wheel is absent
    emulator = KubeEmulator(**FAST)
    if CRD_DIR.is_dir():
        emulator.load_crds(CRD_DIR)
    emulator.seed(REPO / "manifests")
    with emulator.run_in_thread():
        yield emulator


@pytest.fixture(scope="module")
def kubectl(emu: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    k = Kubectl(emu, tmp_path_factory.mktemp("kubectl"))
    k("wait", "-n", NS, "--for=condition=Available", "deployment/helloworld", "deployment/hello-chatops",
      "--timeout=30s")
    return k


def table(text: str) -> list[dict[str, str]]:
    """Rows of kubectl's column output, by header (columns are separated by two or more spaces)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:(?<=  )|^)\S", header)]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    return [{name: line[s:e].strip() for name, s, e in zip(names, starts, [*starts[1:], None], strict=True)}
            for line in lines[1:]]


def headers(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[0].strip())


def deployment(name: str, image: str = "helloworld:v1", replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


# --- discovery ----------------------------------------------------------------------------------


def test_short_names_and_categories_come_from_discovery(kubectl: Kubectl) -> None:
    resources = table(kubectl("api-resources"))
    short = {(r["NAME"], r["APIVERSION"]): r["SHORTNAMES"] for r in resources}
    assert short[("deployments", "apps/v1")] == "deploy"
    assert short[("pods", "v1")] == "po"
    assert short[("services", "v1")] == "svc"
    assert short[("configmaps", "v1")] == "cm"
    assert short[("replicasets", "apps/v1")] == "rs"
    assert short[("namespaces", "v1")] == "ns"
    assert short[("events", "v1")] == "ev"
    listed = kubectl("get", "deploy,po,svc,cm,rs", "-n", NS, "-o", "name").split()
    assert "deployment.apps/helloworld" in listed and "service/helloworld" in listed
    assert any(name.startswith("pod/helloworld-") for name in listed)
    assert any(name.startswith("replicaset.apps/helloworld-") for name in listed)
    assert "namespace/hello" in kubectl("get", "ns", "-o", "name").split()
    in_all = kubectl("get", "all", "-n", NS, "-o", "name").split()
    assert {name.split("/")[0] for name in in_all} == {"pod", "service", "deployment.apps", "replicaset.apps"}


def test_custom_kinds_resolve_by_their_crd_names(kubectl: Kubectl) -> None:
    if not CRD_DIR.is_dir():
        pytest.skip(f"the upstream CRDs are not beside the checkout ({CRD_DIR}): CRD names not checked")
    resources = {(r["NAME"], r["APIVERSION"]): r for r in table(kubectl("api-resources"))}
    assert resources[("certificates", "cert-manager.io/v1")]["SHORTNAMES"] == "cert,certs"
    assert kubectl("get", "cert", "-n", NS, "-o", "name").split() == ["certificate.cert-manager.io/helloworld-tls"]
    in_category = kubectl("get", "ambassador-crds", "-n", NS, "-o", "name").split()
    assert "mapping.getambassador.io/helloworld" in in_category


# --- tables -------------------------------------------------------------------------------------


def test_pods_show_ready_status_restarts_and_age(kubectl: Kubectl) -> None:
    out = kubectl("get", "po", "-n", NS, "-l", "app=helloworld,track=stable")
    assert headers(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = table(out)
    assert len(rows) == 2
    assert all(r["READY"] == "1/1" and r["STATUS"] == "Running" and r["RESTARTS"] == "0" for r in rows)
    assert all(re.fullmatch(r"\d+(s|m\d*s?)", r["AGE"]) for r in rows)
    wide = kubectl("get", "pods", "-n", NS, "-l", "app=helloworld,track=stable", "-o", "wide")
    assert headers(wide) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                             "READINESS GATES"]
    assert all(r["IP"].startswith("10.244.") and r["NODE"] == "sandbox-node" for r in table(wide))


def test_deployments_show_ready_up_to_date_available_and_wide_columns(kubectl: Kubectl) -> None:
    rows = {r["NAME"]: r for r in table(kubectl("get", "deploy", "-n", NS))}
    assert rows["helloworld"] == {"NAME": "helloworld", "READY": "2/2", "UP-TO-DATE": "2", "AVAILABLE": "2",
                                  "AGE": rows["helloworld"]["AGE"]}
    wide = {r["NAME"]: r for r in table(kubectl("get", "deployments", "-n", NS, "-o", "wide"))}
    assert wide["helloworld"]["CONTAINERS"] == "helloworld"
    assert wide["helloworld"]["IMAGES"] == "helloworld:v1"
    assert wide["helloworld"]["SELECTOR"] == "app=helloworld,track=stable"
    labelled = {r["NAME"]: r for r in table(kubectl("get", "deploy", "-n", NS, "--show-labels"))}
    assert labelled["helloworld"]["LABELS"] == "app=helloworld,track=stable"
    selected = table(kubectl("get", "deploy", "-A", "-l", "track=canary"))
    assert [(r["NAMESPACE"], r["NAME"]) for r in selected] == [(NS, "helloworld-canary")]


def test_replicasets_services_and_events_have_their_columns(kubectl: Kubectl) -> None:
    rs = table(kubectl("get", "rs", "-n", NS, "-l", "app=helloworld,track=stable"))
    assert [(r["DESIRED"], r["CURRENT"], r["READY"]) for r in rs] == [("2", "2", "2")]
    assert headers(kubectl("get", "rs", "-n", NS)) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    svc = {r["NAME"]: r for r in table(kubectl("get", "svc", "-n", NS, "-o", "wide"))}
    assert svc["helloworld"]["TYPE"] == "ClusterIP"
    assert svc["helloworld"]["CLUSTER-IP"].startswith("10.96.")
    assert svc["helloworld"]["EXTERNAL-IP"] == "<none>"
    assert svc["helloworld"]["PORT(S)"] == "80/TCP"
    assert svc["helloworld"]["SELECTOR"] == "app=helloworld,track=stable"
    events = table(kubectl("get", "ev", "-n", NS))
    assert headers(kubectl("get", "events", "-n", NS)) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any(e["TYPE"] == "Normal" and e["REASON"] == "ScalingReplicaSet" and e["OBJECT"] == "deployment/helloworld"
               for e in events)


def test_custom_resources_show_their_printer_columns(kubectl: Kubectl) -> None:
    if not CRD_DIR.is_dir():
        pytest.skip(f"the upstream CRDs are not beside the checkout ({CRD_DIR}): printer columns not checked")
    certs = kubectl("get", "certificates", "-n", NS)
    assert headers(certs) == ["NAME", "READY", "SECRET", "AGE"]
    wait_for(lambda: table(kubectl("get", "cert", "-n", NS))[0]["READY"] == "True", what="certificate ready")
    assert table(certs)[0]["SECRET"] == "helloworld-tls"
    wide = table(kubectl("get", "cert", "-n", NS, "-o", "wide"))
    assert wide[0]["ISSUER"] and wide[0]["STATUS"] == "Certificate is up to date and has not expired"
    mappings = {r["NAME"]: r for r in table(kubectl("get", "mappings", "-n", NS))}
    assert mappings["helloworld"]["SOURCE PREFIX"] == "/hello/"
    assert mappings["helloworld"]["DEST SERVICE"] == "helloworld:80"


def test_output_formats_json_yaml_jsonpath(kubectl: Kubectl) -> None:
    import json

    import yaml

    as_json = json.loads(kubectl("get", "deploy", "helloworld", "-n", NS, "-o", "json"))
    assert as_json["kind"] == "Deployment" and as_json["status"]["readyReplicas"] == 2
    listed = yaml.safe_load(kubectl("get", "svc", "-n", NS, "-o", "yaml"))
    assert listed["kind"] == "List" and {i["metadata"]["name"] for i in listed["items"]} >= {"helloworld"}
    images = kubectl("get", "deploy", "-n", NS, "-o", "jsonpath={range .items[*]}{.metadata.name}={"
                     ".spec.template.spec.containers[0].image}{'\\n'}{end}")
    assert "helloworld=helloworld:v1" in images.splitlines()


# --- watches ------------------------------------------------------------------------------------


def test_rollout_status_and_wait_follow_a_rollout(kubectl: Kubectl, emu: KubeEmulator) -> None:
    emu.apply(deployment("watched"))
    kubectl("rollout", "status", "deployment/watched", "-n", NS, "--timeout=30s")
    kubectl("set", "image", "deployment/watched", "web=helloworld:v2", "-n", NS)
    out = kubectl("rollout", "status", "deployment/watched", "-n", NS, "--timeout=30s")
    assert 'deployment "watched" successfully rolled out' in out
    assert emu.get("apps", "v1", "deployments", NS, "watched")["status"]["updatedReplicas"] == 1
    kubectl("wait", "--for=condition=Available", "deployment/watched", "-n", NS, "--timeout=30s")
    broken = kubectl.run("wait", "--for=jsonpath={.spec.replicas}=5", "deployment/watched", "-n", NS,
                         "--timeout=1s")
    assert broken.returncode != 0 and "timed out" in broken.stderr


def test_get_watch_prints_changes_as_rows(kubectl: Kubectl, emu: KubeEmulator) -> None:
    emu.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched-cm", "namespace": NS},
               "data": {"a": "1"}})
    proc = kubectl.popen("get", "cm", "watched-cm", "-n", NS, "-w")
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 2, what="the header and the first row")
        kubectl("patch", "cm", "watched-cm", "-n", NS, "-p", '{"data":{"b":"2"}}')
        wait_for(lambda: len(lines) >= 3, what="a row for the change")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert headers(lines[0]) == ["NAME", "DATA", "AGE"]
    assert re.split(r"\s+", lines[1].strip())[:2] == ["watched-cm", "1"]
    assert re.split(r"\s+", lines[2].strip())[:2] == ["watched-cm", "2"]


# --- writing: apply, diff, validation -----------------------------------------------------------

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: hello
  labels: {{app: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: web
          image: {image}
          {extra}
"""


def web(name: str, image: str = "helloworld:v1", extra: str = "") -> str:
    return WEB.format(name=name, image=image, extra=extra)


def test_openapi_documents_describe_the_served_kinds(kubectl: Kubectl) -> None:
    import json

    index = json.loads(kubectl("get", "--raw", "/openapi/v3"))
    assert {"api/v1", "apis/apps/v1", "apis/getambassador.io/v3alpha1"} <= set(index["paths"])
    apps = json.loads(kubectl("get", "--raw", index["paths"]["apis/apps/v1"]["serverRelativeURL"]))
    deployment = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    v2 = json.loads(kubectl("get", "--raw", "/openapi/v2"))
    assert v2["swagger"] == "2.0" and "io.k8s.api.core.v1.PodSpec" in v2["definitions"]
    explained = kubectl("explain", "deployment.spec.replicas")
    assert "FIELD: replicas <integer>" in explained


def test_apply_creates_then_configures_and_diff_shows_the_change(kubectl: Kubectl, emu: KubeEmulator) -> None:
    assert kubectl("apply", "-f", "-", input=web("applied")).strip() == "deployment.apps/applied created"
    assert kubectl("apply", "-f", "-", input=web("applied")).strip() == "deployment.apps/applied unchanged"
    changed = web("applied", image="helloworld:v2")
    diff = kubectl.run("diff", "-f", "-", input=changed)
    assert diff.returncode == 1, diff.stderr
    changes = [line.split() for line in diff.stdout.splitlines() if line[:1] in "+-" and "image:" in line]
    assert changes == [["-", "-", "image:", "helloworld:v1"], ["+", "-", "image:", "helloworld:v2"]]
    # diff is a dry run: nothing changed
    assert emu.get("apps", "v1", "deployments", NS, "applied")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "helloworld:v1"
    assert kubectl("apply", "-f", "-", input=changed).strip() == "deployment.apps/applied configured"
    live = emu.get("apps", "v1", "deployments", NS, "applied")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "helloworld:v2"
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    assert kubectl.run("diff", "-f", "-", input=changed).returncode == 0


def test_apply_refuses_an_unknown_field_like_a_cluster(kubectl: Kubectl, emu: KubeEmulator) -> None:
    refused = kubectl.run("apply", "-f", "-", input=web("typo", extra="imagee: helloworld:v2"))
    assert refused.returncode == 1
    assert ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
            'unknown field "spec.template.spec.containers[0].imagee"') in refused.stderr
    assert emu.get("apps", "v1", "deployments", NS, "typo") is None
    mapping = ("apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nmetadata: {name: typo, namespace: hello}\n"
               "spec: {prefix: /typo/, service: typo:80, prefixx: /x/}\n")
    if CRD_DIR.is_dir():
        refused = kubectl.run("apply", "-f", "-", input=mapping)
        assert refused.returncode == 1
        assert 'strict decoding error: unknown field "spec.prefixx"' in refused.stderr
    lenient = kubectl.run("apply", "--validate=false", "-f", "-", input=web("typo", extra="imagee: x"))
    assert lenient.returncode == 0, lenient.stderr


def test_server_side_apply_owns_fields_per_manager_and_a_conflict_names_the_manager(kubectl: Kubectl) -> None:
    import json

    two = web("ssa").replace("replicas: 1", "replicas: 2")
    three = web("ssa").replace("replicas: 1", "replicas: 3")
    assert kubectl("apply", "--server-side", "--field-manager=alice", "-f", "-", input=two).strip() == \
        "deployment.apps/ssa serverside-applied"
    refused = kubectl.run("apply", "--server-side", "--field-manager=bob", "-f", "-", input=three)
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas' in refused.stderr
    raw = kubectl.run("get", "--raw", "/apis/apps/v1/namespaces/hello/deployments/ssa")
    assert json.loads(raw.stdout)["spec"]["replicas"] == 2
    # the same value is shared ownership, not a conflict; --force-conflicts takes the field over
    kubectl("apply", "--server-side", "--field-manager=bob", "-f", "-", input=two)
    kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-", input=three)
    live = json.loads(kubectl("get", "deploy", "ssa", "-n", NS, "-o", "json", "--show-managed-fields"))
    assert live["spec"]["replicas"] == 3
    owners = {e["manager"]: e for e in live["metadata"]["managedFields"]}
    assert owners["alice"]["operation"] == owners["bob"]["operation"] == "Apply"
    assert "f:replicas" not in owners["alice"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in owners["bob"]["fieldsV1"]["f:spec"]
    # an imperative change makes its writer an owner too: the next apply conflicts with it
    kubectl("scale", "deployment/ssa", "-n", NS, "--replicas=4")
    refused = kubectl.run("apply", "--server-side", "--field-manager=bob", "-f", "-", input=three)
    assert refused.returncode == 1
    assert re.search(r'conflict with "kubectl" using apps/v1 at \S+: \.spec\.replicas', refused.stderr)


def test_server_side_apply_drops_the_fields_a_manager_stops_applying(kubectl: Kubectl, emu: KubeEmulator) -> None:
    labelled = web("pruned").replace("labels: {app: pruned}", "labels: {app: pruned, tier: web}", 1)
    kubectl("apply", "--server-side", "-f", "-", input=labelled)
    assert emu.get("apps", "v1", "deployments", NS, "pruned")["metadata"]["labels"] == {"app": "pruned",
                                                                                        "tier": "web"}
    kubectl("apply", "--server-side", "-f", "-", input=web("pruned"))
    assert emu.get("apps", "v1", "deployments", NS, "pruned")["metadata"]["labels"] == {"app": "pruned"}


# --- imperative commands ------------------------------------------------------------------------


def test_rollout_history_undo_restart_pause_resume(kubectl: Kubectl, emu: KubeEmulator) -> None:
    def live() -> dict[str, Any]:
        return emu.get("apps", "v1", "deployments", NS, "rolled")

    kubectl("apply", "-f", "-", input=web("rolled"))
    kubectl("rollout", "status", "deployment/rolled", "-n", NS, "--timeout=30s")
    kubectl("set", "image", "deployment/rolled", "web=helloworld:v2", "-n", NS)
    kubectl("annotate", "deployment/rolled", "-n", NS, "kubernetes.io/change-cause=release v2")
    kubectl("rollout", "status", "deployment/rolled", "-n", NS, "--timeout=30s")
    history = table(kubectl("rollout", "history", "deployment/rolled", "-n", NS).split("\n", 1)[1])
    assert [(r["REVISION"], r["CHANGE-CAUSE"]) for r in history] == [("1", "<none>"), ("2", "release v2")]
    assert "Image:\thelloworld:v2" in kubectl("rollout", "history", "deployment/rolled", "-n", NS, "--revision=2") \
        .replace("      ", "\t").replace(" ", "")
    assert kubectl("rollout", "undo", "deployment/rolled", "-n", NS).strip() == "deployment.apps/rolled rolled back"
    kubectl("rollout", "status", "deployment/rolled", "-n", NS, "--timeout=30s")
    assert live()["spec"]["template"]["spec"]["containers"][0]["image"] == "helloworld:v1"
    history = table(kubectl("rollout", "history", "deployment/rolled", "-n", NS).split("\n", 1)[1])
    assert [r["REVISION"] for r in history] == ["2", "3"]
    kubectl("rollout", "restart", "deployment/rolled", "-n", NS)
    assert "kubectl.kubernetes.io/restartedAt" in live()["spec"]["template"]["metadata"]["annotations"]
    kubectl("rollout", "status", "deployment/rolled", "-n", NS, "--timeout=30s")
    kubectl("rollout", "pause", "deployment/rolled", "-n", NS)
    assert live()["spec"]["paused"] is True
    kubectl("rollout", "resume", "deployment/rolled", "-n", NS)
    assert not live()["spec"].get("paused")


def test_label_annotate_patch_scale_and_delete(kubectl: Kubectl, emu: KubeEmulator) -> None:
    kubectl("apply", "-f", "-", input=web("edited"))
    assert kubectl("label", "deployment/edited", "-n", NS, "tier=web").strip() == "deployment.apps/edited labeled"
    kubectl("annotate", "deployment/edited", "-n", NS, "owner=team-a")
    kubectl("patch", "deployment/edited", "-n", NS, "-p", '{"spec":{"minReadySeconds":5}}')
    kubectl("patch", "deployment/edited", "-n", NS, "--type=json",
            "-p", '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]')
    assert kubectl("scale", "deployment/edited", "-n", NS, "--replicas=3").strip() == "deployment.apps/edited scaled"
    live = emu.get("apps", "v1", "deployments", NS, "edited")
    assert live["metadata"]["labels"]["tier"] == "web"
    assert live["metadata"]["annotations"]["owner"] == "team-a"
    assert (live["spec"]["minReadySeconds"], live["spec"]["revisionHistoryLimit"], live["spec"]["replicas"]) == \
        (5, 3, 3)
    assert kubectl("get", "deploy", "-n", NS, "-l", "tier=web", "-o", "name").split() == ["deployment.apps/edited"]
    kubectl("label", "deployment/edited", "-n", NS, "tier-")
    assert "tier" not in emu.get("apps", "v1", "deployments", NS, "edited")["metadata"]["labels"]
    deleted = kubectl("delete", "deployment/edited", "-n", NS).strip()
    assert deleted == 'deployment.apps "edited" deleted from hello namespace'
    assert emu.get("apps", "v1", "deployments", NS, "edited") is None
    missing = kubectl.run("get", "deployment/edited", "-n", NS)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "edited" not found' in missing.stderr


# --- the deploy guide: kubectl apply -k manifests/ --------------------------------------------------

_VOLATILE_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
_VOLATILE_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as its manifest made it: no status, server bookkeeping, or allocated cluster IPs."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in obj["metadata"].items() if k not in _VOLATILE_META}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _VOLATILE_ANNOTATIONS}
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    out["metadata"] = meta
    if obj["kind"] == "Service":
        out["spec"] = {k: v for k, v in obj["spec"].items() if k not in ("clusterIP", "clusterIPs")}
    return out


def test_apply_k_onto_an_empty_emulator_equals_the_seeded_cluster(tmp_path: Path) -> None:
    import yaml

    from sandbox.kube import kinds

    seeded = KubeEmulator(**FAST)
    seeded.seed(REPO / "manifests")
    empty = KubeEmulator(**FAST)
    with empty.run_in_thread():
        k = Kubectl(empty, tmp_path)
        out = k("apply", "-k", str(REPO / "manifests"))
        assert "deployment.apps/helloworld created" in out.splitlines()
        built = [d for d in yaml.safe_load_all(k("kustomize", str(REPO / "manifests"))) if d]
        assert len(built) >= 20
        for doc in built:
            kind = kinds.for_manifest(doc["apiVersion"], doc["kind"])
            namespace = doc["metadata"].get("namespace") if kind.namespaced else None
            applied = empty.get(kind.group, kind.version, kind.resource, namespace, doc["metadata"]["name"])
            expected = seeded.get(kind.group, kind.version, kind.resource, namespace, doc["metadata"]["name"])
            assert applied is not None and expected is not None, doc["metadata"]
            assert _comparable(applied) == _comparable(expected), f"{doc['kind']} {doc['metadata']['name']}"
        assert "unchanged" in k("apply", "-k", str(REPO / "manifests")).splitlines()[0]


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg], categories: [gadgets]}
  versions:
    - name: v1
      served: true
      storage: true
      additionalPrinterColumns:
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
"""


def test_a_crd_applied_with_kubectl_serves_its_kind(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", "-", input=WIDGET_CRD).strip() == \
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: hello}\nspec: {size: 3}\n"
    assert kubectl("apply", "-f", "-", input=widget).strip() == "widget.example.com/w1 created"
    rows = table(kubectl("get", "wdg", "-n", NS))
    assert [(r["NAME"], r["SIZE"]) for r in rows] == [("w1", "3")] and "AGE" in rows[0]
    assert kubectl("get", "gadgets", "-n", NS, "-o", "name").split() == ["widget.example.com/w1"]
    refused = kubectl.run("apply", "-f", "-", input=widget.replace("size: 3", "size: 3, colour: red"))
    assert 'strict decoding error: unknown field "spec.colour"' in refused.stderr


def test_without_crds_the_custom_kinds_still_print_their_upstream_columns(tmp_path: Path) -> None:
    """The sandbox has no CRD files: the emulator knows the project's custom kinds' columns itself."""
    bare = KubeEmulator(**FAST)
    bare.seed(REPO / "manifests")
    with bare.run_in_thread():
        k = Kubectl(bare, tmp_path)
        mappings = {r["NAME"]: r for r in table(k("get", "mappings", "-n", NS))}
        assert (mappings["helloworld"]["SOURCE PREFIX"], mappings["helloworld"]["DEST SERVICE"]) == \
            ("/hello/", "helloworld:80")
        assert headers(k("get", "cert", "-n", NS)) == ["NAME", "READY", "SECRET", "AGE"]
        assert headers(k("get", "servicemonitors", "-n", "monitoring")) == ["NAME", "AGE"]


def test_server_side_apply_takes_over_from_client_side_apply_without_conflict(kubectl: Kubectl,
                                                                               emu: KubeEmulator) -> None:
    kubectl("apply", "-f", "-", input=web("upgraded"))
    bigger = web("upgraded").replace("replicas: 1", "replicas: 2")
    assert kubectl("apply", "--server-side", "-f", "-", input=bigger).strip() == \
        "deployment.apps/upgraded serverside-applied"
    assert emu.get("apps", "v1", "deployments", NS, "upgraded")["spec"]["replicas"] == 2
    # another manager does not get that pass
    kubectl("apply", "-f", "-", input=web("upgraded2"))
    refused = kubectl.run("apply", "--server-side", "--field-manager=ci", "-f", "-",
                          input=web("upgraded2").replace("replicas: 1", "replicas: 2"))
    assert 'conflict with "kubectl-client-side-apply" using apps/v1' in refused.stderr


def test_a_deleted_namespace_terminates_then_goes_with_its_contents(tmp_path: Path) -> None:
    emulator = KubeEmulator(**FAST, namespace_finalize_seconds=3600)  # held Terminating until the test lets go
    emulator.seed(REPO / "manifests")
    with emulator.run_in_thread():
        k = Kubectl(emulator, tmp_path)
        assert k("delete", "namespace", "monitoring", "--wait=false").strip() == 'namespace "monitoring" deleted'
        assert table(k("get", "ns", "monitoring"))[0]["STATUS"] == "Terminating"
        late = k.run("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\n"
                                                "metadata: {name: late, namespace: monitoring}\n")
        assert "unable to create new content in namespace monitoring because it is being terminated" in late.stderr
        emulator.namespaces.finalize_seconds = 0
        k("wait", "--for=delete", "namespace/monitoring", "--timeout=30s")
        assert emulator.list("", "v1", "configmaps", "monitoring") == []
        emulator.namespaces.finalize_seconds = 3600
        out = k("delete", "-k", str(REPO / "manifests"), "--wait=false", "--ignore-not-found")  # (monitoring: gone)
        # the objects of a terminating namespace can still be deleted one by one
        assert 'namespace "hello" deleted' in out
        assert 'deployment.apps "helloworld" deleted from hello namespace' in out
        emulator.namespaces.finalize_seconds = 0
        k("wait", "--for=delete", "namespace/hello", "--timeout=30s")


def test_httproutes_are_applied_listed_and_json_patched_with_test_operations(kubectl: Kubectl) -> None:
    """The Gateway API kinds work in kubectl as the Mappings do: apply (validated against the CRD's schema when
    the CRDs are loaded), the CRD's columns and category, and a JSON patch whose `test` fails is refused."""
    kubectl("apply", "-f", str(REPO / "manifests" / "gateway-api" / "httproute.yaml"))
    rows = {r["NAME"]: r for r in table(kubectl("get", "httproutes", "-n", NS))}
    assert headers(kubectl("get", "httproutes", "-n", NS)) == ["NAME", "HOSTNAMES", "AGE"]
    assert rows["helloworld"]["HOSTNAMES"] == '["hello.example.com"]'
    assert "httproute.gateway.networking.k8s.io/helloworld" in kubectl("get", "gateway-api", "-n", NS,
                                                                       "-o", "name").split()
    stale = '[{"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": 5},' \
            ' {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}]'
    refused = kubectl.run("patch", "httproute", "helloworld", "-n", NS, "--type=json", "-p", stale)
    assert refused.returncode == 1
    assert "the server rejected our request due to an error in our request" in refused.stderr
    current = '[{"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0},' \
              ' {"op": "add", "path": "/spec/rules/0/filters/-", "value": {"type": "RequestHeaderModifier",' \
              ' "requestHeaderModifier": {"set": [{"name": "x-team", "value": "a"}]}}}]'
    assert "patched" in kubectl("patch", "httproute", "helloworld", "-n", NS, "--type=json", "-p", current)
    filters = kubectl("get", "httproute", "helloworld", "-n", NS, "-o", "jsonpath={.spec.rules[0].filters[*].type}")
    assert filters.split() == ["URLRewrite", "RequestHeaderModifier"]
