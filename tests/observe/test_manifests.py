"""The monitoring manifests: dashboard = the bot's queries, ServiceMonitors vs. the CRD, prometheus.yml."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.core.config import Config, MetricNames
from bot.observe.prom import build_expressions
from sandbox.prometheus import PrometheusConfigError, check_config
from tests.crds import CRD_DIR, strict

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
CRDS = CRD_DIR


def _dashboard() -> dict:
    return json.loads((MONITORING / "dashboards" / "helloworld.json").read_text())


def _documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((MONITORING / name).read_text()) if d]


def test_dashboard_uid_is_the_bots_default() -> None:
    default = Config(slack_bot_token="", slack_signing_secret="")
    assert _dashboard()["uid"] == default.grafana_dashboard_uid == "helloworld"


def test_dashboard_panels_use_the_bots_expressions() -> None:
    expected = build_expressions(MetricNames(), window="$__rate_interval", version="$version")
    panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in _dashboard()["panels"]}
    assert panels == {
        "Requests per second": [expected["rate"]],
        "Success ratio (non-5xx)": [expected["success"]],
        "Latency": [expected["p50"], expected["p95"], expected["p99"]],
    }


def test_dashboard_has_the_version_variable() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    version = variables["version"]
    assert version["query"]["query"] == "label_values(helloworld_build_info, version)"
    assert version["includeAll"] and version["allValue"] == ".*"


def test_kustomization_generates_the_configmaps() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (MONITORING / resource).is_file(), resource
    generators = {g["name"]: g for g in kustomization["configMapGenerator"]}
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    dashboard = generators["helloworld-dashboard"]
    assert dashboard["options"]["labels"] == {"grafana_dashboard": "1"}
    for generator in generators.values():
        for file in generator["files"]:
            assert (MONITORING / file.split("=")[-1]).is_file(), file
    assert generators["prometheus-scrape-config"]["files"] == ["prometheus.yml"]
    assert generators["prometheus-rules"]["files"] == ["rules/helloworld-alerts.yaml"]
    assert generators["alertmanager-config"]["files"] == ["alertmanager.yml"]
    assert "prometheusrule.yaml" in kustomization["resources"]
    assert not any("example" in r for r in kustomization["resources"])  # the token Secret is made by hand


def test_servicemonitors_satisfy_the_crd_schema() -> None:
    crd_file = CRDS / "monitoring.coreos.com_servicemonitors.yaml"
    if not crd_file.is_file():
        pytest.skip(f"ServiceMonitor schema validation skipped: the CRDs are not beside the checkout ({CRDS})")
    crd = yaml.safe_load(crd_file.read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    monitors = {d["metadata"]["name"]: d for d in _documents("servicemonitors.yaml")}
    assert set(monitors) == {"helloworld", "emissary"}
    for monitor in monitors.values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
        jsonschema.validate(monitor, schema)
    assert monitors["helloworld"]["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    # the alerting rules select app="helloworld", as the annotation-based job labels the pods
    assert monitors["helloworld"]["spec"]["podTargetLabels"] == ["app", "track"]
    assert monitors["emissary"]["spec"]["endpoints"][0]["port"] == "ambassador-admin"
    assert monitors["emissary"]["spec"]["namespaceSelector"]["matchNames"] == ["emissary"]
    bad = json.loads(json.dumps(monitors["helloworld"]))
    bad["spec"]["endpoints"] = "http"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def _without_kubernetes_sd(config: dict, targets_file: Path) -> dict:
    for job in config["scrape_configs"]:
        job.pop("kubernetes_sd_configs")
        job["file_sd_configs"] = [{"files": [str(targets_file)]}]
    return config


def test_prometheus_config_is_annotation_based_and_has_the_emissary_job() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    pods = jobs["kubernetes-pods"]
    sources = [tuple(r.get("source_labels", ())) for r in pods["relabel_configs"]]
    for annotation in ("scrape", "path"):
        assert (f"__meta_kubernetes_pod_annotation_prometheus_io_{annotation}",) in sources
    assert ("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port") in sources
    emissary = jobs["emissary"]
    assert emissary["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["emissary"]}}]
    assert {"source_labels": ["__meta_kubernetes_pod_container_port_number"], "action": "keep",
            "regex": "8877"} in emissary["relabel_configs"]
    assert emissary["metrics_path"] == "/metrics"


@pytest.mark.prometheus
def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """``promtool check config``. Debian's build leaves Kubernetes discovery out: when its promtool
    refuses exactly that field, the rest of the file (globals, jobs, relabelling) is checked with the
    Kubernetes discovery swapped for file discovery."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus ships it)")
    original = MONITORING / "prometheus.yml"
    try:
        output = check_config(original, use_promtool=True)
    except PrometheusConfigError as exc:
        complaints = [line for line in str(exc).splitlines() if "line " in line]
        assert complaints and all("field kubernetes_sd_configs not found" in c for c in complaints), str(exc)
        swapped = tmp_path / "prometheus.yml"
        config = _without_kubernetes_sd(yaml.safe_load(original.read_text()), tmp_path / "targets.json")
        swapped.write_text(yaml.safe_dump(config))
        output = check_config(swapped, use_promtool=True)
    assert "SUCCESS" in output


def test_prometheusrule_satisfies_the_crd_schema() -> None:
    crd_file = CRDS / "monitoring.coreos.com_prometheusrules.yaml"
    if not crd_file.is_file():
        pytest.skip(
            f"PrometheusRule schema validation skipped: its CRD is not beside the checkout ({CRDS}); upstream "
            "it is prometheus-operator/prometheus-operator "
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"
        )
    crd = yaml.safe_load(crd_file.read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    # Draft 4 without checking the schema itself: a pattern in it is a Go regex ("^(?i)...").
    validator = jsonschema.Draft4Validator(strict(schema))
    (rule,) = _documents("prometheusrule.yaml")
    validator.validate(rule)
    typo = json.loads(json.dumps(rule))
    typo["spec"]["groups"][0]["rules"][0]["exprr"] = typo["spec"]["groups"][0]["rules"][0].pop("expr")
    with pytest.raises(jsonschema.ValidationError, match="exprr"):
        validator.validate(typo)


def test_prometheus_config_loads_the_rules_configmap_and_names_an_alertmanager() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    [pattern] = config["rule_files"]
    # the ConfigMap's key is the rules file's name; mounted in the folder of the pattern, it matches it
    assert Path(pattern).parent == Path("/etc/prometheus/rules")
    assert Path("helloworld-alerts.yaml").match(Path(pattern).name)
    [alertmanager] = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"][0]["targets"]


def test_alertmanager_config_sends_helloworlds_alerts_to_the_bot_with_the_token() -> None:
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    [route] = config["route"]["routes"]
    assert route["matchers"] == ['namespace="hello"'] and route["receiver"] == "hello-chatops"
    receivers = {r["name"]: r for r in config["receivers"]}
    [webhook] = receivers["hello-chatops"]["webhook_configs"]
    assert webhook["url"] == "http://hello-chatops.hello.svc/alertmanager" and webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"] == {
        "type": "Bearer", "credentials_file": "/etc/alertmanager/secrets/hello-alert-token/token"}
    (secret,) = _documents("hello-alert-token.example.yaml")
    assert secret["metadata"]["name"] == "hello-alert-token" and set(secret["stringData"]) == {"token"}
    assert secret["stringData"]["token"] == ""  # never a real token in the repository


@pytest.mark.prometheus
def test_alertmanager_config_passes_amtool() -> None:
    if shutil.which("amtool") is None:
        pytest.skip("amtool is not installed (Debian package prometheus-alertmanager ships it)")
    done = subprocess.run(["amtool", "check-config", str(MONITORING / "alertmanager.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
