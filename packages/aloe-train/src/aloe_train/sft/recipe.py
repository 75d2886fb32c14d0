"""The SFT recipe: Ray Data packed rows -> the shared Ray Train + FSDP2 loop -> checkpoints -> HF export.

:func:`run_sft` prepares the data on the driver (:mod:`aloe_train.sft.data`) and hands it to
:func:`aloe_train.loop.launch`, whose workers run the loop every recipe shares. What is SFT-specific is
here: :func:`sft_loss_sum` (cross-entropy summed over trained tokens; the loop divides by the trained
tokens of the whole global batch), how packed rows become tensors, and the model card.

Output folder (``output_dir``, shared storage on multi-node clusters):
``config.yaml``, ``data_stats.json``, ``metrics.jsonl``, ``loss_curve.png``, ``summary.json``,
``checkpoints/checkpoint-NNNNNN/`` (sharded, resumable) and ``model/`` (the Hugging Face export).
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import pyarrow as pa
import torch
import torch.nn.functional as F

from aloe_core import storage
from aloe_core.atomic import atomic_write_text
from aloe_core.ray_session import ensure_ray
from aloe_train.cards import training_facts
from aloe_train.loop import Session, launch, logged_records, materialize_if_no_cpu_left, write_run_files
from aloe_train.sft.config import SFTConfig
from aloe_train.sft.data import IGNORE_INDEX, collate, padding_rows, prepare_sft_data

logger = logging.getLogger("aloe.train")


# ------------------------------------------------------------------------------------------ the loss
def sft_loss_sum(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """Sum of next-token cross-entropies over the tokens with a label (labels are pre-shifted).

    ``position_ids`` restart at 0 at each packed sample; with ``attention_mask=None`` and no KV cache,
    transformers turns the restarts into a block-diagonal causal mask (sdpa, eager) or varlen
    boundaries (flash-attention), so no token attends to another sample.
    """
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        batch["labels"].reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


class SFTRecipe:
    """SFT for the shared loop: packed rows, loss weighted by trained tokens."""

    name: ClassVar[str] = "sft"
    config_class: ClassVar[type[SFTConfig]] = SFTConfig
    stat_names: ClassVar[tuple[str, ...]] = ()
    weight_name: ClassVar[str] = "trained_tokens"

    def __init__(self, config: SFTConfig) -> None:
        self.config = config

    def collate(self, table: pa.Table, pad_id: int) -> dict[str, Any]:
        batch = collate(table, pad_id)
        return batch | {"weight": batch["n_trained"], "slots": batch["rows"] * self.config.data.max_length}

    def dummy(self, pad_id: int) -> dict[str, Any]:
        return self.collate(padding_rows(1, pad_id), pad_id)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return sft_loss_sum(model, batch), {}

    def card(self, session: Session, eval_loss: float | None) -> dict[str, Any]:
        return sft_model_card(session, eval_loss)


# ------------------------------------------------------------------------------------------- driver
def run_sft(config: SFTConfig) -> dict[str, Any]:
    """Prepare the data, train on Ray Train (local Ray or ``RAY_ADDRESS``), return the run summary.

    Raises:
        AloeError: bad inputs or config (before any worker starts), or Ray Train V1 forced on.
        ray.train.TrainingFailedError: training failed more often than ``scaling.max_failures``.
    """
    config = config.with_absolute_paths()
    write_run_files(config)
    resources = ensure_ray()
    data = prepare_sft_data(config, config.scaling.num_workers)
    data.train = materialize_if_no_cpu_left(data.train, config, resources)
    atomic_write_text(storage.join(config.output_dir, "data_stats.json"), json.dumps(data.stats, indent=2))
    logger.info("data: %s", json.dumps({k: data.stats[k] for k in ("rows", "train_packing", "plan")}))
    return launch(config, "sft", data)


def sft_model_card(s: Session, eval_loss: float | None) -> dict[str, Any]:
    """The facts of the exported folder's card (:mod:`aloe_train.cards`): base, data, config, results."""
    stats, config = s.facts.stats, s.config
    packing = stats["train_packing"]
    losses = [r["loss"] for r in logged_records(s)] or [float("nan")]
    results = (
        f"{s.step} optimizer steps on {s.world} workers; train loss {losses[0]:.4f} -> {losses[-1]:.4f}"
        + (f"; eval loss {eval_loss:.4f}" if eval_loss is not None else "")
        + "."
    )
    recipe = (
        "aloe SFT recipe (Ray Train + FSDP2): rows rendered with the chat template, loss on assistant "
        f"tokens only, packed into {packing['packed_rows']} rows of {config.data.max_length} tokens "
        f"(best-fit-decreasing, per-sample position ids; padding efficiency "
        f"{packing['padding_efficiency']:.3f})."
    )
    return training_facts(
        "sft",
        title=f"{storage.name_of(config.output_dir)}: SFT of {storage.name_of(config.model.path)}",
        base_model=config.model.path,
        config=config.model_dump(mode="json"),
        data=stats,
        recipe=recipe,
        results=results,
    )
