"""DEITA's expected score from a vLLM engine (the GPU path for large runs).

Prompts are passed as token ids produced by the same :class:`~aloe_data.scoring.prompts.PromptFitter`
the transformers path uses, so both engines read the same tokens. One output token is generated per
prompt and ``SamplingParams.logprob_token_ids`` asks vLLM for the *raw* log-probabilities of exactly the
six score tokens at that position; the softmax over those six equals the softmax over their logits (a
log-softmax only shifts all six by the same constant). vLLM is imported lazily: it is an optional extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aloe_core.errors import MissingExtraError
from aloe_data.scoring.scorer import expected_from_logits


def import_vllm() -> Any:
    """The ``vllm`` module; raises MissingExtraError naming aloe-infer's ``vllm`` extra if absent."""
    try:
        import vllm
    except ImportError:
        raise MissingExtraError("vllm", "vllm", "aloe-infer") from None
    return vllm


def sampling_params(score_ids: Sequence[int]) -> Any:
    """One greedy token per prompt, with the raw logprobs of exactly ``score_ids`` returned."""
    vllm = import_vllm()
    return vllm.SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=list(score_ids))


def vllm_score_logprobs(llm: Any, prompts: list[list[int]], score_ids: Sequence[int]) -> np.ndarray:
    """Log-probabilities of ``score_ids`` after each token-id prompt, shape ``(len(prompts), 6)``."""
    if not prompts:
        return np.zeros((0, len(score_ids)), dtype=np.float64)
    inputs = [{"prompt_token_ids": list(p)} for p in prompts]
    outputs = llm.generate(inputs, sampling_params(score_ids), use_tqdm=False)
    out = np.empty((len(prompts), len(score_ids)), dtype=np.float64)
    for row, result in enumerate(outputs):
        position = result.outputs[0].logprobs[0]
        out[row] = [position[i].logprob for i in score_ids]
    return out


class VllmScorer:
    """A vLLM engine that turns token-id prompts into DEITA expected scores.

    Args:
        model_path: local model folder; ``tokenizer`` must be the one the prompts were built with.
        score_ids: the six score token ids (see :func:`aloe_data.scoring.scorer.resolve_score_ids`).
        llm: an existing ``vllm.LLM`` to use instead of starting one (tests share one engine).
        engine_args: extra ``vllm.LLM`` keyword arguments (``max_model_len``, ``dtype``, ...).
    """

    def __init__(
        self,
        model_path: str,
        score_ids: Sequence[int],
        *,
        llm: Any = None,
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        vllm = import_vllm()
        self.score_ids = list(score_ids)
        self.llm = llm if llm is not None else vllm.LLM(model=model_path, **(engine_args or {}))

    def expected_scores(self, prompts: list[list[int]]) -> np.ndarray:
        if not prompts:
            return np.zeros(0, dtype=np.float64)
        return expected_from_logits(vllm_score_logprobs(self.llm, prompts, self.score_ids))
