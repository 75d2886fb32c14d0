"""DEITA scoring: complexity of each instruction and quality of each response, from scorer LLMs.

For every user -> assistant turn of a row (see :func:`aloe_data.scoring.prompts.conversation_turns`) the
complexity model reads DEITA's complexity prompt over the instruction and the quality model reads the
quality prompt over instruction + response; each score is the expected value of the model's next-token
distribution over "1".."6". A row's score is DEITA's combination ``sum over turns of complexity x
quality`` (one turn: the plain product). Results go into ``meta["deita"]``::

    {"complexity": [c_1, ...], "quality": [q_1, ...], "score": s, "turns": n, "truncated": bool}

(per-turn lists, rounded to 6 decimals; ``truncated`` is true when any prompt of the row was cut to
``max_length`` by the rule in :mod:`aloe_data.scoring.prompts`: rows are never dropped for length).

The stage drops nothing unless ``min_score`` is set (reason ``min_score``). It runs as a Ray Data actor
pool (``concurrency`` actors, each loading the models once, ``num_gpus`` each); when complexity and
quality models are the same folder the model is loaded once and both prompt sets share forward passes.
Output order equals input order (``map_batches`` with the run's ``preserve_order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import ray.data
from pydantic import AliasChoices, Field, field_validator, model_validator

from aloe_core.errors import AloeError
from aloe_data.pipeline.annotations import with_annotations
from aloe_data.pipeline.columns import update_meta
from aloe_data.pipeline.stage import Stage, StageConfig, StageContext
from aloe_data.scoring.prompts import (
    COMPLEXITY_TEMPLATE,
    QUALITY_TEMPLATE,
    SCORE_TOKENS,
    PromptFitter,
    check_template,
    conversation_turns,
    row_messages,
)
from aloe_data.scoring.scorer import expected_scores, resolve_score_ids
from aloe_infer.engine import EngineConfig, model_files
from aloe_infer.scoring import NextTokenScorer, build_scorer

META_KEY = "deita"


class DeitaScoreConfig(StageConfig):
    type: Literal["deita_score"] = "deita_score"
    complexity_model: str = Field(
        description="Local folder of the DEITA complexity scorer (a causal LM, e.g. "
        "hkust-nlp/deita-complexity-scorer)."
    )
    quality_model: str | None = Field(
        None, description="Local folder of the quality scorer (default: the complexity model, loaded once)."
    )
    engine: Literal["hf", "vllm"] = Field("hf", description="hf (transformers) or vllm.")
    complexity_template: str = Field(COMPLEXITY_TEMPLATE, description="DEITA's complexity prompt.")
    quality_template: str = Field(QUALITY_TEMPLATE, description="DEITA's quality prompt.")
    score_tokens: tuple[str, ...] = Field(
        SCORE_TOKENS, description="Score tokens, lowest first; token i scores i + 1."
    )
    max_length: int = Field(
        2048, ge=16, description="Longest prompt in tokens; longer rows are cut and flagged (DEITA: 2048)."
    )
    add_special_tokens: bool = Field(True, description="Prepend BOS as DEITA's tokenizer.encode does.")
    batch_size: int = Field(64, ge=1, description="Rows per scorer batch (each row: 2 prompts per turn).")
    max_batch_tokens: int = Field(16384, ge=1, description="Padded tokens per forward pass (hf engine).")
    concurrency: int = Field(1, ge=1, description="Scorer actors.")
    num_gpus: float = Field(0, ge=0, description="GPUs per scorer actor (0 = CPU).")
    cpus_per_actor: float = Field(
        1,
        gt=0,
        validation_alias=AliasChoices("cpus_per_actor", "num_cpus"),
        description="CPUs per scorer actor; also torch's thread count on CPU.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights' dtype; auto: bf16 on GPU, fp32 on CPU."
    )
    trust_remote_code: bool = Field(False, description="Let transformers run the model folder's code.")
    vllm_args: dict[str, Any] = Field(default_factory=dict, description="Extra vllm.LLM arguments.")
    min_score: float | None = Field(
        None, description="Drop rows scoring below this (reason min_score; default: none)."
    )

    @field_validator("complexity_template")
    @classmethod
    def _complexity_fields(cls, value: str) -> str:
        return check_template(value, ["instruction"])

    @field_validator("quality_template")
    @classmethod
    def _quality_fields(cls, value: str) -> str:
        return check_template(value, ["instruction", "output"])

    @model_validator(mode="after")
    def _two_tokens(self) -> DeitaScoreConfig:
        if len(self.score_tokens) < 2:
            raise ValueError("score_tokens: give at least two tokens (DEITA uses '1'..'6')")
        return self

    @property
    def quality_path(self) -> str:
        return self.quality_model or self.complexity_model


@dataclass
class ScoringModel:
    """One loaded scorer: how to build its prompts (``fitter``), the model that reads them (``backend``,
    transformers or vLLM) and the vocabulary ids of the score tokens, lowest score first."""

    path: str
    fitter: PromptFitter
    backend: NextTokenScorer
    score_ids: list[int]

    def expected_scores(self, prompts: list[list[int]]) -> np.ndarray:
        """DEITA's expected score of each token-id prompt (float64)."""
        return expected_scores(self.backend, prompts, self.score_ids)


def load_scoring_model(path: str, config: DeitaScoreConfig, device: str, llm: Any = None) -> ScoringModel:
    """Load ``path`` with the configured engine; ``llm`` reuses a running vLLM engine (tests).

    Raises:
        AloeError: missing folder, no fast tokenizer, a score token that is not one token, or a
            template that alone exceeds ``max_length``. MissingExtraError: vllm is not installed.
    """
    from transformers import AutoTokenizer

    # Everything that can reject the config is checked on the tokenizer alone, before any weights load
    # (a vLLM engine takes a minute to start); the backend then loads its own copy of the same files.
    tokenizer = AutoTokenizer.from_pretrained(model_files(path), trust_remote_code=config.trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):  # PromptFitter cuts fields at token offsets
        raise AloeError(f"{path}: the scorer needs a fast tokenizer (tokenizer.json)")
    score_ids = resolve_score_ids(tokenizer, config.score_tokens, path)
    fitter = PromptFitter(tokenizer, config.max_length, config.add_special_tokens)
    fitter.check_template(config.complexity_template, ["instruction"])
    fitter.check_template(config.quality_template, ["instruction", "output"])
    engine = EngineConfig(
        type=config.engine,
        model=path,
        dtype=config.dtype,
        device=device,
        trust_remote_code=config.trust_remote_code,
        max_model_len=config.max_length + 1,  # the longest fitted prompt and the one token read after it
        max_batch_tokens=config.max_batch_tokens,
        vllm_args=config.vllm_args,
    )
    backend = build_scorer(engine, llm=llm)
    return ScoringModel(path, fitter, backend, score_ids)


class DeitaBatchScorer:
    """Scores Arrow batches of rows (the body of the Ray actor; usable without Ray).

    Args:
        config: the stage config.
        kind: record kind of the rows (``sft`` or ``preference``).
        models: preloaded ``{path: ScoringModel}`` (tests); by default both models are loaded here,
            once per distinct path.
    """

    def __init__(
        self, config: DeitaScoreConfig, kind: str, models: dict[str, ScoringModel] | None = None
    ) -> None:
        self.config = config
        self.kind = kind
        if models is None:
            models = {}
            device = _device(config)
            for path in dict.fromkeys([config.complexity_model, config.quality_path]):
                models[path] = load_scoring_model(path, config, device)
        self.complexity = models[config.complexity_model]
        self.quality = models[config.quality_path]

    def score_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """``meta["deita"]`` for each row (None for rows already dropped upstream)."""
        owners: list[int] = []
        c_fields: list[dict[str, str]] = []
        q_fields: list[dict[str, str]] = []
        turns_of = [0] * len(rows)
        for i, row in enumerate(rows):
            if row.get("drop_reason") is not None:
                continue
            turns = conversation_turns(row_messages(row, self.kind))
            turns_of[i] = len(turns)
            for turn in turns:
                owners.append(i)
                c_fields.append({"instruction": turn.instruction})
                q_fields.append({"instruction": turn.instruction, "output": turn.response})
        c_scores, q_scores, cut = self._score(c_fields, q_fields)
        return _assemble(rows, turns_of, owners, c_scores, q_scores, cut)

    def _score(self, c_fields: list, q_fields: list) -> tuple[np.ndarray, np.ndarray, list[bool]]:
        config = self.config
        c_ids, c_cut = self.complexity.fitter.fit_all(config.complexity_template, c_fields)
        q_ids, q_cut = self.quality.fitter.fit_all(config.quality_template, q_fields)
        if self.complexity is self.quality:
            # One model: both prompt sets go through the same micro-batches (fewer, fuller forwards).
            both = self.complexity.expected_scores(c_ids + q_ids)
            c_scores, q_scores = both[: len(c_ids)], both[len(c_ids) :]
        else:
            c_scores = self.complexity.expected_scores(c_ids)
            q_scores = self.quality.expected_scores(q_ids)
        return c_scores, q_scores, [a or b for a, b in zip(c_cut, q_cut, strict=True)]

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.select([c for c in table.column_names if c != "meta"]).to_pylist()
        results = self.score_rows(rows)
        reasons: list[str | None] = [None] * len(rows)
        details: list[str | None] = [None] * len(rows)
        minimum = self.config.min_score
        for i, result in enumerate(results):
            if result is not None and minimum is not None and result["score"] < minimum:
                reasons[i] = "min_score"
                details[i] = f"DEITA score {result['score']:.4f} < min_score {minimum}"
        return with_annotations(update_meta(table, META_KEY, results), reasons, details)


def _assemble(
    rows: list, turns_of: list[int], owners: list[int], c: np.ndarray, q: np.ndarray, cut: list[bool]
) -> list[dict[str, Any] | None]:
    """Per-row ``meta["deita"]`` from per-turn scores listed in row order."""
    out: list[dict[str, Any] | None] = [
        None if row.get("drop_reason") is not None else {"complexity": [], "quality": [], "truncated": False}
        for row in rows
    ]
    totals = [0.0] * len(rows)
    for k, i in enumerate(owners):
        entry = out[i]
        entry["complexity"].append(round(float(c[k]), 6))
        entry["quality"].append(round(float(q[k]), 6))
        entry["truncated"] = entry["truncated"] or cut[k]
        # DEITA's combination: per-turn product, summed over turns (from the unrounded values).
        totals[i] += float(c[k]) * float(q[k])
    for i, entry in enumerate(out):
        if entry is not None:
            entry["score"] = round(totals[i], 6)
            entry["turns"] = turns_of[i]
    return out


def _device(config: DeitaScoreConfig) -> str:
    import torch

    if config.num_gpus > 0 and torch.cuda.is_available():
        return "cuda"
    torch.set_num_threads(max(1, int(config.cpus_per_actor)))
    return "cpu"


class DeitaScoreStage(Stage):
    """Score complexity x quality (DEITA) into meta["deita"]; drops nothing unless min_score is set."""

    config_class = DeitaScoreConfig
    uses_actor_pool = True
    command = "score"
    config: DeitaScoreConfig

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        config = self.config
        return ds.map_batches(
            DeitaBatchScorer,
            fn_constructor_kwargs={"config": config, "kind": ctx.kind},
            batch_size=config.batch_size,
            batch_format="pyarrow",
            concurrency=config.concurrency,
            num_gpus=config.num_gpus,
            num_cpus=config.cpus_per_actor,
        )
