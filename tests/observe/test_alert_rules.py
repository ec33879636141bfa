"""helloworld's alerting rules: `promtool check rules` / `promtool test rules`, the PrometheusRule
equal to the rules file, the labels every alert carries, and the sandbox's shortened copy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.core.config import MetricNames
from sandbox.prometheus import (
    RULES_FILE,
    RULES_OBJECTIVE,
    SERVICE_TARGET_LABELS,
    PrometheusServer,
    duration_seconds,
    shortened_rules,
)

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
UNIT_TESTS = Path(__file__).resolve().parent / "rules" / "helloworld-alerts.test.yaml"

ALERTS = {
    "HelloworldErrorBudgetFastBurn": ("critical", "2m"),
    "HelloworldErrorBudgetSlowBurn": ("warning", "15m"),
    "HelloworldLatencyP99High": ("warning", "10m"),
    "HelloworldTargetDown": ("critical", "5m"),
}


def _promtool(*args: str, cwd: Path | None = None) -> str:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus ships it)")
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    return output


def _rules(path: Path = RULES_FILE) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def _alerts(path: Path = RULES_FILE) -> dict[str, dict]:
    return {rule["alert"]: rule for rule in _rules(path) if "alert" in rule}


def test_the_prometheusrule_holds_the_rules_files_groups() -> None:
    (rule,) = [d for d in yaml.safe_load_all((MONITORING / "prometheusrule.yaml").read_text()) if d]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]


def test_every_alert_names_the_service_with_a_severity_and_says_what_happened() -> None:
    alerts = _alerts()
    assert {name: (a["labels"]["severity"], a["for"]) for name, a in alerts.items()} == ALERTS
    for name, alert in alerts.items():
        assert alert["labels"]["namespace"] == "hello" and alert["labels"]["service"] == "helloworld", name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name


def test_the_expressions_select_what_prometheus_really_scrapes() -> None:
    """The target labels the rules select on are those the sandbox gives its targets; requests are
    the API routes the bot's canary analysis reads; the thresholds are the multi-window burn rates."""
    rules = _rules()
    selector = ", ".join(f'{k}="{v}"' for k, v in SERVICE_TARGET_LABELS.items())
    for rule in rules:
        for metric in re.findall(r"\b(helloworld_\w+|up)\{", rule["expr"]):
            assert f"{metric}{{{selector}" in rule["expr"], (rule.get("record") or rule["alert"], metric)
        if "helloworld_request" in rule["expr"]:
            assert MetricNames().route_filter in rule["expr"]
    alerts = _alerts()
    budget = f"(1 - {RULES_OBJECTIVE})"
    assert " ".join(alerts["HelloworldErrorBudgetFastBurn"]["expr"].split()) == (
        f"helloworld:request_errors:ratio_rate1h > (14.4 * {budget}) and "
        f"helloworld:request_errors:ratio_rate5m > (14.4 * {budget})"
    )
    assert " ".join(alerts["HelloworldErrorBudgetSlowBurn"]["expr"].split()) == (
        f"helloworld:request_errors:ratio_rate6h > (6 * {budget}) and "
        f"helloworld:request_errors:ratio_rate30m > (6 * {budget})"
    )
    assert alerts["HelloworldLatencyP99High"]["expr"] == "helloworld:request_duration_seconds:p99_rate5m > 0.5"
    assert alerts["HelloworldTargetDown"]["expr"] == f"up{{{selector}}} == 0"


@pytest.mark.prometheus
def test_promtool_checks_the_rules_file_and_the_prometheusrule(tmp_path: Path) -> None:
    assert "SUCCESS: 9 rules found" in _promtool("check", "rules", str(RULES_FILE))
    (rule,) = [d for d in yaml.safe_load_all((MONITORING / "prometheusrule.yaml").read_text()) if d]
    extracted = tmp_path / "prometheusrule-groups.yaml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS: 9 rules found" in _promtool("check", "rules", str(extracted))


@pytest.mark.prometheus
def test_promtool_unit_tests_fast_burn_slow_burn_healthy_targets_down_latency() -> None:
    tests = {t["name"] for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"]}
    assert tests == {"fast burn", "slow burn", "healthy traffic fires nothing", "targets down", "latency"}
    assert "SUCCESS" in _promtool("test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)


@pytest.mark.prometheus
def test_promtool_unit_tests_catch_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests are not vacuous: expecting the fast burn one evaluation earlier fails."""
    text = UNIT_TESTS.read_text().replace("../../../manifests/", f"{ROOT}/manifests/")
    broken = text.replace("- eval_time: 4m\n        alertname: HelloworldErrorBudgetFastBurn",
                          "- eval_time: 2m\n        alertname: HelloworldErrorBudgetFastBurn", 1)
    assert broken != text
    copy = tmp_path / "broken.test.yaml"
    copy.write_text(broken)
    done = subprocess.run(["promtool", "test", "rules", str(copy)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0 and "HelloworldErrorBudgetFastBurn" in done.stdout + done.stderr


def test_durations() -> None:
    assert [duration_seconds(t) for t in ("5s", "2m", "1h30m", "500ms")] == [5, 120, 5400, 0.5]
    with pytest.raises(ValueError, match="duration"):
        duration_seconds("soon")


def test_shortened_rules_cap_every_for_and_keep_the_rest(tmp_path: Path) -> None:
    short = shortened_rules(tmp_path / "rules.yaml", max_for="3s")
    original, copied = _rules(), _rules(short)
    assert [r.get("for") for r in copied if "alert" in r] == ["3s"] * len(ALERTS)
    for before, after in zip(original, copied, strict=True):
        assert {k: v for k, v in before.items() if k != "for"} == {k: v for k, v in after.items() if k != "for"}
    longer = shortened_rules(tmp_path / "long.yaml", max_for="1h")
    assert [r.get("for") for r in _rules(longer) if "alert" in r] == [f for _, f in ALERTS.values()]


def test_shortened_rules_with_another_objective(tmp_path: Path) -> None:
    alerts = _alerts(shortened_rules(tmp_path / "rules.yaml", objective=0.995))
    assert "(14.4 * (1 - 0.995))" in alerts["HelloworldErrorBudgetFastBurn"]["expr"]
    assert "(6 * (1 - 0.995))" in alerts["HelloworldErrorBudgetSlowBurn"]["expr"]
    assert "99.5% availability SLO" in alerts["HelloworldErrorBudgetFastBurn"]["annotations"]["description"]
    assert "0.999" not in (tmp_path / "rules.yaml").read_text()
    with pytest.raises(ValueError, match="ratio"):
        shortened_rules(tmp_path / "bad.yaml", objective=99.5)


def test_prometheus_config_with_rules_alertmanagers_and_target_labels(tmp_path: Path) -> None:
    server = PrometheusServer(
        evaluation_interval="1s", rule_files=[RULES_FILE], alertmanagers=["http://127.0.0.1:9093"],
        target_labels=SERVICE_TARGET_LABELS,
    )
    try:
        config = server.config()
        assert config["rule_files"] == [str(RULES_FILE)]
        assert config["alerting"] == {"alertmanagers": [
            {"scheme": "http", "static_configs": [{"targets": ["127.0.0.1:9093"]}], "api_version": "v2"}]}
        server.set_targets([("127.0.0.1:8001", {"track": "stable"})])
        assert yaml.safe_load(server.targets_file.read_text()) == [
            {"targets": ["127.0.0.1:8001"], "labels": {"namespace": "hello", "app": "helloworld", "track": "stable"}}]
        assert "rule_files" not in PrometheusServer().config() and "alerting" not in PrometheusServer().config()
    finally:
        server.stop()
