"""The sandbox's HAProxy on its own: a missing binary, names it refuses, its runtime API's refusals, its stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.haproxy import HAProxyError, HAProxyNotInstalled, HAProxyServer, parse_stat


def test_a_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HAProxyNotInstalled, match=r"apt-get install haproxy.*/usr/sbin"):
        HAProxyServer(["staging-helloworld"]).start_blocking()


@pytest.mark.parametrize("names", [[], ["staging helloworld"], ["ok", "a/b"], ["-x"]])
def test_backend_names_haproxy_could_misread_are_refused(names: list[str]) -> None:
    with pytest.raises(ValueError, match="backend names"):
        HAProxyServer(names)


def test_show_stat_csv_gives_each_servers_line() -> None:
    csv_text = ("# pxname,svname,status,weight,req_tot,hrsp_2xx,\n"
                "b,FRONTEND,OPEN,,12,12,\nb,stable,no check,75,9,9,\nb,canary,MAINT,0,3,2,\nb,BACKEND,UP,75,12,11,\n")
    stats = parse_stat(csv_text)
    assert [(s.server, s.status, s.weight, s.requests, s.ok) for s in stats] == [
        ("stable", "no check", 75, 9, 9), ("canary", "MAINT", 0, 3, 2)]


async def test_the_runtime_api_refusals_are_errors_and_change_nothing() -> None:
    async with HAProxyServer(["b"]) as proxy:
        with pytest.raises(HAProxyError, match="No such server"):
            await proxy.set_server("b", "mirror", weight=10)
        with pytest.raises(ValueError, match="0 to 256"):
            await proxy.set_server("b", "canary", weight=300)
        with pytest.raises(ValueError, match="one runtime API command"):
            await proxy.runtime("show stat; set server b/canary weight 1")
        await proxy.set_server("b", "canary", weight=7)
        assert await proxy.runtime("get weight b/canary") == "7 (initial 0)"
        assert {s.server: s.status for s in await proxy.stats()} == {"stable": "MAINT", "canary": "MAINT"}


def test_ports_reserved_by_others_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox reserves the console's and the bot's ports, which are bound after HAProxy starts."""
    offered = iter([5000, 5001, 5002, 5001, 5003, 5004])  # what the kernel's free ports happen to be
    monkeypatch.setattr("sandbox.haproxy.free_port", lambda: next(offered))
    proxy = HAProxyServer(["a", "b"], reserved=(5000, 5001))
    try:
        proxy.port = 5000  # the stats listener's port, as the daemon picked it
        argv = proxy.command("haproxy", 5000)
        assert proxy.port == 5002 and proxy.frontend_ports == {"a": 5003, "b": 5004}
        config = Path(argv[-1]).read_text(encoding="utf-8")
        assert [line.split()[1] for line in config.splitlines() if line.strip().startswith("bind")] == [
            "127.0.0.1:5002", "127.0.0.1:5003", "127.0.0.1:5004"]
    finally:
        proxy.stop()
