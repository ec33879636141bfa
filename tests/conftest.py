"""Fixtures every test folder may use: catalogue files and kubeconfigs in the test's temporary folder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from sandbox.kube import KubeEmulator
from tests.catalogues import write_catalogue, write_kubeconfig


@pytest.fixture
def catalogue_file(tmp_path: Path) -> Callable[[dict[str, Any] | str], Path]:
    """``catalogue_file(data) -> Path``: ``data`` (see tests/catalogues.py, or YAML text) as services.yaml."""
    return lambda data: write_catalogue(tmp_path / "services.yaml", data)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Callable[..., Path]:
    """``kubeconfig(clusters, token=None, current=None) -> Path``: one kubeconfig with a context per emulated
    cluster, named by the keys of ``clusters`` (the first is the current context unless ``current`` says)."""

    def write(clusters: Mapping[str, KubeEmulator], *, token: str | None = None, current: str | None = None) -> Path:
        return write_kubeconfig(tmp_path / "kubeconfig", clusters, token=token, current=current)

    return write
