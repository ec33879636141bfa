"""`python -m bot check` against the emulated Slack and Kubernetes and the real Prometheus."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import yaml

from sandbox.prometheus import PrometheusServer
from sandbox.stack import ROLE, Stack

ROOT = Path(__file__).resolve().parents[2]


async def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_", "PROMETHEUS", "KUBECONFIG"))}
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "check"], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )


async def test_check_reports_every_dependency_ok(tmp_path: Path) -> None:
    async with PrometheusServer(scrape_interval="1s") as prom, Stack(rbac=True, prometheus_url=prom.url) as stack:
        result = await run_check(stack.env())
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in lines] == ["configuration", "slack", "kubernetes", "prometheus"]
    assert all(line.split()[1] == "ok" for line in lines)
    assert "namespace hello" in lines[2] and "allowed all 32 verbs" in lines[2]
    assert "watches: certificates, deployments, events, mappings watching" in lines[2]


async def test_check_fails_naming_each_verb_the_role_does_not_grant(tmp_path: Path) -> None:
    role = yaml.safe_load(ROLE.read_text())
    role["rules"] = [rule for rule in role["rules"] if rule["resources"] != ["deployments/scale"]]
    for rule in role["rules"]:
        if rule["resources"] == ["configmaps"]:
            rule["verbs"].remove("delete")
    (tmp_path / "role.yaml").write_text(yaml.safe_dump(role))
    async with Stack(rbac=True, kube_options={"rbac_files": (tmp_path / "role.yaml",)}) as stack:
        result = await run_check(stack.env())
    assert result.returncode == 1
    kubernetes = next(line for line in result.stdout.splitlines() if line.startswith("kubernetes"))
    assert kubernetes.split(None, 2)[1:] == ["failed",
                                             "cannot patch deployments/scale, delete configmaps in namespace hello"]


async def test_check_fails_with_reasons_when_dependencies_are_down(tmp_path: Path) -> None:
    async with Stack() as stack:
        env = stack.env()
        env["SLACK_BOT_TOKEN"] = "xoxb-not-the-right-one"
        env["HELLO_NAMESPACE"] = "nowhere"
        env["PROMETHEUS_URL"] = "http://127.0.0.1:9"
        result = await run_check(env)
    assert result.returncode == 1
    out = result.stdout
    assert "slack          failed  Slack auth.test failed: invalid_auth" in out
    assert "kubernetes     failed  deployments/helloworld not found" in out
    assert "prometheus     failed" in out and "connection refused" in out
    assert "xoxb-not-the-right-one" not in out


async def test_check_refuses_bad_configuration() -> None:
    result = await run_check({"SLACK_SIGNING_SECRET": "s"})
    assert result.returncode == 1
    assert "configuration  failed  SLACK_BOT_TOKEN is required" in result.stdout


async def test_check_reports_a_watch_the_role_refuses(tmp_path: Path) -> None:
    role = yaml.safe_load(ROLE.read_text())
    for rule in role["rules"]:
        if rule["resources"] == ["events"]:
            rule["verbs"].remove("watch")
    (tmp_path / "role.yaml").write_text(yaml.safe_dump(role))
    async with Stack(rbac=True, kube_options={"rbac_files": (tmp_path / "role.yaml",)}) as stack:
        result = await run_check(stack.env())
    assert result.returncode == 1
    kubernetes = next(line for line in result.stdout.splitlines() if line.startswith("kubernetes"))
    assert "cannot watch events in namespace hello" in kubernetes
    assert ("watches: certificates, deployments, mappings watching; events failing since " in kubernetes
            and "(the bot is not allowed to watch events (403 Forbidden))" in kubernetes), kubernetes
