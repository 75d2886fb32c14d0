"""The vLLM next-token scorer gives what the transformers scorer gives on the tiny model: the same
candidate log-probabilities (full-vocabulary log-softmax) for the same token-id prompts, in order.

Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/infer/test_scoring_vllm.py``. Uses
the session ``vllm_engine`` (one engine per session). Both run fp32 on the same ids; vLLM's CPU kernels
sum in another order than torch's, so values agree to float noise, not bit-exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from aloe_infer.engine import EngineConfig
from aloe_infer.scoring import (
    HFNextTokenScorer,
    NextTokenScorer,
    VllmNextTokenScorer,
    build_scorer,
    resolve_candidate_ids,
)

pytestmark = pytest.mark.vllm

TEXTS = [
    "Which drug is first-line for type 2 diabetes? Answer:",
    "Hi",
    "A 60-year-old has crushing chest pain radiating to the left arm. The next step is option",
    "List causes of acute kidney injury and how to tell them apart. " * 30 + "Score:",
]
LOGPROB_TOLERANCE = 1e-3  # as tests/infer/test_engine_vllm.py (measured there: ~1e-5)
SOFTMAX_TOLERANCE = 1e-4  # the candidates' own distribution, what DEITA and letter scoring read


def softmax(logprobs: np.ndarray) -> np.ndarray:
    z = np.exp(logprobs - logprobs.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def scorers(vllm_engine, tiny_model_dir) -> Iterator[tuple[NextTokenScorer, NextTokenScorer]]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vllm = build_scorer(EngineConfig(type="vllm", model=str(tiny_model_dir)), llm=vllm_engine)
    hf = build_scorer(EngineConfig(model=str(tiny_model_dir), max_batch_tokens=512))
    assert isinstance(vllm, VllmNextTokenScorer) and isinstance(hf, HFNextTokenScorer)
    yield vllm, hf
    vllm.close()  # wraps the shared engine: close must leave it running
    torch.set_num_threads(threads)


def test_vllm_candidate_logprobs_equal_the_hf_scorer(scorers):
    vllm, hf = scorers
    prompts = [hf.tokenizer(t)["input_ids"] for t in TEXTS]
    assert [vllm.tokenizer(t)["input_ids"] for t in TEXTS] == prompts
    assert max(len(p) for p in prompts) > 300  # a long prompt among short ones
    for names in (["1", "2", "3", "4", "5", "6"], ["A", "B", "C", "D", "E"]):
        ids = resolve_candidate_ids(hf.tokenizer, names)
        v = vllm.candidate_logprobs(prompts, ids)
        h = hf.candidate_logprobs(prompts, ids)
        assert v.shape == h.shape == (len(prompts), len(ids)) and v.dtype == np.float64
        np.testing.assert_allclose(v, h, atol=LOGPROB_TOLERANCE, rtol=0)
        np.testing.assert_allclose(softmax(v), softmax(h), atol=SOFTMAX_TOLERANCE, rtol=0)
        assert np.ptp(h, axis=0).max() > 1e-3  # the prompts are not scored alike
    assert vllm.candidate_logprobs([], [1, 2]).shape == (0, 2)


def test_closing_a_wrapping_scorer_leaves_the_shared_engine_running(vllm_engine, tiny_model_dir):
    scorer = build_scorer(EngineConfig(type="vllm", model=str(tiny_model_dir)), llm=vllm_engine)
    scorer.close()
    again = build_scorer(EngineConfig(type="vllm", model=str(tiny_model_dir)), llm=vllm_engine)
    ids = resolve_candidate_ids(again.tokenizer, ["A", "B"])
    assert again.candidate_logprobs([again.tokenizer("Hi")["input_ids"]], ids).shape == (1, 2)
