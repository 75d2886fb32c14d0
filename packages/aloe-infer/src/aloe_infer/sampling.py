"""What a caller asks an engine for (:class:`SamplingParams`) and what every engine returns.

Both engines (:mod:`aloe_infer.hf_engine`, :mod:`aloe_infer.vllm_engine`) take the same parameters and
return the same :class:`GenerationResult` per prompt, so a pipeline stage can switch engines by config.

Semantics shared by both engines (they follow vLLM's):

* ``temperature == 0`` is greedy decoding; otherwise logits are divided by the temperature and then cut
  by ``top_k`` (0 = off) and ``top_p`` (1 = off) before sampling.
* ``seed`` makes one request reproducible on one engine, whatever else is in the batch; ``None`` draws
  from the engine's own generator. Engines differ in their random streams: the same seed on the hf and
  vLLM engines gives different samples (greedy output is the same up to float rounding).
* ``stop``: generation ends at the first occurrence of any string; the returned ``text`` ends before it
  (``token_ids`` keep every generated token). End-of-sequence tokens end generation too unless
  ``ignore_eos`` (benchmarks use it to generate exactly ``max_tokens``).
* ``logprobs = k``: per generated token, the log-probabilities (of the model's raw distribution, before
  temperature/top-k/top-p) of the ``k`` most likely tokens plus the sampled one.
* ``allowed_token_ids``: every generated token is one of these (constrained choice, e.g. an answer
  letter); ``None`` allows the whole vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from aloe_core.config import StrictModel

FinishReason = Literal["stop", "length"]


class SamplingParams(StrictModel):
    """How to sample one request (see the module docstring for the exact semantics)."""

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)  # 0 = off
    n: int = Field(1, ge=1)  # completions per prompt
    seed: int | None = Field(None, ge=0)
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    logprobs: int | None = Field(None, ge=0)
    allowed_token_ids: tuple[int, ...] | None = None

    @field_validator("stop")
    @classmethod
    def _non_empty_stops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    @field_validator("allowed_token_ids")
    @classmethod
    def _some_tokens(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or min(value) < 0):
            raise ValueError("allowed_token_ids must list at least one non-negative token id")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Completion:
    """One generated sequence.

    ``token_ids`` are every generated token (including an end-of-sequence token or the tokens of a stop
    string); ``text`` is their decoding without special tokens, cut before the stop string.
    ``logprobs[i]`` maps token id -> log-probability at generated position ``i`` (only when requested).
    """

    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    stop_reason: str | int | None = None  # the stop string or eos id that ended it; None for length
    logprobs: tuple[dict[int, float], ...] | None = None
    cumulative_logprob: float | None = None


@dataclass(frozen=True)
class GenerationResult:
    """Everything an engine returns for one prompt: ``n`` completions, or an ``error``.

    A row-level failure (prompt longer than the context, a request the engine rejects) is reported
    here with ``completions == ()`` instead of failing the whole batch; callers must check ``error``.
    """

    prompt_token_ids: tuple[int, ...]
    completions: tuple[Completion, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def generated_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.completions)
