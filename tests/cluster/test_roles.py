"""`python -m bot rbac`: the bot's Role in every namespace of the catalogue, from manifests/bot/role.yaml,
and `python -m bot check` passing against clusters that enforce exactly those Roles."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from bot.cluster import access
from sandbox.kube import KubeEmulator
from sandbox.kube.rbac import load_rules
from sandbox.prometheus import PrometheusServer
from sandbox.slack import SlackEmulator

ROOT = Path(__file__).resolve().parents[2]
ROLE = yaml.safe_load((ROOT / "manifests" / "bot" / "role.yaml").read_text())
CATALOGUE = """
services:
  - name: helloworld
    environments:
      - {name: staging, context: staging, namespace: hello}
      - {name: production, context: production, namespace: hello}
  - name: payments
    environments:
      - {name: staging, context: staging, namespace: payments}
    deployments: {stable: helloworld, canary: helloworld-canary}
    mappings: {stable: helloworld, canary: helloworld-canary}
    certificate: helloworld-tls
"""


def run_bot(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_", "PROMETHEUS", "KUBECONFIG"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


def without_state(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for rule in rules if rule["resources"] not in (["configmaps"], ["leases"])]


def test_the_verbs_check_asks_about_are_exactly_the_role_file_s() -> None:
    granted = {(group, resource, verb) for rule in ROLE["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert {(p.group, p.resource, p.verb) for p in access.REQUIRED} == granted
    assert len(access.REQUIRED) == len(set(access.REQUIRED)) == 36
    assert {p.resource for p in access.STATE} == {"configmaps", "leases"}


def test_rbac_prints_one_role_and_binding_per_namespace_grouped_by_cluster(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(CATALOGUE)
    result = run_bot(["rbac"], {"HELLO_SERVICES": str(tmp_path / "services.yaml")})
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    roles = [d for d in docs if d["kind"] == "Role"]
    # the home namespace (HELLO_NAMESPACE, the bot's own cluster) keeps the state: role.yaml as it is;
    # each namespace of the services gets the rest, once per cluster (staging holds two)
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in roles] == [
        ("hello", "hello-chatops"), ("hello", "hello-chatops-service"), ("payments", "hello-chatops-service"),
        ("hello", "hello-chatops-service")]
    assert [d["kind"] for d in docs] == ["Role", "RoleBinding"] * 4
    assert roles[0]["rules"] == ROLE["rules"] and roles[0]["metadata"]["labels"] == ROLE["metadata"]["labels"]
    assert all(role["rules"] == without_state(ROLE["rules"]) for role in roles[1:])
    assert len(without_state(ROLE["rules"])) == len(ROLE["rules"]) - 2
    for role in roles:  # every service namespace may be driven by either router
        routes = {(g, r, tuple(rule["verbs"])) for rule in role["rules"] for g in rule["apiGroups"]
                  for r in rule["resources"]}
        assert {("gateway.networking.k8s.io", "httproutes", ("get", "list", "watch", "patch")),
                ("getambassador.io", "mappings", ("get", "list", "watch", "patch"))} <= routes
    for role, binding in zip(docs[::2], docs[1::2], strict=True):
        assert binding["metadata"] == role["metadata"]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": role["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hello-chatops", "namespace": "hello"}]
    comments = [line for line in result.stdout.splitlines() if line.startswith("# Cluster:")]
    assert comments == [
        "# Cluster: the bot's own cluster (in-cluster, or the kubeconfig's current context). "
        "Apply: python -m bot rbac --context in-cluster | kubectl apply -f -",
        "# Cluster: kubeconfig context staging. "
        "Apply: python -m bot rbac --context staging | kubectl --context staging apply -f -",
        "# Cluster: kubeconfig context production. "
        "Apply: python -m bot rbac --context production | kubectl --context production apply -f -",
    ]

    one = run_bot(["rbac", "--context", "production"], {"HELLO_SERVICES": str(tmp_path / "services.yaml")})
    assert [(d["kind"], d["metadata"]["namespace"]) for d in yaml.safe_load_all(one.stdout) if d] == [
        ("Role", "hello"), ("RoleBinding", "hello")]
    wrong = run_bot(["rbac", "--context", "prod"], {"HELLO_SERVICES": str(tmp_path / "services.yaml")})
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert "no namespace of the catalogue is in cluster 'prod'; clusters: in-cluster, production, staging" in (
        wrong.stderr)


def test_without_a_catalogue_the_one_role_is_role_yaml_in_hello_namespace(tmp_path: Path) -> None:
    result = run_bot(["rbac"], {"HELLO_NAMESPACE": "shop", "HELLO_KUBE_CONTEXT": "prod"})
    assert result.returncode == 0, result.stderr
    role, binding = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    assert (role["kind"], role["metadata"]["namespace"], role["rules"]) == ("Role", "shop", ROLE["rules"])
    assert binding["subjects"][0]["namespace"] == "hello"  # the ServiceAccount stays where the bot runs
    assert "kubectl --context prod apply -f -" in result.stdout


def _copy_into(emu: KubeEmulator, namespace: str) -> None:
    """helloworld's Deployments, Mappings and Certificate, again in another namespace."""
    emu.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for group, version, resource, names in (("apps", "v1", "deployments", ("helloworld", "helloworld-canary")),
                                            ("getambassador.io", "v3alpha1", "mappings",
                                             ("helloworld", "helloworld-canary")),
                                            ("cert-manager.io", "v1", "certificates", ("helloworld-tls",))):
        for name in names:
            obj = emu.get(group, version, resource, "hello", name)
            assert obj is not None
            emu.apply({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "spec": obj["spec"],
                       "metadata": {"name": name, "namespace": namespace, "labels": obj["metadata"].get("labels")}})


async def test_check_passes_against_clusters_enforcing_the_generated_roles(tmp_path: Path) -> None:
    services = tmp_path / "services.yaml"
    services.write_text(CATALOGUE)
    parts = {}
    for context in ("in-cluster", "staging", "production"):
        printed = await asyncio.to_thread(run_bot, ["rbac", "--context", context], {"HELLO_SERVICES": str(services)})
        parts[context] = tmp_path / f"roles-{context}.yaml"
        parts[context].write_text(printed.stdout)
    # the bot's own cluster is the current context, staging: it enforces both parts there
    async with (SlackEmulator(signing_secret="s", bot_token="xoxb-check") as slack,
                KubeEmulator(tick=0.05, rbac_files=(parts["in-cluster"], parts["staging"])) as staging,
                KubeEmulator(tick=0.05, rbac_files=(parts["production"],)) as production,
                PrometheusServer(scrape_interval="1s") as prom):
        for emulator in (staging, production):
            emulator.seed(ROOT / "manifests")
        _copy_into(staging, "payments")
        env = {"SLACK_BOT_TOKEN": "xoxb-check", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack.api_url,
               "KUBECONFIG": str(_two_contexts(tmp_path, staging, production)), "PROMETHEUS_URL": prom.url,
               "PROMETHEUS_TIMEOUT": "5", "HELLO_SERVICES": str(services)}
        result = await asyncio.to_thread(run_bot, ["check"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert [line.split()[:2] for line in result.stdout.splitlines()] == [
            ["configuration", "ok"], ["slack", "ok"], ["helloworld/staging", "ok"], ["helloworld/production", "ok"],
            ["payments/staging", "ok"], ["state", "ok"]]

        # the same cluster with only staging's part and without the payments namespace's Role: the state and
        # that service fail, each naming its namespace; helloworld keeps what it needs in hello
        staging.rbac.rules = [rule for rule in load_rules([parts["staging"]])[0] if rule.namespace != "payments"]
        result = await asyncio.to_thread(run_bot, ["check"], env)
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert result.returncode == 1
    assert lines["helloworld/staging"].split()[1] == "ok"
    assert lines["state"].split(None, 2)[1:] == ["failed", (
        "kubernetes failed: cannot get configmaps, list configmaps, watch configmaps, create configmaps, "
        "update configmaps, delete configmaps, get leases, create leases, update leases in namespace hello")]
    assert lines["payments/staging"].split()[1] == "failed"
    assert ("cannot get deployments, list deployments, watch deployments, patch deployments, patch deployments/scale, "
            "list replicasets, list pods, list events, watch events, create events, get jobs, list jobs, create jobs, "
            "delete jobs, get pods/log, get mappings, list mappings, watch mappings, patch mappings, get certificates, "
            "list certificates, watch certificates, patch certificates/status in namespace payments"
            ) in lines["payments/staging"]
    assert "deployments failing since" in lines["payments/staging"]  # and the watches say so


def _two_contexts(tmp_path: Path, staging: KubeEmulator, production: KubeEmulator) -> Path:
    """One kubeconfig with a context per cluster, each with the bot's token (the one the Roles bind)."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "staging",
                              "clusters": [], "users": [], "contexts": []}
    for name, emulator in (("staging", staging), ("production", production)):
        part = yaml.safe_load(emulator.write_kubeconfig(tmp_path / f"{name}.kubeconfig", context=name,
                                                        token="bot-token").read_text())
        for key in ("clusters", "users", "contexts"):
            merged[key].extend(part[key])
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(merged))
    return path
