"""The prepared training data both recipes hand the shared loop: shards in, epoch stream out.

What SFT and DPO share after tokenization: reading the shards, laying out every epoch in one stream
(reshuffled per epoch), padding a split with zero-weight rows to a multiple of the worker count, the
step plan, and :class:`PreparedData` / :class:`DataFacts`, the typed result the loop reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from aloe_core import storage
from aloe_core.shards import shard_columns
from aloe_train.batching import StepPlan

if TYPE_CHECKING:
    import ray.data
    import torch

    from aloe_train.config import LoopConfig


@dataclass(frozen=True)
class DataFacts:
    """What the loop and the model card know about the prepared data (travels to every worker)."""

    plan: StepPlan
    eval_rows: int = 0  # held-out rows (0: no evaluation)
    padding_efficiency: float | None = None  # real tokens / token slots of the packed train rows
    stats: dict[str, Any] = field(default_factory=dict)  # the recipe's data_stats.json

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFacts:
        return cls(**{**data, "plan": StepPlan(**data["plan"])})


@dataclass
class PreparedData:
    """The train stream (all epochs, padded for equal steps), the optional eval rows, and their facts."""

    train: ray.data.Dataset
    eval: ray.data.Dataset | None
    facts: DataFacts

    @property
    def plan(self) -> StepPlan:
        return self.facts.plan

    @property
    def eval_rows(self) -> int:
        return self.facts.eval_rows

    @property
    def stats(self) -> dict[str, Any]:
        return self.facts.stats

    def datasets(self) -> dict[str, ray.data.Dataset]:
        return {"train": self.train} | ({"eval": self.eval} if self.eval is not None else {})


def read_shards(files: list[str], columns: tuple[str, ...]) -> ray.data.Dataset:
    """The shards' rows in file order, with those of ``columns`` the files have (recipes read only what
    they tokenize; optional columns such as ``id`` or ``meta`` may be absent). ``files`` may be on
    object storage (``s3://...``): Ray Data reads them through the resolved filesystem."""
    import ray.data

    present = shard_columns(files[0])
    paths, fs = storage.for_arrow_many(files)
    ds = ray.data.read_parquet(paths, shuffle=None, filesystem=fs)
    return ds.select_columns([c for c in columns if c in present])


def plan_steps(rows: int, loop: LoopConfig, world_size: int) -> StepPlan:
    """The step plan every rank follows for ``rows`` training rows under the loop settings."""
    return StepPlan.build(
        rows=rows,
        epochs=loop.epochs,
        world_size=world_size,
        micro_batch_size=loop.micro_batch_size,
        grad_accum_steps=loop.grad_accum_steps,
        max_steps=loop.max_steps,
    )


def epoch_stream(
    rows: ray.data.Dataset,
    plan: StepPlan,
    loop: LoopConfig,
    shuffle: bool,
    padding: Callable[[int], pa.Table],
) -> ray.data.Dataset:
    """All epochs in one stream (epoch e > 0 reshuffled with seed + e), then the plan's zero-weight
    padding rows (``padding(count)``)."""
    import ray.data

    parts = [
        rows.random_shuffle(seed=loop.seed + epoch) if (epoch and shuffle) else rows
        for epoch in range(loop.epochs)
    ]
    if plan.padding_rows:
        parts.append(ray.data.from_arrow(padding(plan.padding_rows)))
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def pad_to_workers(
    rows: ray.data.Dataset, count: int, world_size: int, padding: Callable[[int], pa.Table]
) -> ray.data.Dataset:
    """``rows`` (``count`` of them) plus zero-weight rows up to a multiple of ``world_size``, so every
    worker evaluates the same number of rows and the collectives line up."""
    import ray.data

    pad = (-count) % world_size
    return rows.union(ray.data.from_arrow(padding(pad))) if pad else rows


def move_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors on ``device``."""
    return {k: (v.to(device, non_blocking=True) if hasattr(v, "to") else v) for k, v in batch.items()}
