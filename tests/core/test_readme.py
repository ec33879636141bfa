"""The README stays true: its two commands, every environment variable, every sub-command."""

from __future__ import annotations

import re
from pathlib import Path

from bot.core.config import ENV_VARS
from commands import default_registry

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
OTHER_VARS = ("HELLO_SANDBOX_RPS", "HELLO_SANDBOX_MANIFESTS", "HELLO_VERSION", "HELLO_DRAIN_SECONDS",
              "HELLO_METRICS", "HELLO_FAULT_ERROR_RATE", "HELLO_FAULT_LATENCY_MS", "PROMETHEUS_MULTIPROC_DIR")


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block and README.index(block.group(0)) < 200
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./dev.sh sandbox", "./dev.sh test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec ./dev.sh test")


def test_every_environment_variable_is_documented() -> None:
    for name in (*ENV_VARS, *OTHER_VARS):
        assert f"`{name}`" in README, f"{name} is not documented in the README"


def test_every_sub_command_is_in_the_command_reference() -> None:
    for command in default_registry():
        assert f"`/hello {command.name}" in README, command.name


def test_procfile_and_readme_agree_on_the_start_command() -> None:
    web = (ROOT / "Procfile").read_text().split(":", 1)[1].strip()
    assert web == "python -m bot serve --port $PORT"
    assert "python -m bot serve [--port N]" in README
