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

import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aloe_core.atomic import atomic_write_bytes
from aloe_core.storage import cache_root

logger = logging.getLogger(__name__)


def derived_dir() -> Path:
    """The folder of derived entries (``$ALOE_CACHE_DIR/derived`` or ``~/.cache/aloe/derived``)."""
    return cache_root() / "derived"


def cached_text(name: str, derive: Callable[[], str]) -> str:
    """The text ``derive()`` gives, from ``derived/<name>.json`` when an earlier process saved it.

    ``name`` must say everything the text depends on (versions included): it is the only key. The text
    is stored as a JSON string so that a damaged entry fails to parse instead of being used.
    """
    path = derived_dir() / f"{name}.json"
    try:
        text = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(text, str):
            return text
    except (OSError, ValueError):
        pass  # absent or unreadable: derive it again
    text = derive()
    _write(path, json.dumps(text).encode("utf-8"))
    return text


def cached_file(name: str, derive: Callable[[], bytes]) -> Path | None:
    """``derived/<name>``, written from ``derive()`` when absent; None when the cache folder cannot be
    written (the caller derives in memory instead)."""
    path = derived_dir() / name
    if path.is_file() or _write(path, derive()):
        return path
    return None


def cached_arrays(name: str, derive: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays ``derive()`` gives, from ``derived/<name>/`` when an earlier process saved them.

    ``name`` must say everything the arrays depend on (it is the only key). Each array is one ``.npy``
    file, mapped copy-on-write (``mmap_mode="c"``: writable arrays, which numba kernels take as they
    take any other, and pages read from the page cache only as they are touched, so a worker loading
    langid's 51 MB of tables pays no copy), never unpickled (``allow_pickle=False``: strings go as
    numpy unicode arrays). ``index.json``, written last, lists the files; an entry without it, or with
    a file that cannot be read, is derived again and rewritten.
    """
    folder = derived_dir() / name
    if (folder / "index.json").is_file():  # else absent, or a writer was killed before its index
        try:
            keys = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            return {key: _mapped(folder / f"{key}.npy") for key in keys}
        except (OSError, ValueError, TypeError) as exc:  # damaged: derive it again
            logger.warning("derived cache entry %s unreadable (%s); deriving it again", folder, exc)
    arrays = derive()
    for key, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        if not _write(folder / f"{key}.npy", buffer.getvalue()):
            return arrays
    _write(folder / "index.json", json.dumps(list(arrays)).encode("utf-8"))
    return arrays


def _mapped(path: Path) -> np.ndarray:
    """A plain (writable, copy-on-write) ndarray over the ``.npy`` file's pages."""
    return np.asarray(np.load(path, mmap_mode="c", allow_pickle=False))


STALE_SECONDS = 3600  # far longer than writing any entry takes (langid's model: under a second)


def _write(path: Path, data: bytes) -> bool:
    """Write an entry with :func:`aloe_core.atomic.atomic_write_bytes`; False if the folder is not writable.

    Workers on one machine may write the same entry at once: each writes its own temporary sibling and
    the last rename wins (the contents are the same). So a temporary file is only taken for a killed
    writer's debris once it is older than :data:`STALE_SECONDS` (``remove_debris`` assumes one writer).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_SECONDS:
                    tmp.unlink()
            except OSError:
                pass  # another worker removed or renamed it first
        atomic_write_bytes(path, data)
    except OSError as exc:
        logger.debug("derived cache %s not written (%s); deriving it in every process", path, exc)
        return False
    return True
