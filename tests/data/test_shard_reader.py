"""How a stage's input shards become read tasks and blocks (planned from the Parquet footers).
No Ray: the datasource's plan and read functions are called directly."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from aloe_data.pipeline.shard_reader import RecordShardsDatasource, _reader


def _shards(folder: Path, files: int, rows: int, row_group: int) -> list[str]:
    """``files`` shards of ``rows`` rows each (``id`` = ``f<file>-<row>``, ``text``, ``meta``)."""
    paths = []
    for f in range(files):
        path = folder / f"part-{f:03d}.parquet"
        ids = [f"f{f}-{r}" for r in range(rows)]
        table = pa.table({"id": ids, "text": [f"text of {i}" for i in ids], "meta": ["{}"] * rows})
        pq.write_table(table, path, row_group_size=row_group)
        paths.append(str(path))
    return paths


def _plan(datasource: RecordShardsDatasource) -> list[list[int]]:
    """Rows of each block, per task."""
    return [[r.rows for r in task] for task in datasource._tasks]


def test_tasks_per_cpu_decide_the_plan(tmp_path: Path) -> None:
    # What a 2-CPU stage leaves the next one: ~8 files per CPU of one row group each.
    paths = _shards(tmp_path, files=17, rows=9_000, row_group=10_000)
    assert _plan(RecordShardsDatasource(paths, cpus=2)) == [[9_000]] * 17  # target 153k / 16 rows
    assert _plan(RecordShardsDatasource(paths, cpus=1)) == [[9_000, 9_000]] * 8 + [[9_000]]  # 153k / 8


def test_small_files_are_packed_into_one_task_each_its_own_block(tmp_path: Path) -> None:
    paths = _shards(tmp_path, files=85, rows=2_000, row_group=10_000)  # a run with shard_rows: 2000
    assert _plan(RecordShardsDatasource(paths, cpus=2)) == [[2_000] * 5] * 17  # target 170k / 16


def test_a_big_shard_is_cut_at_row_groups(tmp_path: Path) -> None:
    paths = _shards(tmp_path, files=1, rows=100_000, row_group=5_000)
    assert _plan(RecordShardsDatasource(paths, cpus=4)) == [[5_000]] * 20  # target 3,125 < a row group
    (tmp_path / "big").mkdir()
    big = _shards(tmp_path / "big", files=1, rows=400_000, row_group=10_000)
    assert _plan(RecordShardsDatasource(big, cpus=1)) == [[50_000]] * 8  # 5 row groups a block


def test_reads_give_every_row_in_order(tmp_path: Path) -> None:
    paths = _shards(tmp_path, files=5, rows=7_000, row_group=3_000)
    datasource = RecordShardsDatasource(paths, cpus=2)
    blocks = [block for task in datasource._tasks for block in _reader(task)()]
    assert [i for block in blocks for i in block["id"].to_pylist()] == [
        f"f{f}-{r}" for f in range(5) for r in range(7_000)
    ]
    assert blocks[0].column_names == ["id", "text", "meta"]
    tasks = datasource.get_read_tasks(parallelism=200)
    assert len(tasks) == datasource.num_tasks == 15  # 3,000 + 3,000 + 1,000 rows per file
    assert sum(t.metadata.num_rows for t in tasks) == 35_000
    assert tasks[0].schema.names == ["id", "text", "meta"]
