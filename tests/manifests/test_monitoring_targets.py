"""The monitoring manifests select the helloworld objects that actually exist."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2] / "manifests"


def docs(folder: str) -> list[dict]:
    out: list[dict] = []
    for path in sorted((ROOT / folder).glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def test_service_monitor_selects_both_helloworld_services_by_a_named_port() -> None:
    (monitor,) = [d for d in docs("monitoring") if d["kind"] == "ServiceMonitor"
                  and d["metadata"]["name"].startswith("helloworld")]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    port = monitor["spec"]["endpoints"][0]["port"]
    services = [d for d in docs("helloworld") if d["kind"] == "Service"]
    selected = [s for s in services if wanted.items() <= s["metadata"].get("labels", {}).items()]
    assert {s["metadata"]["name"] for s in selected} == {"helloworld", "helloworld-canary"}
    for service in selected:
        assert port in [p.get("name") for p in service["spec"]["ports"]]


def test_pods_carry_the_scrape_annotations_prometheus_reads() -> None:
    for deploy in (d for d in docs("helloworld") if d["kind"] == "Deployment"):
        notes = deploy["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        assert notes["prometheus.io/path"] == "/metrics"
        assert notes["prometheus.io/port"] == "8080"
