"""The sandbox's Prometheus: missing binary, generated configuration, configuration checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sandbox.prometheus import (
    PrometheusConfigError,
    PrometheusNotInstalled,
    PrometheusServer,
    check_config,
    find_binary,
)


def test_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrometheusNotInstalled, match=r"apt-get install prometheus"):
        find_binary()
    with pytest.raises(PrometheusNotInstalled, match=r"apt-get install prometheus"):
        PrometheusServer().start_blocking()


def test_generated_configuration_and_targets_file() -> None:
    server = PrometheusServer(scrape_interval="2s", evaluation_interval="3s")
    try:
        config = server.config()
        assert config["global"]["scrape_interval"] == "2s"
        assert config["global"]["evaluation_interval"] == "3s"
        [job] = config["scrape_configs"]
        assert job["file_sd_configs"][0]["files"] == [str(server.targets_file)]
        server.set_targets([("127.0.0.1:8001", {"track": "stable"}), ("127.0.0.1:8002", {})])
        assert json.loads(server.targets_file.read_text()) == [
            {"targets": ["127.0.0.1:8001"], "labels": {"track": "stable"}},
            {"targets": ["127.0.0.1:8002"], "labels": {}},
        ]
        assert [p.name for p in server.directory.iterdir()] == ["targets.json"]  # no temp files left
    finally:
        server.stop()


@pytest.mark.prometheus
async def test_start_stop_and_url() -> None:
    async with PrometheusServer() as server:
        assert server.running and server.url.startswith("http://127.0.0.1:")
        directory = server.directory
    assert not server.running and not directory.exists()
    with pytest.raises(RuntimeError, match="not started"):
        _ = PrometheusServer().url


@pytest.mark.prometheus
@pytest.mark.parametrize("use_promtool", [True, False])
def test_check_config_both_ways(tmp_path: Path, use_promtool: bool) -> None:
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump({"global": {"scrape_interval": "5s"}, "scrape_configs": [
        {"job_name": "x", "static_configs": [{"targets": ["127.0.0.1:9"]}]}]}))
    assert check_config(good, use_promtool=use_promtool)
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"global": {"scrape_interval": "soon"}}))
    with pytest.raises(PrometheusConfigError, match="soon"):
        check_config(bad, use_promtool=use_promtool)
