"""Training configs: generic sections every recipe shares, and the SFT recipe's config.

The sections (:class:`ModelConfig`, :class:`OptimConfig`, :class:`LoopConfig`, :class:`ScalingConfig`,
:class:`CheckpointingConfig`, :class:`ExportConfig`) hold nothing SFT-specific, so a DPO recipe composes
them with its own data section (see :class:`RecipeConfig`). Paths in a YAML file are relative to the
directory the command runs from; :meth:`RecipeConfig.with_absolute_paths` pins them before anything is
sent to Ray workers, whose working directory differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from aloe_core.config import StrictModel
from aloe_core.storage import is_uri

OUTPUT_SCHEMES = ("s3", "gs")  # object stores output_dir may name (pyarrow's S3 and GCS filesystems)


class ModelConfig(StrictModel):
    """The model to fine-tune: a Hugging Face folder (config, safetensors, tokenizer with a chat template)."""

    path: str
    # sdpa works everywhere (packed rows are kept apart through position_ids, see the README);
    # flash_attention_2 needs the flash-attn package and a GPU.
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    # Replace the tokenizer's chat template (e.g. Llama-3.1's, which has no {% generation %} markers):
    # a Jinja file, or "llama3" for aloe's Llama-3 format with markers. The export keeps the template used.
    chat_template: str | None = None


class OptimConfig(StrictModel):
    """AdamW with linear warmup then cosine decay to ``min_lr_ratio * lr``, and gradient clipping."""

    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)  # applied to matrices only, never to norms or biases
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)  # of the total optimizer steps
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    max_grad_norm: float | None = Field(1.0, gt=0)  # None: no clipping (the norm is still logged)


class LoopConfig(StrictModel):
    """How long to train and how often to log, evaluate and checkpoint (all in optimizer steps)."""

    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)  # stop earlier than the data would
    micro_batch_size: int = Field(1, ge=1)  # packed rows per forward pass per worker
    grad_accum_steps: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)
    log_every: int = Field(1, ge=1)  # metrics.jsonl lines
    # ray.train.report is a barrier across workers through Ray's controller (~0.1 s idle, over 1 s on a
    # busy CPU node, measured by benchmarks/dpo.py), so metrics reach Ray only every report_every steps
    # (and with every checkpoint); metrics.jsonl still gets every log_every step.
    report_every: int = Field(10, ge=1)
    eval_every: int | None = Field(None, ge=1)  # None: evaluate only at the end (if there is eval data)
    save_every: int | None = Field(None, ge=1)  # None: checkpoint only at the end
    # Record which samples each step trained on (per packed row) in metrics.jsonl: for audits and
    # loss-spike hunting; off by default because the lines get long on large global batches.
    log_sample_ids: bool = False


class ScalingConfig(StrictModel):
    """Workers, devices, precision and fault tolerance."""

    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1, gt=0)
    # auto: bf16 parameters with fp32 gradient reduction on GPU, fp32 everywhere on CPU.
    mixed_precision: Literal["auto", "bf16", "fp32"] = "auto"
    activation_checkpointing: bool = False
    reshard_after_forward: bool = True  # ZeRO-3 style; False keeps gathered params until backward
    max_failures: int = Field(2, ge=-1)  # worker-group restarts from the last checkpoint (-1: forever)


class CheckpointingConfig(StrictModel):
    keep: int | None = Field(3, ge=1)  # most recent sharded checkpoints kept in OUTPUT/checkpoints


class ExportConfig(StrictModel):
    """The final Hugging Face folder (OUTPUT/model)."""

    enabled: bool = True
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: the base model's dtype
    max_shard_size: str = "5GB"


class FaultInjection(StrictModel):
    """Test-only: kill worker ``rank`` (SIGKILL) once, right after optimizer step ``step`` finishes.

    Exercises Ray Train's FailureConfig restart path; a marker file in the output folder keeps the
    restarted run from killing itself again.
    """

    step: int = Field(ge=1)
    rank: int = Field(0, ge=0)


class RecipeConfig(StrictModel):
    """Sections every training recipe has; a recipe subclasses this and adds its ``data`` section."""

    model: ModelConfig
    output_dir: str
    optim: OptimConfig = OptimConfig()
    train: LoopConfig = LoopConfig()
    scaling: ScalingConfig = ScalingConfig()
    checkpointing: CheckpointingConfig = CheckpointingConfig()
    export: ExportConfig = ExportConfig()
    resume_from: str | None = None  # a checkpoint folder (OUTPUT/checkpoints/checkpoint-NNNNNN)
    fault_injection: FaultInjection | None = None

    @field_validator("output_dir")
    @classmethod
    def _storage_output(cls, value: str) -> str:
        # A local or shared folder, or an s3:// / gs:// URI (aloe_train.outputs: checkpoints through Ray
        # Train's storage filesystem, the other files uploaded one PUT each). Other schemes are refused
        # here, before any worker starts.
        scheme = value.split("://", 1)[0]
        if is_uri(value) and scheme not in OUTPUT_SCHEMES:
            raise ValueError(
                f"{value}: training writes to a local folder or an {' / '.join(OUTPUT_SCHEMES)} URI, "
                f"not {scheme}://"
            )
        return value

    @model_validator(mode="after")
    def _check_fault_rank(self) -> RecipeConfig:
        if self.fault_injection is not None and self.fault_injection.rank >= self.scaling.num_workers:
            raise ValueError(
                f"fault_injection.rank={self.fault_injection.rank} but scaling.num_workers="
                f"{self.scaling.num_workers}; pick a rank below num_workers"
            )
        return self

    def with_absolute_paths(self) -> RecipeConfig:
        """A copy whose local paths are absolute (Ray workers run in another working directory)."""
        return self.model_copy(update=_absolute_updates(self))

    def resume_identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run that wrote the checkpoint.

        Run-control fields (fault injection, resume_from, failure budget, logging, export) may change
        between attempts; anything that shapes the data order or the update rule may not.
        """
        data = self.model_dump(mode="json")
        for key in ("resume_from", "fault_injection", "export", "checkpointing"):
            data.pop(key, None)
        data["scaling"] = {
            k: v for k, v in data["scaling"].items() if k in ("num_workers", "mixed_precision")
        }
        for key in ("log_every", "report_every", "log_sample_ids", "eval_every", "save_every"):
            data["train"].pop(key, None)
        data.pop("output_dir", None)
        return data


def _absolute(path: str | None) -> str | None:
    if path is None or "://" in path:  # URIs (s3://...) are left to the filesystem that reads them
        return path
    return str(Path(path).expanduser().absolute())


def _absolute_updates(config: RecipeConfig) -> dict[str, Any]:
    updates: dict[str, Any] = {
        "output_dir": _absolute(config.output_dir),
        "resume_from": _absolute(config.resume_from),
    }
    model = config.model
    model_updates = {}
    if Path(model.path).expanduser().exists():  # a hub id would stay as written (hub loads are offline here)
        model_updates["path"] = _absolute(model.path)
    if model.chat_template not in (None, "llama3"):
        model_updates["chat_template"] = _absolute(model.chat_template)
    updates["model"] = model.model_copy(update=model_updates)
    data = getattr(config, "data", None)
    if data is not None:
        updates["data"] = data.model_copy(
            update={"path": _absolute(data.path), "eval_path": _absolute(data.eval_path)}
        )
    return updates
