"""The bot's manifests say what the bot needs and no more: a hardened Deployment, a Service and
Mapping that Slack can reach through the gateway, a NetworkPolicy, credentials from a Secret
that is never committed, and a Role with exactly the API access the bot's commands use."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BOT = REPO / "manifests" / "bot"
ROLE_FILE = BOT / "role.yaml"

# (API group, resource, verb) the bot's commands use; "" is the core group.
EXPECTED_ACCESS = {
    *(("apps", "deployments", v) for v in ("get", "list", "watch", "patch")),
    ("apps", "deployments/scale", "patch"),
    ("apps", "replicasets", "list"),
    ("", "pods", "list"),
    *(("", "events", v) for v in ("list", "watch", "create")),
    *(("", "configmaps", v) for v in ("get", "list", "watch", "create", "update", "delete")),
    *(("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")),
    *(("getambassador.io", "mappings", v) for v in ("get", "list", "watch", "patch")),
    *(("gateway.networking.k8s.io", "httproutes", v) for v in ("get", "list", "watch", "patch")),
    *(("cert-manager.io", "certificates", v) for v in ("get", "list", "watch")),
    ("cert-manager.io", "certificates/status", "patch"),
    *(("batch", "jobs", v) for v in ("get", "list", "create", "delete")),
    ("", "pods/log", "get"),
}


def load_role(path: Path) -> set[tuple[str, str, str]]:
    """The access a file holding exactly one Role grants, as (group, resource, verb) tuples.
    Wildcards and resourceNames are refused: the Role must spell out every permission."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1 and docs[0]["kind"] == "Role", f"{path} must hold exactly one Role"
    access: set[tuple[str, str, str]] = set()
    for rule in docs[0]["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    access.add((group, resource, verb))
    return access


def _objects() -> list[dict[str, Any]]:
    docs = []
    for name in yaml.safe_load((BOT / "kustomization.yaml").read_text())["resources"]:
        docs.extend(d for d in yaml.safe_load_all((BOT / name).read_text()) if d is not None)
    return docs


def _one(objects: list[dict[str, Any]], kind: str, name: str = "hello-chatops") -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return _objects()


@pytest.fixture(scope="module")
def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_every_bot_object_lives_in_hello(objects: list[dict[str, Any]]) -> None:
    assert {o["metadata"].get("namespace") for o in objects} == {"hello"}
    assert {o["kind"] for o in objects} == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "Mapping",
        "NetworkPolicy",
    }


def test_deployment_runs_two_replicas_as_its_service_account(objects: list[dict[str, Any]]) -> None:
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "hello-chatops"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_container_is_locked_down(objects: list[dict[str, Any]], container: dict[str, Any]) -> None:
    pod_security = _one(objects, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    security = container["securityContext"]
    assert pod_security["runAsNonRoot"] is True and security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 10001  # the image's user (bot/Dockerfile)
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in security or security["privileged"] is False


def test_only_tmp_is_writable_and_it_is_an_empty_dir(objects: list[dict[str, Any]], container: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in _one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    mounts = container["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/tmp"]
    assert "emptyDir" in volumes[mounts[0]["name"]]


def test_probes_and_port(container: dict[str, Any]) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 3000}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 3000


def test_resources_are_bounded(container: dict[str, Any]) -> None:
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]


def test_command_serves_on_port_3000(container: dict[str, Any]) -> None:
    assert container["command"] == ["python", "-m", "bot", "serve", "--port", "3000"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_slack_credentials_come_from_the_secret(container: dict[str, Any]) -> None:
    env = _env(container)
    for name, optional in (("SLACK_BOT_TOKEN", False), ("SLACK_SIGNING_SECRET", False), ("SLACK_APP_TOKEN", True)):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "hello-chatops-slack" and ref["key"] == name
        assert ref.get("optional", False) is optional
    assert not [e for e in container["env"] if "value" in e and e["name"].startswith("SLACK_")]


def test_plain_settings_and_identity(container: dict[str, Any]) -> None:
    env = _env(container)
    assert env["HELLO_NAMESPACE"]["value"] == "hello"
    assert env["PROMETHEUS_URL"]["value"] == "http://prometheus.monitoring.svc:9090"
    assert env["HELLO_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def _bot_config_module():
    name = "manifest_tests_bot_config"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bot" / "core" / "config.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_variable_set_is_one_the_bot_reads(container: dict[str, Any]) -> None:
    known = set(_bot_config_module().ENV_VARS)
    assert set(_env(container)) <= known, set(_env(container)) - known


def test_service_sends_port_80_to_the_container_port(objects: list[dict[str, Any]], container: dict[str, Any]) -> None:
    service = _one(objects, "Service")
    pod_labels = _one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    target = port["targetPort"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}.get(target, target) == 3000


def test_mapping_routes_slack_to_the_service_without_rewriting(objects: list[dict[str, Any]]) -> None:
    spec = _one(objects, "Mapping")["spec"]
    assert spec["prefix"] == "/slack/"
    # Emissary rewrites the matched prefix to "/" unless told otherwise; /slack/events must arrive as is.
    assert spec["rewrite"] in ("/slack/", "")
    assert spec["service"] in ("hello-chatops", "hello-chatops:80")
    assert spec["hostname"] == "hello.example.com"


def test_network_policy(objects: list[dict[str, Any]]) -> None:
    policy = _one(objects, "NetworkPolicy")["spec"]
    pod_labels = _one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    # Slack's requests through the gateway; Alertmanager's webhooks from the monitoring namespace.
    gateway, alertmanager = policy["ingress"]
    assert gateway["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "emissary"}}}]
    assert alertmanager["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    for rule in (gateway, alertmanager):
        assert rule["ports"] == [{"protocol": "TCP", "port": 3000}]
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443), ("TCP", 9090), ("TCP", 9093)} == egress_ports
    for port in (9090, 9093):  # Prometheus; Alertmanager's API (silences)
        rule = next(r for r in policy["egress"] if ("TCP", port) in {(p["protocol"], p["port"]) for p in r["ports"]})
        assert rule["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_secret_template_is_empty_and_lists_the_keys_the_deployment_reads(container: dict[str, Any]) -> None:
    path = BOT / "secret.example.yaml"
    (secret,) = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert secret["kind"] == "Secret"
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("hello-chatops-slack", "hello")
    assert set(secret["stringData"].values()) == {""}
    read = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert set(secret["stringData"]) == read
    assert "kubectl" in path.read_text() and "create secret generic" in path.read_text()
    listed = yaml.safe_load((BOT / "kustomization.yaml").read_text())["resources"]
    assert "secret.example.yaml" not in listed


# --- RBAC -----------------------------------------------------------------------------------


def test_role_grants_exactly_what_the_bot_uses() -> None:
    assert load_role(ROLE_FILE) == EXPECTED_ACCESS


def test_role_is_namespaced_to_hello() -> None:
    (role,) = [d for d in yaml.safe_load_all(ROLE_FILE.read_text()) if d is not None]
    assert (role["apiVersion"], role["metadata"]["name"], role["metadata"]["namespace"]) == (
        "rbac.authorization.k8s.io/v1",
        "hello-chatops",
        "hello",
    )


def test_every_role_rule_says_why() -> None:
    lines = ROLE_FILE.read_text().splitlines()
    rule_starts = [i for i, line in enumerate(lines) if re.match(r"^\s*- apiGroups:", line)]
    assert rule_starts
    for index in rule_starts:
        assert lines[index - 1].strip().startswith("#"), f"rule at line {index + 1} has no comment"


def test_load_role_reads_group_resource_verb_tuples(tmp_path: Path) -> None:
    path = tmp_path / "role.yaml"
    path.write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: n}\n"
        "rules:\n- apiGroups: ['', apps]\n  resources: [pods]\n  verbs: [get, list]\n"
    )
    assert load_role(path) == {
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("apps", "pods", "get"),
        ("apps", "pods", "list"),
    }
    path.write_text(path.read_text().replace("verbs: [get, list]", "verbs: ['*']"))
    with pytest.raises(AssertionError, match="wildcard"):
        load_role(path)


def test_role_binding_ties_the_service_account_to_the_role(objects: list[dict[str, Any]]) -> None:
    binding = _one(objects, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hello-chatops"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hello-chatops", "namespace": "hello"}]
    _one(objects, "ServiceAccount")
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_built_deployment_uses_the_tagged_image(kbuild) -> None:
    built = kbuild.build(BOT)
    (container,) = _one(built, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "hello-chatops:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
