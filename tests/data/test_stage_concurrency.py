"""Task-only pipeline stages run without Ray Data's per-operator resource reservation.

With it on, Ray 2.60 admitted about one task at a time on a fixed local cluster (its budget is the
autoscaling coordinator's share, which reads as 0 CPUs for much of a short execution), so the second
CPU bought exact and fuzzy dedup almost nothing (`benchmarks/pipeline.py` measures the effect). The
runner runs task-only stages without it and actor-pool stages with it
(:func:`aloe_data.pipeline.runner.resource_reservation`); these tests pin that wiring through the real
runner on the session's Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ray.data
from corpus_tables import corpus_tables

from aloe_data.pipeline.config import InProcessConfig, OutputConfig
from aloe_data.pipeline.runner import execute_stage, resource_reservation
from aloe_data.stages import STAGES
from aloe_data.stages.exact_dedup import ExactDedupConfig, ExactDedupStage


class RecordingExactDedup(ExactDedupStage):
    """Exact dedup that notes the reservation setting of the Dataset it is given."""

    seen: ClassVar[list[bool]] = []

    def apply(self, ds: ray.data.Dataset, ctx) -> ray.data.Dataset:
        self.seen.append(ds.context.op_resource_reservation_enabled)
        return super().apply(ds, ctx)


class RecordingPoolStage(RecordingExactDedup):
    uses_actor_pool = True


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize(
    ("stage_class", "expected"), [(RecordingExactDedup, False), (RecordingPoolStage, True)]
)
def test_the_runner_turns_the_reservation_off_only_for_task_only_stages(
    tmp_path: Path, stage_class: type[RecordingExactDedup], expected: bool
) -> None:
    shard = tmp_path / "in" / "part-00000.parquet"
    shard.parent.mkdir()
    table = corpus_tables(300)["sft"]
    pq.write_table(table.filter(pc.is_null(table["drop_reason"])), shard)  # ingest's kept rows
    stage_class.seen = []
    before = ray.data.DataContext.get_current().op_resource_reservation_enabled
    result = execute_stage(
        stage_class(ExactDedupConfig()), [str(shard)], None, tmp_path / "out", "sft",
        OutputConfig(), InProcessConfig(), ray_cpus=2,
    )  # fmt: skip
    assert stage_class.seen == [expected]
    assert result["rows_out"] + sum(result["dropped"].values()) == pq.read_metadata(shard).num_rows
    assert ray.data.DataContext.get_current().op_resource_reservation_enabled is before


def test_the_setting_follows_the_datasets_built_inside_and_is_restored(ray_session) -> None:
    context = ray.data.DataContext.get_current()
    before = context.op_resource_reservation_enabled
    with resource_reservation(not before):
        inside = ray.data.range(2)
    after = ray.data.range(2)
    assert inside.context.op_resource_reservation_enabled is (not before)
    assert after.context.op_resource_reservation_enabled is before
    assert context.op_resource_reservation_enabled is before


def test_only_the_actor_pool_stages_keep_the_reservation() -> None:
    with_pools = sorted(name for name, cls in STAGES.items() if cls.uses_actor_pool)
    assert with_pools == ["cot", "deita_score", "diversity_select"]
