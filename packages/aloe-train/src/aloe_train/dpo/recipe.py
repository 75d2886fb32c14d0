"""The DPO recipe: preference pairs -> reference log-probs (Ray Data actors) -> the shared FSDP2 loop.

:func:`run_dpo` runs the stages of a :class:`~aloe_train.dpo.config.DPOConfig` in order. For each stage
it prepares the data (:mod:`aloe_train.dpo.data`: tokenize, truncate, reference log-probs with the
frozen model the stage starts from) and hands it to :func:`aloe_train.loop.launch`, the loop SFT uses
too. What is DPO-specific is here: the policy forward over ``[chosen; rejected]`` and the loss from
:mod:`aloe_train.dpo.loss`.

Output folder: ``OUTPUT/<stage>/`` per stage, each like an SFT run (``config.yaml``, ``data_stats.json``,
``metrics.jsonl``, ``loss_curve.png``, ``summary.json``, ``checkpoints/``, ``model/``), and
``OUTPUT/summary.json`` listing the stages. A rerun skips finished stages and resumes an interrupted
one from its latest checkpoint; the final model is the last stage's ``model/``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
import yaml

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, atomic_write_text
from aloe_core.ray_session import ensure_ray
from aloe_train.cards import training_facts
from aloe_train.config import ModelConfig
from aloe_train.dpo.config import DPOConfig, DPOLossConfig, DPOStageConfig, stage_config
from aloe_train.dpo.data import collate_pairs, padding_pairs, prepare_dpo_data, sequence_logps
from aloe_train.dpo.loss import STAT_NAMES, PairLogps, pair_stats, per_pair_loss
from aloe_train.loop import Session, launch, logged_records, materialize_if_no_cpu_left, write_run_files

logger = logging.getLogger("aloe.train")


def pair_logps(model: torch.nn.Module, batch: dict[str, Any]) -> PairLogps:
    """The policy's sequence log-probs of every pair in the batch (one forward over 2B sequences)."""
    completion = batch["completion_mask"]
    sums, _ = sequence_logps(model, batch["input_ids"], batch["attention_mask"], completion)
    chosen, rejected = sums.chunk(2, dim=0)
    chosen_tokens, rejected_tokens = completion.sum(dim=1).to(sums.dtype).chunk(2, dim=0)
    return PairLogps(
        chosen=chosen,
        rejected=rejected,
        ref_chosen=batch["ref_chosen_logps"].to(sums.dtype),
        ref_rejected=batch["ref_rejected_logps"].to(sums.dtype),
        chosen_tokens=chosen_tokens,
        rejected_tokens=rejected_tokens,
    )


def dpo_loss_sum(
    model: torch.nn.Module, batch: dict[str, Any], loss_config: DPOLossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The batch's pair-weighted summed loss under ``loss_config`` and its summed reward statistics."""
    logps = pair_logps(model, batch)
    weight = batch["pair_weight"].to(logps.chosen.dtype)
    loss = (per_pair_loss(logps, loss_config) * weight).sum()
    return loss, pair_stats(logps, loss_config.beta, weight)


class DPORecipe:
    """DPO for the shared loop: pair batches, loss weighted by pairs."""

    name: ClassVar[str] = "dpo"
    config_class: ClassVar[type[DPOStageConfig]] = DPOStageConfig
    stat_names: ClassVar[tuple[str, ...]] = STAT_NAMES
    weight_name: ClassVar[str] = "pairs"

    def __init__(self, config: DPOStageConfig) -> None:
        self.config = config
        self.loss_config = config.loss  # the stage's loss (type, beta, smoothing, SFT term)

    def collate(self, table: pa.Table, pad_id: int) -> dict[str, Any]:
        return collate_pairs(table, pad_id)

    def dummy(self, pad_id: int) -> dict[str, Any]:
        return self.collate(padding_pairs(1, pad_id), pad_id)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return dpo_loss_sum(model, batch, self.loss_config)

    def card(self, session: Session, eval_loss: float | None) -> dict[str, Any]:
        return dpo_model_card(session, eval_loss)


# ------------------------------------------------------------------------------------------- driver
def run_dpo(config: DPOConfig) -> dict[str, Any]:
    """Run every stage in order (skipping finished ones); return ``OUTPUT/summary.json``'s content.

    Raises:
        AloeError: bad inputs or config (before any worker of that stage starts).
        ray.train.TrainingFailedError: a stage failed more often than ``scaling.max_failures``.
    """
    out = config.output_dir
    if not storage.is_uri(out):
        out = str(Path(out).expanduser().absolute())
    storage.makedirs(out)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    if storage.is_uri(out):
        atomic_write_text(storage.join(out, "config.yaml"), text)
    else:
        Path(out, "config.yaml").write_text(text)
    resources = ensure_ray()
    model = config.model
    summaries: list[dict[str, Any]] = []
    for stage in config.stages:
        stage_dir = storage.join(out, stage.name)
        loop_config = stage_config(config, stage, model, stage_dir).with_absolute_paths()
        summary = _finished(stage_dir) or _run_stage(loop_config, resources)
        summaries.append({"stage": stage.name, **summary})
        if not summary.get("model"):
            raise ValueError(f"stage {stage.name}: export.enabled is false, so no model for the next stage")
        # The next stage starts from (and is anchored to) this stage's export, whose tokenizer already
        # carries the chat template used for training (on a URI: read through its local copy).
        model = ModelConfig(path=summary["model"], attn_implementation=model.attn_implementation)
    result = {"stages": summaries, "model": summaries[-1]["model"]}
    atomic_write_json(storage.join(out, "summary.json"), result)
    return result


def _finished(stage_dir: str) -> dict[str, Any] | None:
    """The summary of a stage that already finished (its summary and model exist), else None.

    On object storage both are the last objects their writers put (the model's ``config.json`` after
    its other files, ``summary.json`` after the model), so a stage killed mid-upload is not finished.
    """
    summary = storage.join(stage_dir, "summary.json")
    if storage.is_file(summary) and storage.is_file(storage.join(stage_dir, "model", "config.json")):
        logger.info("stage %s finished earlier: skipped", storage.name_of(stage_dir))
        return json.loads(storage.read_text(summary))
    return None


def _run_stage(config: DPOStageConfig, resources: dict[str, float]) -> dict[str, Any]:
    write_run_files(config)
    data = prepare_dpo_data(config, config.scaling.num_workers)
    data.train = materialize_if_no_cpu_left(data.train, config, resources)
    atomic_write_text(storage.join(config.output_dir, "data_stats.json"), json.dumps(data.stats, indent=2))
    logger.info("stage %s data: %s", config.stage, json.dumps({k: data.stats[k] for k in ("rows", "plan")}))
    return launch(config, "dpo", data)


def dpo_model_card(s: Session, eval_loss: float | None) -> dict[str, Any]:
    """The facts of the exported folder's card: base (= reference) model, data, loss, results."""
    config = s.config
    records = logged_records(s) or [{"loss": float("nan"), "rewards/accuracies": float("nan")}]
    results = (
        f"{s.step} optimizer steps on {s.world} workers; loss {records[0]['loss']:.4f} -> "
        f"{records[-1]['loss']:.4f}; reward accuracy {records[0].get('rewards/accuracies', float('nan')):.3f}"
        f" -> {records[-1].get('rewards/accuracies', float('nan')):.3f}"
        + (f"; eval loss {eval_loss:.4f}" if eval_loss is not None else "")
        + "."
    )
    recipe = (
        f"aloe DPO recipe, stage `{config.stage}`: {config.loss.type} loss, beta {config.loss.beta}, "
        f"label smoothing {config.loss.label_smoothing}, SFT weight {config.loss.sft_weight}; reference = "
        "the base model (log-probs precomputed by Ray Data actors), policy trained on Ray Train + FSDP2."
    )
    return training_facts(
        "dpo",
        title=f"DPO stage {config.stage} of {storage.name_of(config.model.path)}",
        base_model=config.model.path,
        config=config.model_dump(mode="json"),
        data=s.facts.stats,
        recipe=recipe,
        results=results,
    )
