"""Atomic writes: readers (and a rerun after a kill) see the old content or the new, never a mix.

Files are written to a hidden temporary sibling (``.NAME.<random>.tmp``) and moved into place with
``os.replace``; folders are built in a hidden staging sibling (``.NAME.tmp-<random>``) and renamed into
place. Both names start with ``.NAME.`` so a later run can recognise its own debris.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp sibling, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the result should read like any other output file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (keys in insertion order, a trailing newline) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def staging_dir(target: str | Path) -> Path:
    """A fresh hidden folder beside ``target`` to build its content in before :func:`publish_dir`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))


def publish_dir(staging: str | Path, target: str | Path) -> Path:
    """Move the finished ``staging`` folder to ``target``, replacing an existing folder with two renames
    (so ``target`` is never half-written), and make it readable like any other output folder (mkdtemp
    creates 0700 folders)."""
    staging, target = Path(staging), Path(target)
    staging.chmod(0o755)
    for path in staging.iterdir():
        if path.is_file():
            path.chmod(0o644)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old)
    return target
