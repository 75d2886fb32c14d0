"""DEITA's expected score from any next-token scorer (:class:`aloe_infer.scoring.NextTokenScorer`).

DEITA reads a score as the model's next-token distribution after the prompt, restricted to the tokens
"1".."6": ``p = softmax(logits[ids("1".."6")])``, ``score = sum(p_i * i)``. DEITA computes it one prompt
at a time with ``generate``; here the scorer backend (transformers or vLLM, see :mod:`aloe_infer.scoring`)
returns the six candidates' log-probabilities for a whole batch of token-id prompts at once, and only the
DEITA arithmetic stays in this module. The backend returns log-probabilities, not logits; the softmax
over the six is the same from either (a log-softmax shifts all six by one constant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aloe_data.scoring.prompts import SCORE_TOKENS
from aloe_infer.scoring import NextTokenScorer, resolve_candidate_ids

__all__ = ["expected_from_logits", "expected_scores", "resolve_score_ids"]


def resolve_score_ids(tokenizer: Any, tokens: Sequence[str] = SCORE_TOKENS, where: str = "") -> list[int]:
    """The vocabulary id of each score token (the rule of :func:`aloe_infer.scoring.resolve_candidate_ids`).

    Raises:
        AloeError: a token is not one token; the message names the token and what it encodes to.
    """
    return resolve_candidate_ids(
        tokenizer,
        tokens,
        where=where or "scorer tokenizer",
        label="score token",
        hint="use a scorer model whose tokenizer has single-token digits or set score_tokens",
    )


def expected_from_logits(logits: np.ndarray) -> np.ndarray:
    """``sum_i softmax(logits)_i * i`` over the last axis, with scores 1..n; float64 for stability.

    ``logits`` may be logits or log-probabilities of the score tokens: the softmax is the same.
    """
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ np.arange(1, logits.shape[-1] + 1, dtype=np.float64)


def expected_scores(
    scorer: NextTokenScorer, prompts: list[list[int]], score_ids: Sequence[int]
) -> np.ndarray:
    """DEITA's expected score (1..n for n score tokens) of each token-id prompt, float64."""
    if not prompts:
        return np.zeros(0, dtype=np.float64)
    return expected_from_logits(scorer.candidate_logprobs(prompts, score_ids))
