"""Stage maps cut their blocks into batches themselves, so they run fused into the read tasks.

``ds.map_batches(fn, batch_size=n)`` asks Ray Data for input bundles of at least ``n`` rows, and Ray
never fuses such a map with a read before it (a read may yield any number of rows, and fusing would
change the bundles). Every stage map then ran as an operator of its own: each read block went through
the object store to a separate map task, and on 1-2 CPUs the read and map operators took turns for the
CPUs under Ray Data's resource reservation instead of streaming. So stages call ``map_batches`` with
``batch_size=None`` (the whole block, as the read planned it: :mod:`aloe_data.pipeline.shard_reader`)
through :func:`map_in_batches`, and :func:`in_batches` hands their function the block in slices of the
stage's batch size, each slice's output yielded as its own block. Row-local functions give the same
rows either way; only where batches start changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import ray.data

BatchFn = Callable[..., pa.Table]


def slices(table: pa.Table, batch_size: int) -> Iterator[pa.Table]:
    """``table`` in consecutive slices of at most ``batch_size`` rows (an empty table once, as itself)."""
    if table.num_rows == 0:
        yield table
        return
    for start in range(0, table.num_rows, batch_size):
        yield table.slice(start, batch_size)


def in_batches(fn: BatchFn, batch_size: int) -> Callable[..., Iterator[pa.Table]]:
    """A block function that applies ``fn`` (with the map's keyword arguments) to each slice in turn."""

    def run(block: pa.Table, **kwargs: Any) -> Iterator[pa.Table]:
        for batch in slices(block, batch_size):
            yield fn(batch, **kwargs)

    run.__name__ = getattr(fn, "__name__", "batches")  # Ray Data names the operator after it
    return run


def map_in_batches(ds: ray.data.Dataset, fn: BatchFn, batch_size: int, **map_args: Any) -> ray.data.Dataset:
    """``ds.map_batches(fn, batch_format="pyarrow", batch_size=batch_size, ...)``, but fused with the read
    (module docstring)."""
    return ds.map_batches(in_batches(fn, batch_size), batch_format="pyarrow", batch_size=None, **map_args)
