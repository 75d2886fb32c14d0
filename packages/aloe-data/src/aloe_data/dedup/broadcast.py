"""Sending a set of ids (and the rows that go with them) from the driver to every Ray map task.

Map tasks filter their batches against ids chosen on the driver (candidate rows, dropped rows). The
set is put in the object store once; each worker process fetches and indexes it once
(:func:`worker_get`) and then answers membership for every batch with a binary search over sorted
fixed-width bytes (:class:`IdIndex`): no per-batch hash-set build, and numpy arrays travel zero-copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

_WORKER_CACHE: dict[str, Any] = {}


def ids_as_bytes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Ids as a numpy fixed-width bytes array (their UTF-8 bytes)."""
    values = pc.cast(ids, pa.binary()).to_pylist()
    return np.array(values, dtype="S") if values else np.array([], dtype="S1")


class IdIndex:
    """Row lookup by id over a fixed set of ids, by binary search (``np.searchsorted``).

    Ids are compared as UTF-8 bytes; they must not end in NUL bytes (numpy's fixed-width bytes drop
    trailing NULs), which aloe's hex ids never do.
    """

    def __init__(self, ids: pa.Array | pa.ChunkedArray) -> None:
        encoded = ids_as_bytes(ids)
        self._order = np.argsort(encoded, kind="stable")  # sorted position -> row in ``ids``
        self._sorted = encoded[self._order]

    def __len__(self) -> int:
        return len(self._sorted)

    def positions(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """For each id, its row in the ids this index was built from, or -1 when absent."""
        needles = ids_as_bytes(ids)
        out = np.full(len(needles), -1, dtype=np.int64)
        if not len(self._sorted) or not len(needles):
            return out
        # Ids longer than the widest indexed one cannot be present; the rest cast without truncation.
        fits = np.char.str_len(needles) <= self._sorted.dtype.itemsize
        candidates = needles[fits].astype(self._sorted.dtype)
        pos = np.minimum(np.searchsorted(self._sorted, candidates), len(self._sorted) - 1)
        hit = self._sorted[pos] == candidates
        out[np.flatnonzero(fits)[hit]] = self._order[pos[hit]]
        return out


def worker_get(ref: ray.ObjectRef, build: Callable[[Any], Any] | None = None) -> Any:
    """``ray.get(ref)`` (then ``build(value)``), once per worker process and object.

    Ray Data passes ObjectRefs in ``fn_kwargs`` through unresolved, so map functions receive the ref
    and call this; a worker running many batches fetches (and indexes) the object once.
    """
    key = ref.hex()
    if key not in _WORKER_CACHE:
        if len(_WORKER_CACHE) >= 4:  # objects of earlier fuzzy_dedup calls
            _WORKER_CACHE.clear()
        value = ray.get(ref)
        _WORKER_CACHE[key] = build(value) if build else value
    return _WORKER_CACHE[key]
