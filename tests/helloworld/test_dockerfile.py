"""helloworld/Dockerfile and requirements.txt facts (Docker itself cannot run in the test environment)."""

from __future__ import annotations

import re
from importlib.metadata import version

from packaging.requirements import Requirement

from .conftest import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "helloworld" / "Dockerfile").read_text()
REQUIREMENTS = PROJECT_ROOT / "helloworld" / "requirements.txt"


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    rows = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def _all(word: str) -> list[str]:
    return [rest for w, rest in _instructions() if w == word]


def test_base_image_is_a_pinned_slim_python() -> None:
    [base] = _all("FROM")
    assert re.fullmatch(r"python:3\.11-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base


def test_runs_as_a_non_root_user() -> None:
    users = _all("USER")
    assert users, "no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The last USER comes after every RUN, so nothing after it runs as root.
    words = [w for w, _ in _instructions()]
    assert max(i for i, w in enumerate(words) if w == "RUN") < max(i for i, w in enumerate(words) if w == "USER")


def test_exposes_8080_and_starts_the_service() -> None:
    assert _all("EXPOSE") == ["8080"]
    [cmd] = _all("CMD")
    assert cmd == '["python", "-m", "helloworld", "--host", "0.0.0.0", "--port", "8080"]'


def test_version_build_argument_becomes_hello_version() -> None:
    assert any(re.fullmatch(r"VERSION(=\S+)?", arg) for arg in _all("ARG"))
    assert any(re.search(r"\bHELLO_VERSION=\$\{?VERSION\}?", env) for env in _all("ENV"))
    words = [w for w, _ in _instructions()]
    assert words.index("ARG") < next(i for i, (w, r) in enumerate(_instructions()) if "HELLO_VERSION" in r)


def test_requirements_are_pinned_and_match_the_tested_environment() -> None:
    requirements = [
        Requirement(line)
        for line in (line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines())
        if line
    ]
    names = {r.name.lower().replace("_", "-") for r in requirements}
    assert {"sanic", "prometheus-client"} <= names
    for requirement in requirements:
        [spec] = requirement.specifier
        assert spec.operator == "==", requirement
        assert version(requirement.name) == spec.version, f"{requirement.name} installed != pinned"
    assert "requirements.txt" in " ".join(_all("COPY"))
    assert any("-r /app/requirements.txt" in run for run in _all("RUN"))
