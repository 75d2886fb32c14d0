"""Values a worker derives the same way every time, kept on disk so the next worker process loads them.

Every Ray worker that runs ``clean`` used to rebuild the same things before its first batch: RE2 classes
from Python's Unicode tables (0.31 s for NFC's, a walk over all 1.1M code points) and langid.py's
model, which ships as an xz-compressed ``.npz`` (0.69 s to decompress and load, 0.20 s from the
decompressed file). On 2 CPUs both workers paid that inside the stage, which is much of why a second
core did not halve clean's time.

Entries live under :func:`aloe_core.storage.cache_root` ``/derived/``, named by what they were derived
from (Python's Unicode version; the model file's size and mtime), written atomically, and read back only
as JSON text or as an ``.npz`` loaded with ``allow_pickle=False``. The cache is an optimisation, never
a source of truth: an entry that cannot be read is derived again and rewritten, and a cache folder that
cannot be written (a read-only home) just means deriving each time.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aloe_core.atomic import atomic_write_text
from aloe_core.storage import cache_root

logger = logging.getLogger(__name__)


def derived_dir() -> Path:
    """The folder of derived entries (``$ALOE_CACHE_DIR/derived`` or ``~/.cache/aloe/derived``)."""
    return cache_root() / "derived"


def cached_text(name: str, derive: Callable[[], str]) -> str:
    """The text ``derive()`` gives, from ``derived/<name>.json`` when an earlier process saved it.

    ``name`` must say everything the text depends on (versions included): it is the only key.
    """
    path = derived_dir() / f"{name}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get("text"), str):
            return entry["text"]
    except (OSError, ValueError):
        pass  # absent or unreadable: derive it again
    text = derive()
    try:
        atomic_write_text(path, json.dumps({"name": name, "text": text}))
    except OSError as exc:
        logger.debug("derived cache %s not written (%s); deriving it in every process", path, exc)
    return text


def cached_file(name: str, produce: Callable[[Path], None]) -> Path | None:
    """``derived/<name>``, made by ``produce(tmp_path)`` (which writes the file) when absent, then
    renamed into place; None when the cache folder cannot be written (the caller derives instead).

    Workers on one machine may produce the same entry at once: each writes its own temporary file and
    the last rename wins (the contents are the same). Temporary files older than
    :data:`STALE_SECONDS` are what a killed producer left, and are removed here.
    """
    path = derived_dir() / name
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        logger.debug("derived cache %s not written (%s); deriving it in every process", path, exc)
        return None
    try:
        produce(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


STALE_SECONDS = 3600  # far longer than producing any entry takes (langid's model: under a second)


def _remove_stale_temporaries(path: Path) -> None:
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
        except OSError:
            pass  # another worker removed or renamed it first
