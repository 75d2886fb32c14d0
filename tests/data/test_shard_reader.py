"""How a stage's input shards become read tasks and blocks (planned from the Parquet footers).
No Ray: the datasource's plan and read functions are called directly."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from aloe_data.pipeline.shard_reader import RecordShardsDatasource, _reader, target_rows
from aloe_data.pipeline.writer import ROW_GROUP_ROWS


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


def test_tasks_cross_files_within_half_a_row_group_of_the_target(tmp_path: Path) -> None:
    # The same files in the writer's row groups: each file's 1,000-row remainder joins the next task.
    paths = _shards(tmp_path, files=17, rows=9_000, row_group=ROW_GROUP_ROWS)
    for cpus in (1, 2):
        plan = _plan(RecordShardsDatasource(paths, cpus=cpus))
        target = target_rows(153_000, cpus)
        assert sum(map(sum, plan)) == 153_000
        assert all(abs(sum(task) - target) <= ROW_GROUP_ROWS / 2 for task in plan[:-1]), (cpus, plan)
    assert _plan(RecordShardsDatasource(paths, cpus=1))[:2] == [[9_000, 9_000, 2_000], [7_000, 9_000, 4_000]]


def test_small_files_are_packed_into_one_task_each_its_own_block(tmp_path: Path) -> None:
    paths = _shards(tmp_path, files=85, rows=2_000, row_group=10_000)  # a run with shard_rows: 2000
    assert _plan(RecordShardsDatasource(paths, cpus=2)) == [[2_000] * 5] * 17  # target 170k / 16


def test_a_big_shard_is_cut_at_row_groups(tmp_path: Path) -> None:
    paths = _shards(tmp_path, files=1, rows=100_000, row_group=5_000)
    assert _plan(RecordShardsDatasource(paths, cpus=4)) == [[5_000]] * 20  # target 3,125 < a row group
    (tmp_path / "big").mkdir()
    big = _shards(tmp_path / "big", files=1, rows=400_000, row_group=10_000)
    assert _plan(RecordShardsDatasource(big, cpus=1)) == [[50_000]] * 8  # 5 row groups a block


def test_an_empty_shard_is_read_as_its_schema_in_order(tmp_path: Path) -> None:
    paths = _shards(tmp_path, files=3, rows=4_000, row_group=ROW_GROUP_ROWS)
    empty = tmp_path / "part-001-empty.parquet"
    pq.write_table(pq.read_table(paths[0]).slice(0, 0), empty)
    datasource = RecordShardsDatasource([paths[0], str(empty), *paths[1:]], cpus=1)
    blocks = [block for task in datasource._tasks for block in _reader(task)()]
    # 12k rows make 6 tasks of 2,000 (MIN_ROWS_PER_TASK); the empty file rides with the task before it.
    assert [b.num_rows for b in blocks] == [2_000, 2_000, 0, 2_000, 2_000, 2_000, 2_000]
    assert all(b.column_names == ["id", "text", "meta"] for b in blocks)


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
