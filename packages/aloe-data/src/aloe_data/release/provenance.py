"""Where a release came from: the code that made it, and the checksums of every file it holds."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from aloe_data import __version__
from aloe_data.pipeline.writer import sha256_file


def code_version() -> dict[str, Any]:
    """aloe-data's version, plus the git commit (and whether the tree had changes) when run from a
    checkout; an installed wheel has no commit."""
    version: dict[str, Any] = {"aloe_data": __version__}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return version
    return version | {"commit": commit, "dirty": bool(status.strip())}


def file_digests(root: Path, skip: set[str]) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, bytes}} of every file under ``root`` except ``skip``, sorted by path."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if name not in skip:
            out[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out
