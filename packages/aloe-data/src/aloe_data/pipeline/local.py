"""Tiny inputs run in this process, without Ray: the rule, and the in-process stage writer.

The rule: a **row-local** stage (each output row depends on its input row alone: ingest, clean,
template; :attr:`Stage.row_local <aloe_data.pipeline.stage.Stage.row_local>`) runs in the driver,
without starting Ray, when

* its input has at most ``in_process.max_rows`` rows (ingest: its source files total at most
  ``in_process.max_source_bytes`` bytes),
* and the input fits one output shard (``output.shard_rows``), so the Ray path would have written it in
  one write task too,
* and the run is not on a cluster (``RAY_ADDRESS`` unset: there, the driver's machine is not where the
  work belongs).

Every other stage (dedup exchanges, decontamination's index, actor pools) runs on Ray, which starts at
the first such stage. Why: on a 2-core machine, starting a local Ray and Ray Data's executor costs 10-15
seconds, a hundred times the work of ingesting 40 rows, and `aloe data ingest` of a small file is the
first thing a new user runs. What it must not change: the files. Both paths run the same stage code and
the same shard writer (:func:`~aloe_data.pipeline.writer.write_shards`, as write task 0), so the bytes
are identical (``tests/data/test_in_process.py`` runs both on the same input).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aloe_core import storage
from aloe_data.pipeline.config import InProcessConfig, OutputConfig
from aloe_data.pipeline.stage import Stage, StageContext
from aloe_data.pipeline.writer import merge_results, write_shards


def runs_in_process(
    stage: Stage, rows: int | None, source_bytes: int | None, limits: InProcessConfig, output: OutputConfig
) -> bool:
    """Whether ``stage`` takes the in-process path (the rule in the module docstring).

    ``rows``: the input's rows (None for ingest, which has only ``source_bytes``).
    """
    if not stage.row_local or os.environ.get("RAY_ADDRESS") or limits.max_rows == 0:
        return False
    if stage.reads_sources:
        return source_bytes is not None and source_bytes <= limits.max_source_bytes
    return rows is not None and rows <= min(limits.max_rows, output.shard_rows)


def read_tables(paths: Iterable[str | Path]) -> list[pa.Table]:
    """The rows of record shards, in order, as the stage's input tables."""
    tables = []
    for path in paths:
        where, fs = storage.for_arrow(path)
        tables.append(pq.read_table(where, filesystem=fs))
    return tables


def run_in_process(
    stage: Stage, tables: list[pa.Table], ctx: StageContext, limits: InProcessConfig, output: OutputConfig
) -> list[pa.Table] | None:
    """``stage``'s output tables computed here, or None when they hold more rows than one shard (or
    ``max_rows``): ingest only learns its row count by reading, and then takes the Ray path after all."""
    results = list(stage.process_tables(tables, ctx))
    if sum(t.num_rows for t in results) > min(limits.max_rows, output.shard_rows):
        return None
    return results


def write_in_process(
    tables: list[pa.Table], staging: str | Path, kind: str, output: OutputConfig
) -> dict[str, Any]:
    """Write a stage's output tables into ``staging`` as write task 0 would; the merged results."""
    return merge_results([write_shards(tables, staging, kind, 0, output.shard_rows, output.shard_bytes)])
