"""The ``cot`` stage's config: which engine and model, how to sample, verify, retry, and scale."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from aloe_core import storage
from aloe_core.config import StrictModel, config_hash
from aloe_data.pipeline.stage import StageConfig
from aloe_infer.engine import EngineConfig
from aloe_infer.sampling import SamplingParams

# Engine fields that change speed or memory, not what is generated: left out of the chunk key, so
# resuming with more actors, another batch size or a different memory share reuses finished rows.
_RESOURCE_FIELDS = ("env", "gpu_memory_utilization", "max_batch_size", "max_batch_tokens", "enforce_eager")


class CotSampling(StrictModel):
    """Sampling for the reasoning. Seeds are per row and attempt (derived from ``seed`` and the row id)."""

    max_tokens: int = Field(1024, ge=1, description="Longest reasoning in tokens.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature (> 0 when retrying).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Top-k sampling (0: off).")
    stop: tuple[str, ...] = Field((), description="Strings that end generation.")
    ignore_eos: bool = Field(False, description="Benchmarks only: always generate max_tokens.")

    def params(self, seed: int) -> SamplingParams:
        return SamplingParams(**self.model_dump(), seed=seed)


class CotConfig(StageConfig):
    """See :mod:`aloe_data.stages.cot` for what the stage does with these."""

    type: Literal["cot"] = "cot"
    engine: EngineConfig = Field(description="The teacher: engine type, model folder, dtype, parallelism.")
    sampling: CotSampling = Field(CotSampling(), description="How the reasoning is sampled.")
    prompt: str = Field("cot-default", description="Template id of the teacher prompt (family cot).")
    template_files: list[str] = Field(default_factory=list, description="Extra template files for prompt.")
    answer_prefix: str = Field(
        "Answer:", min_length=1, description="The fixed final answer line starts with this."
    )
    max_retries: int = Field(2, ge=0, description="New-seed attempts for rows that fail verification.")
    seed: int = Field(0, ge=0, description="Base of the per-row seeds.")
    force_answer: bool = Field(
        True, description="Ask for the answer letter when the reasoning ends without one."
    )
    min_words: int = Field(20, ge=0, description="Reasoning shorter than this fails (outcome too_short).")
    non_mcqa: Literal["keep", "drop"] = Field(
        "keep", description="Rows without an MCQA item: pass through (keep) or drop."
    )
    batch_size: int = Field(64, ge=1, description="Rows per actor call (and per checkpoint chunk).")
    concurrency: int | tuple[int, int] = Field(
        1, description="Generation actors (one engine each): a number, or [min, max] to autoscale."
    )
    num_gpus: float = Field(
        0, ge=0, description="GPUs per actor (0 = CPU; >= engine.tensor_parallel_size on GPU)."
    )
    cpus_per_actor: float = Field(
        1, gt=0, validation_alias=AliasChoices("cpus_per_actor", "num_cpus"), description="CPUs per actor."
    )
    chunk_dir: str | None = Field(
        None,
        description="Checkpoint folder, local or an s3:// / gs:// URI (default: <run>/_cot_chunks/<stage "
        "dir>/); shared storage on clusters.",
    )

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        low, high = (value, value) if isinstance(value, int) else value
        if low < 1 or high < low:
            raise ValueError("concurrency must be >= 1, or [min, max] with 1 <= min <= max")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CotConfig:
        if self.max_retries > 0 and self.sampling.temperature == 0:
            raise ValueError(
                "sampling.temperature is 0, so every retry would repeat the first attempt; "
                "set a temperature > 0 or max_retries: 0"
            )
        tp = self.engine.tensor_parallel_size
        if tp > 1 and self.num_gpus < tp:
            raise ValueError(f"num_gpus ({self.num_gpus}) must be >= engine.tensor_parallel_size ({tp})")
        return self

    def generation_key(self, template_digest: str = "") -> str:
        """Hash of everything that decides what a row's result is (not how fast it is computed)."""
        engine = self.engine.model_dump(mode="json", exclude=set(_RESOURCE_FIELDS))
        data: dict[str, Any] = {
            "engine": engine,
            "model": model_fingerprint(self.engine.model),
            "template": template_digest,
            **self.model_dump(
                mode="json",
                include={
                    "sampling",
                    "prompt",
                    "answer_prefix",
                    "max_retries",
                    "seed",
                    "force_answer",
                    "min_words",
                },
            ),
        }
        return config_hash(data)


def model_fingerprint(path: str) -> str:
    """Cheap identity of a model folder: file names and sizes plus the bytes of config.json (hashing
    70B of weights on every run would cost minutes). A folder on a URI is read on the store (nothing
    downloaded) and a copy of it fingerprints like the original, so moving a model keeps the chunks."""
    if not storage.is_dir(path):
        return ""
    files = sorted((storage.name_of(p), storage.info(p).size) for p in storage.list_files(path))
    config = storage.join(path, "config.json")
    text = storage.read_text(config) if storage.is_file(config) else ""
    return config_hash({"files": files, "config": text})
