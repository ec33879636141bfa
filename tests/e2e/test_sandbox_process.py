"""`python -m bot sandbox` starts every part, says where they are, and leaves nothing behind when stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PARTS = ("console", "Kubernetes API", "Slack API", "bot", "HAProxy")
ROOT = Path(__file__).resolve().parents[2]


def haproxy() -> str:
    """The haproxy binary (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        pytest.fail("the haproxy binary is not installed: `./dev.sh setup` installs it (apt-get install haproxy)")
    return found


def test_sandbox_starts_reports_and_stops_on_ctrl_c_without_orphans(launch_sandbox, tools) -> None:
    signum = signal.SIGINT
    proc = launch_sandbox()
    try:
        for part in PARTS:
            assert proc.part_url(part).startswith("http://127.0.0.1:"), f"{part} missing from:\n{proc.output}"
        assert proc.part_url("console") == proc.url
        assert "kubeconfig" in proc.output
        if shutil.which("prometheus"):
            assert proc.part_url("Prometheus"), proc.output
        config = tools.get_json(f"{proc.url}/api/config")
        assert {u["id"]: u["role"] for u in config["users"]} == {  # type: ignore[index]
            "U1": "deployer", "U2": "approver", "U3": "no rights"}

        children = tools.wait_until(
            lambda: (kids := tools.descendants(proc.process.pid))
            and sum("helloworld" in cmd for cmd in kids.values()) >= 1 and kids,
            20, "a helloworld process started by the sandbox",
        )
        if shutil.which("prometheus"):
            assert any("prometheus" in cmd for cmd in children.values()), children
        assert any("haproxy" in cmd for cmd in children.values()), children
        code = proc.stop(signum)
    finally:
        if proc.process.poll() is None:
            proc.stop(signal.SIGKILL)
    assert code == 0, proc.output
    assert "sandbox stopped" in proc.output
    left = {pid: cmd for pid, cmd in children.items() if tools.alive(pid)}
    assert not left, f"processes left running after {signal.Signals(signum).name}: {left}"


def test_without_prometheus_it_says_how_to_install_it_runs_on_and_stops_on_sigterm(launch_sandbox, tools,
                                                                                    tmp_path: Path) -> None:
    (tmp_path / "haproxy").symlink_to(haproxy())
    proc = launch_sandbox(env={"PATH": str(tmp_path)})  # haproxy, and no prometheus binary to be found
    assert "-- Prometheus" in proc.output and "apt-get install prometheus" in proc.output, proc.output
    assert "without charts" in proc.output
    assert proc.part_url("console") and proc.part_url("bot"), proc.output
    reply = tools.post_json(f"{proc.url}/api/command", {"user": "U1", "text": "/hello status"})
    assert reply == {"ok": True, "status": 200}
    state = tools.wait_until(
        lambda: (s := tools.get_json(f"{proc.url}/api/state")) and s["messages"]["C1"] and s,  # type: ignore[index]
        20, "the status message",
    )
    assert "helloworld" in json.dumps(state["messages"]["C1"][0]["blocks"])  # type: ignore[index]
    children = tools.descendants(proc.process.pid)
    assert any("helloworld" in cmd for cmd in children.values()), children
    assert proc.stop(signal.SIGTERM) == 0, proc.output
    left = {pid: cmd for pid, cmd in children.items() if tools.alive(pid)}
    assert not left, f"processes left running after SIGTERM: {left}"


def test_without_haproxy_it_says_how_to_install_it_and_starts_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELLO_", "SLACK_", "PROMETHEUS_"))}
    env["PATH"] = str(tmp_path)  # an empty folder: no haproxy to be found
    done = subprocess.run([sys.executable, "-m", "bot", "sandbox", "--port", "0"], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert "'haproxy' binary was not found" in done.stderr and "apt-get install haproxy" in done.stderr, done.stderr
    assert "ready in" not in done.stdout, done.stdout
