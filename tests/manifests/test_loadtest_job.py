"""The load Job's template in manifests/ is the Job the bot creates (bot.release.load), so what an operator
reads there is true; test_schemas.py validates it against Kubernetes' own schema (it is an example file)."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.core.config import Config
from bot.release import load

TEMPLATE = Path(__file__).resolve().parents[2] / "manifests" / "bot" / "loadtest-job.example.yaml"
OWNER = {"metadata": {"name": "hello-chatops-state-request-r1a2b3c", "uid": "00000000-0000-0000-0000-000000000000"}}


def test_the_template_is_the_job_the_bot_creates() -> None:
    [template] = [doc for doc in yaml.safe_load_all(TEMPLATE.read_text()) if doc]
    config = Config(slack_bot_token="xoxb-test", slack_signing_secret="s", namespace="hello")
    made = load.job_manifest(config, "r1a2b3c", "canary", rps=20, seconds=30, path="/v1/hello", owner=OWNER)
    assert template == made


def test_the_template_runs_hey_once_within_a_deadline() -> None:
    [template] = [doc for doc in yaml.safe_load_all(TEMPLATE.read_text()) if doc]
    spec = template["spec"]
    [container] = spec["template"]["spec"]["containers"]
    assert container["command"][0] == "hey" and container["command"][1:3] == ["-z", "30s"]
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 30 + load.GRACE_SECONDS
    assert template["metadata"]["ownerReferences"][0]["kind"] == "ConfigMap"
