"""Reading record shards into a Ray Dataset with enough blocks to keep every CPU busy.

Why not ``ray.data.read_parquet``: it makes at most one read task per file, and each task one block,
so a stage whose input is a handful of large shards ran as a handful of tasks, and a stage over one
shard as one task, however many CPUs the cluster had (``benchmarks/pipeline.py`` measured 0.97x from 1
to 2 CPUs). Ray Data's ``override_num_blocks`` only splits a block after the whole file was read, in
the same task. This datasource plans the read from the Parquet footers instead: the unit of work is a
row group (aloe's writer makes them of :data:`~aloe_data.pipeline.writer.ROW_GROUP_ROWS` rows). The
input's row groups, in order across all its files, are taken into tasks of about a target number of
rows, chosen so the read yields ``tasks_per_cpu`` tasks per cluster CPU when the input is big enough
(and never tasks of fewer than :data:`MIN_ROWS_PER_TASK` rows, whose scheduling would cost more than
their work): a row group joins the current task while that brings the task's rows nearer the target,
so every task but the last is within half a row group of it (a single bigger group stays whole). A
task may span files (small files: a run with ``shard_rows: 2000`` has ~85 files per 170k-row stage);
the consecutive row groups of one file in a task are one block. Every downstream map and the writer
run fused into these tasks, so this one choice sizes the parallelism of every stage pass. (One task per
small file made each task ~0.1 s of work: Ray Data's per-task scheduling and resource accounting then
kept the second CPU of a 2-CPU machine idle most of the time. Cutting each file on its own, closing a
range once it reached the target, gave a 2-CPU stage over 168k rows tasks of 0.6k to 20k rows where
10.5k were wanted, from row groups of 10,000 and each file's remainder; the second CPU idled while the
longest ran.)

Fused only if Ray Data is told the task count: left to itself it asks for ``read_op_min_num_blocks``
(200) blocks, and when a datasource plans fewer tasks it splits every task's output into ``k`` blocks
(``Read->SplitBlocks(k)``), and a read with a split factor is never fused with the maps after it. Each
stage then ran as two operators, with every block going through the object store between them and the
two competing for the CPUs under Ray Data's resource reservation (on 1 CPU they took turns). The read
therefore passes ``override_num_blocks`` = the planned task count (:func:`planned_read`), which
sources' ingest uses too.

Order: tasks are listed in file order, then row-group order, and the Dataset preserves order, so rows
come out exactly as ``read_parquet`` gives them (stages write byte-identical shards either way).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from aloe_core import storage

MIN_ROWS_PER_TASK = 2_000
TASKS_PER_CPU = 8


@dataclass(frozen=True)
class RowGroupRange:
    """Row groups ``first`` .. ``last`` (inclusive) of one Parquet file."""

    path: str
    first: int
    last: int
    rows: int
    bytes: int


def target_rows(total: int, cpus: int, tasks_per_cpu: int = TASKS_PER_CPU) -> int:
    """Rows per read task for ``total`` rows on ``cpus`` CPUs (see module doc)."""
    return max(MIN_ROWS_PER_TASK, math.ceil(total / max(1, cpus * tasks_per_cpu)))


@dataclass(frozen=True)
class _Group:
    """One row group of the input (``index`` -1: a file without any, which carries only the schema)."""

    path: str
    index: int
    rows: int
    bytes: int


def _ranges(groups: list[_Group]) -> list[RowGroupRange]:
    """Consecutive row groups of one file as one range each (an empty file as its own)."""
    ranges: list[RowGroupRange] = []
    for g in groups:
        last = ranges[-1] if ranges else None
        if last is not None and g.index >= 0 and last.path == g.path and last.last == g.index - 1:
            ranges[-1] = RowGroupRange(g.path, last.first, g.index, last.rows + g.rows, last.bytes + g.bytes)
        else:
            ranges.append(RowGroupRange(g.path, max(g.index, 0), g.index, g.rows, g.bytes))
    return ranges


def plan_tasks(
    paths: Sequence[str], cpus: int, tasks_per_cpu: int = TASKS_PER_CPU
) -> list[list[RowGroupRange]]:
    """The read tasks over ``paths``: every row group, in order across files, joins the current task
    while that brings the task's rows nearer the target (see the module doc)."""
    groups: list[_Group] = []
    for path in paths:
        meta = _parquet_file(path).metadata
        if meta.num_row_groups == 0:
            groups.append(_Group(path, -1, 0, 0))
        for index in range(meta.num_row_groups):
            group = meta.row_group(index)
            groups.append(_Group(path, index, group.num_rows, group.total_byte_size))
    target = target_rows(sum(g.rows for g in groups), cpus, tasks_per_cpu)
    planned: list[list[_Group]] = [[]]
    rows = 0
    for g in groups:
        if rows and g.rows and abs(rows + g.rows - target) > abs(rows - target):
            planned.append([])
            rows = 0
        planned[-1].append(g)
        rows += g.rows
    return [_ranges(task) for task in planned]


def _parquet_file(path: str) -> pq.ParquetFile:
    """A shard's reader, local or on object storage (read tasks resolve the store on their worker)."""
    where, fs = storage.for_arrow(path)
    return pq.ParquetFile(where, filesystem=fs)


def _read_schema(path: str) -> pa.Schema:
    where, fs = storage.for_arrow(path)
    return pq.read_schema(where, filesystem=fs)


class RecordShardsDatasource(Datasource):
    """Parquet record shards read as row-group ranges (see :func:`plan_ranges`)."""

    def __init__(self, paths: Sequence[str], cpus: int) -> None:
        super().__init__()
        self._tasks = plan_tasks(paths, cpus)
        self._schema = _read_schema(paths[0]) if paths else None

    @property
    def num_tasks(self) -> int:
        return len(self._tasks)

    def get_name(self) -> str:
        return "RecordShards"

    def estimate_inmemory_data_size(self) -> int:
        return sum(r.bytes for task in self._tasks for r in task)

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
        # The planned tasks whatever `parallelism` says: the plan already sized them for the cluster.
        return [
            ReadTask(
                _reader(task),
                BlockMetadata(
                    num_rows=sum(r.rows for r in task),
                    size_bytes=sum(r.bytes for r in task),
                    exec_stats=None,
                    input_files=tuple(dict.fromkeys(r.path for r in task)),
                ),
                schema=self._schema,
                per_task_row_limit=per_task_row_limit,
            )
            for task in self._tasks
        ]


def _reader(task: list[RowGroupRange]):
    def read() -> Iterator[pa.Table]:
        for r in task:  # one block per range
            file = _parquet_file(r.path)
            if r.last < r.first:
                yield file.schema_arrow.empty_table()
            else:
                yield file.read_row_groups(list(range(r.first, r.last + 1)))

    return read


def planned_read(datasource: Datasource, tasks: int) -> ray.data.Dataset:
    """``datasource`` read as exactly its ``tasks`` planned read tasks, one block stream each, in order.

    Giving Ray the count is what keeps the read fused with the maps that follow (module docstring).
    """
    ds = ray.data.read_datasource(datasource, override_num_blocks=max(1, tasks))
    ds.context.execution_options.preserve_order = True
    return ds


def read_record_shards(paths: Sequence[str], cpus: int) -> ray.data.Dataset:
    """The rows of ``paths`` (in order) as a Dataset of CPU-filling read tasks."""
    if not paths:
        return ray.data.from_items([])
    datasource = RecordShardsDatasource([str(p) for p in paths], cpus)
    return planned_read(datasource, datasource.num_tasks)
