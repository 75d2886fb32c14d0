"""Group the rows of a Ray Dataset by a uint64 key across the cluster: a two-wave hash exchange.

Wave 1 (one Ray task per few blocks): split each block by ``key % num_partitions`` into
``num_partitions`` tables (``num_returns=num_partitions``). Wave 2 (one task per partition): concatenate
that partition's pieces from every wave-1 task, so every row with a given key is in one table, and apply
``reduce_fn`` to it. Keys must already be well-mixed hashes (LSH band keys and exact dedup's content
digests are), so the modulo spreads them evenly.

Why not Ray Data's ``repartition(keys=...)`` / ``groupby``: their all-to-all operators run shuffle
tasks in a dedicated worker pool (its own runtime env) and aggregator actors. On small clusters the
worker churn dominates: repartitioning 0.9 M (key, id) rows took 34-73 s on a 2-CPU machine where
this exchange takes a few seconds (both measured while ``benchmarks/minhash.py`` was written). This
exchange uses plain tasks in the default worker pool, streams nothing through the driver but object
refs, and creates (wave-1 tasks x partitions) objects: each wave-1 task takes several blocks, so a
10^8-row corpus (~25k blocks of keys) with 200 partitions makes ~10^5 small objects, well within
Ray's limits. Intermediate objects spill to disk like any Ray object when the object store is full.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import ray
import ray.data

ReduceFn = Callable[[pa.Table], pa.Table]
MAX_DEFAULT_PARTITIONS = 200  # Ray Data's default_hash_shuffle_parallelism


def default_num_partitions(cpus: int) -> int:
    """Partitions for a cluster of ``cpus`` CPUs: two per CPU, so one slow reduce task does not leave the
    other CPUs idle, and at most :data:`MAX_DEFAULT_PARTITIONS` objects per wave-1 task."""
    return max(1, min(MAX_DEFAULT_PARTITIONS, 2 * cpus))


def group_by_key(
    ds: ray.data.Dataset, key: str, num_partitions: int, reduce_fn: ReduceFn, blocks_per_task: int = 8
) -> list[pa.Table]:
    """``reduce_fn`` applied to each partition (all rows whose ``key`` falls in it), collected.

    ``ds`` is executed here (its blocks are produced by Ray Data, then exchanged by Ray tasks). Returns
    one table per non-empty partition; the reduce outputs are meant to be small (they come to the caller).
    """
    blocks = ds.to_arrow_refs()
    if not blocks:
        return []
    splits = [
        _split.options(num_returns=num_partitions).remote(
            key, num_partitions, *blocks[lo : lo + blocks_per_task]
        )
        for lo in range(0, len(blocks), blocks_per_task)
    ]
    if num_partitions == 1:
        splits = [[ref] for ref in splits]
    del blocks  # the exchange holds the only references now; inputs are freed as wave 1 finishes
    reduced = [_reduce.remote(reduce_fn, *[pieces[p] for pieces in splits]) for p in range(num_partitions)]
    return [table for table in ray.get(reduced) if table.num_rows]


@ray.remote
def _split(key: str, num_partitions: int, *tables: pa.Table) -> tuple[pa.Table, ...] | pa.Table:
    table = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
    partition = table[key].to_numpy() % np.uint64(num_partitions)
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(num_partitions + 1, dtype=np.uint64))
    ordered = table.take(pa.array(order))
    pieces = tuple(ordered.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds.tolist()))
    return pieces if num_partitions > 1 else pieces[0]


@ray.remote
def _reduce(reduce_fn: ReduceFn, *pieces: pa.Table) -> pa.Table:
    return reduce_fn(pa.concat_tables(pieces).combine_chunks())
