"""The DPO recipe's config: stages of preference optimisation that run one after the other.

Aloe aligns in two stages: general human preference, then safety (red-teaming prompts with safe chosen
answers) at a much lower learning rate (the Aloe beta recipe used 1e-7 for the second). One
``aloe train dpo CONFIG`` runs every stage in :attr:`DPOConfig.stages`; stage ``k + 1`` starts from stage
``k``'s exported model, which is also its reference model (the usual choice: the KL anchor is the policy
the stage starts from). Model, scaling, checkpointing and export are shared by all stages; data, loss,
optimizer and loop belong to each stage.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from aloe_core.config import StrictModel
from aloe_train.config import (
    CheckpointingConfig,
    ExportConfig,
    FaultInjection,
    LoopConfig,
    ModelConfig,
    OptimConfig,
    RecipeConfig,
    ScalingConfig,
)


class DPODataConfig(StrictModel):
    """Preference rows (aloe's ``preference`` schema: ``prompt`` messages, ``chosen``, ``rejected``).

    ``path`` is a pipeline run folder (a preference run; its last stage is read), a folder of Parquet
    shards or a glob. Truncation rule, per pair: a prompt longer than ``max_prompt_length`` keeps its
    first token (BOS) and its last ``max_prompt_length - 1`` tokens (the question's end, where the ask
    is); then each completion keeps its first ``max_length - len(prompt)`` tokens. Truncated pairs are
    kept and counted; pairs whose chosen and rejected completions are identical after truncation (no
    preference signal left) are dropped and counted.
    """

    path: str
    eval_path: str | None = None
    eval_fraction: float = Field(0.0, ge=0, lt=1)  # by a stable hash of the row id, so runs agree
    max_length: int = Field(1024, ge=16)  # prompt + completion tokens, per sequence
    max_prompt_length: int = Field(512, ge=8)
    shuffle: bool = True  # seeded shuffle of pairs (and a new seed per epoch)
    # Keep only rows whose meta has one of these values per key, e.g. {category: [safety_refusal]}
    # to give a safety stage its pairs from a mixed preference run; other rows count as not_selected.
    where: dict[str, list[str]] | None = None

    @model_validator(mode="after")
    def _lengths(self) -> DPODataConfig:
        if self.max_prompt_length >= self.max_length:
            raise ValueError(
                f"data.max_prompt_length ({self.max_prompt_length}) must be below data.max_length "
                f"({self.max_length}), or no completion token would fit"
            )
        if self.eval_path is not None and self.eval_fraction > 0:
            raise ValueError("set either data.eval_path or data.eval_fraction, not both")
        return self


class DPOLossConfig(StrictModel):
    """The preference loss. ``sigmoid`` is DPO (Rafailov et al.); with ``label_smoothing`` > 0 it is
    conservative DPO (cDPO: labels flipped with that probability). ``ipo`` is IPO (Azar et al.) on
    per-token average log-ratios, as TRL computes it. ``sft_weight`` adds that times the chosen
    completion's mean token NLL per pair (RPO-style, keeps the chosen answers likely)."""

    type: Literal["sigmoid", "ipo"] = "sigmoid"
    beta: float = Field(0.1, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    sft_weight: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _smoothing_is_sigmoid_only(self) -> DPOLossConfig:
        if self.type == "ipo" and self.label_smoothing:
            raise ValueError(
                "loss.label_smoothing applies to the sigmoid loss only; IPO has no labels to flip"
            )
        return self


class ReferenceConfig(StrictModel):
    """The Ray Data pass that computes the frozen reference model's log-probs before training.

    One reference model per actor; ``concurrency`` actors; ``num_gpus`` per actor (0 on CPU).
    """

    batch_size: int = Field(8, ge=1)  # pairs per forward pass (2x sequences)
    concurrency: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0)
    num_cpus: float = Field(1, gt=0)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU


class DPOStage(StrictModel):
    """One stage: its own data, loss, optimizer and loop."""

    name: str
    data: DPODataConfig
    loss: DPOLossConfig = DPOLossConfig()
    optim: OptimConfig = OptimConfig(lr=5e-7, warmup_ratio=0.1)
    train: LoopConfig = LoopConfig()

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("must be a folder name (letters, digits, '_', '.', '-')")
        return value


class DPOConfig(StrictModel):
    """``aloe train dpo CONFIG``: one or more DPO stages, each starting from the previous one's model."""

    model: ModelConfig
    output_dir: str
    stages: list[DPOStage] = Field(min_length=1)
    reference: ReferenceConfig = ReferenceConfig()
    scaling: ScalingConfig = ScalingConfig()
    checkpointing: CheckpointingConfig = CheckpointingConfig()
    export: ExportConfig = ExportConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> DPOConfig:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique (they name output folders); got {names}")
        return self


class DPOStageConfig(RecipeConfig):
    """What the shared training loop sees for one stage (built by :func:`aloe_train.dpo.run_dpo`)."""

    stage: str
    data: DPODataConfig
    loss: DPOLossConfig
    reference: ReferenceConfig


def stage_config(
    config: DPOConfig,
    stage: DPOStage,
    model: ModelConfig,
    output_dir: str,
    fault_injection: FaultInjection | None = None,
) -> DPOStageConfig:
    """The loop config of ``stage``, training ``model`` into ``output_dir``."""
    return DPOStageConfig(
        stage=stage.name,
        model=model,
        output_dir=output_dir,
        data=stage.data,
        loss=stage.loss,
        optim=stage.optim,
        train=stage.train,
        reference=config.reference,
        scaling=config.scaling,
        checkpointing=config.checkpointing,
        export=config.export,
        fault_injection=fault_injection,
    )
