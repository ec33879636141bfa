"""The Debian tools the benches drive (wrk, nginx), installed with apt-get when missing, as ./dev.sh does."""

from __future__ import annotations

import os
import shutil
import subprocess

_UPDATED: list[bool] = []


def ensure(command: str, package: str, *, also: tuple[str, ...] = ()) -> str:
    """The path of ``command``; when it is missing, ``apt-get install package`` first (one ``apt-get update``
    per run). ``also``: other places the package puts it (nginx lives in /usr/sbin, off a user's PATH)."""
    found = shutil.which(command) or next((p for p in also if os.access(p, os.X_OK)), None)
    if found:
        return found
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    if not _UPDATED:
        subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True)
        _UPDATED.append(True)
    subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which(command) or next((p for p in also if os.access(p, os.X_OK)), None)
    if not found:
        raise RuntimeError(f"{package} is installed but `{command}` is not on PATH")
    return found
