"""Broadcasting driver-side decisions to every Ray map task, and marking rows by id with them.

Exact dedup, fuzzy dedup and diversity selection all decide on the driver which ids to drop (with a
``duplicate_of``, a similarity, a rank...) and then mark those rows in a map pass that keeps the input's
order, so reruns write identical shards. :func:`mark_by_id` is that pass: the decision table is put in
the object store once; each worker process fetches and indexes it once (:func:`worker_get`, the one
cache of broadcast objects, also used for fuzzy dedup's candidate sets and the decontamination index)
and then answers every batch with a binary search over sorted fixed-width bytes (:class:`IdIndex`): no
per-batch hash-set build, and numpy arrays travel zero-copy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

# Broadcast objects a worker process keeps (most recently used last). A few, not one: a stage may use
# two at once (fuzzy dedup's candidates and dropped rows) and a worker may run tasks of two stages.
WORKER_CACHE_SIZE = 4
_WORKER_CACHE: OrderedDict[tuple[str, Any], Any] = OrderedDict()


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
    """``ray.get(ref)`` (then ``build(value)``), once per worker process, object and ``build``.

    Ray Data passes ObjectRefs in ``fn_kwargs`` through unresolved, so map functions receive the ref
    and call this; a worker running many batches fetches (and indexes) the object once. The cache holds
    the :data:`WORKER_CACHE_SIZE` most recently used objects.
    """
    key = (ref.hex(), build)
    if key in _WORKER_CACHE:
        _WORKER_CACHE.move_to_end(key)
        return _WORKER_CACHE[key]
    value = ray.get(ref)
    value = build(value) if build else value
    _WORKER_CACHE[key] = value
    while len(_WORKER_CACHE) > WORKER_CACHE_SIZE:
        _WORKER_CACHE.popitem(last=False)
    return value


# How a stage marks one batch: ``(batch, decisions aligned to the batch's rows, found) -> batch``, where
# the aligned table holds each row's decision row (all nulls for ids without one) and ``found`` is a
# bool array of which rows have a decision.
Marker = Callable[[pa.Table, pa.Table, np.ndarray], pa.Table]


def index_by_id(decisions: pa.Table) -> tuple[IdIndex, pa.Table]:
    """The build step of a broadcast decision table: an index of its ids, and the table."""
    return IdIndex(decisions["id"]), decisions


def align(batch: pa.Table, index: IdIndex, decisions: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """``decisions``' row for each row of ``batch`` (by ``id``; all-null rows where there is none), and
    the bool array of which rows have one."""
    position = index.positions(batch["id"]) if batch.num_rows else np.zeros(0, np.int64)
    found = position >= 0
    aligned = decisions.take(pa.array(position, pa.int64(), mask=~found))
    return aligned, found


def mark_batch(batch: pa.Table, *, decisions: ray.ObjectRef, mark: Marker) -> pa.Table:
    """One map task's work in :func:`mark_by_id` (module level so Ray pickles it by reference)."""
    if batch.num_rows == 0:
        return batch
    index, table = worker_get(decisions, index_by_id)
    aligned, found = align(batch, index, table)
    return mark(batch, aligned, found)


def mark_by_id(ds: ray.data.Dataset, decisions: pa.Table, mark: Marker, **map_args: Any) -> ray.data.Dataset:
    """``ds`` with every batch passed through ``mark`` together with the ``decisions`` rows of its ids.

    ``decisions`` (an ``id`` column plus whatever the stage decided) is broadcast once; rows keep their
    order. ``mark`` must be picklable (a module-level function or a ``functools.partial`` of one).
    """
    ref = ray.put(decisions)
    return ds.map_batches(
        mark_batch, batch_format="pyarrow", fn_kwargs={"decisions": ref, "mark": mark}, **map_args
    )
