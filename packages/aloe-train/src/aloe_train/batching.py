"""Global batches that every rank steps through together, whatever its shard holds.

FSDP runs collectives inside every forward and backward, so all ranks must run the same number of
micro-batches or the job hangs. Two layers keep them in step:

* :class:`StepPlan` (driver): the data stream is padded with zero-weight rows to a multiple of the
  worker count and split with ``equal=True``, so every rank holds the same number of rows and the
  number of optimizer steps is known before training (the LR schedule needs it).
* :func:`synchronized_steps` (workers): each optimizer step takes ``grad_accum_steps`` micro-batches per
  rank; a rank whose shard is used up feeds zero-weight dummy micro-batches, and one all-reduce per step
  (which also sums the loss weights for normalisation) tells every rank at once when all are done. So
  uneven shards (a custom split, a different Ray version) cost a few dummy passes, never a hang.

Nothing here is specific to SFT: a recipe passes its own ``weight`` (trained tokens, preference pairs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

Batch = TypeVar("Batch")


@dataclass(frozen=True)
class StepPlan:
    """How many rows each worker reads and how many optimizer steps the run takes."""

    rows: int  # real packed rows per epoch
    epochs: int
    world_size: int
    micro_batch_size: int
    grad_accum_steps: int
    padding_rows: int  # zero-weight rows appended so the stream splits evenly
    rows_per_worker: int
    steps_per_epoch: float
    steps: int  # optimizer steps of the whole run (after max_steps)

    @classmethod
    def build(
        cls,
        *,
        rows: int,
        epochs: int,
        world_size: int,
        micro_batch_size: int,
        grad_accum_steps: int,
        max_steps: int | None = None,
    ) -> StepPlan:
        total = rows * epochs
        padding = (-total) % world_size
        per_worker = (total + padding) // world_size
        data_steps = math.ceil(math.ceil(per_worker / micro_batch_size) / grad_accum_steps)
        steps = min(data_steps, max_steps) if max_steps else data_steps
        return cls(
            rows=rows,
            epochs=epochs,
            world_size=world_size,
            micro_batch_size=micro_batch_size,
            grad_accum_steps=grad_accum_steps,
            padding_rows=padding,
            rows_per_worker=per_worker,
            steps_per_epoch=data_steps / epochs,
            steps=steps,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GlobalStep:
    """One optimizer step's micro-batches on this rank, and sums over all ranks."""

    micro_batches: list[Any]
    real: list[bool]  # False for the dummy micro-batches of an exhausted rank
    global_weight: float  # sum of ``weight`` over every rank's micro-batches (the loss denominator)
    global_real: int  # real micro-batches over all ranks


def synchronized_steps(
    batches: Iterator[Batch],
    *,
    grad_accum_steps: int,
    dummy: Callable[[], Batch],
    weight: Callable[[Batch], float],
    all_reduce_sum: Callable[[list[float]], list[float]],
) -> Iterator[GlobalStep]:
    """Group ``batches`` into optimizer steps that end on every rank at the same step.

    Args:
        batches: this rank's micro-batches, in order.
        grad_accum_steps: micro-batches per optimizer step.
        dummy: a zero-weight micro-batch (its loss must be 0 and its gradient 0).
        weight: the loss weight of a micro-batch (SFT: tokens with a label).
        all_reduce_sum: sums a short list of floats over all ranks (the same call on every rank).

    Yields one :class:`GlobalStep` per step while any rank still has data; stops on all ranks together.
    """
    exhausted = False
    while True:
        micro: list[Any] = []
        real: list[bool] = []
        for _ in range(grad_accum_steps):
            batch = None if exhausted else next(batches, None)
            if batch is None:
                exhausted = True
                micro.append(dummy())
                real.append(False)
            else:
                micro.append(batch)
                real.append(True)
        local_weight = sum(weight(b) for b, is_real in zip(micro, real, strict=True) if is_real)
        global_weight, global_real = all_reduce_sum([float(local_weight), float(sum(real))])
        if global_real == 0:
            return
        yield GlobalStep(micro, real, global_weight, int(global_real))
