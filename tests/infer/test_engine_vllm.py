"""The vLLM engine behind the shared interface gives what the transformers engine gives on the tiny model:
same greedy tokens and text, same constrained choices, same stop-string cuts, logprobs within float
noise, and the same row-level errors.

Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/infer/test_engine_vllm.py``. Uses
the session ``vllm_engine`` (one engine per session, max_model_len 2048).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aloe_infer.engine import EngineConfig, load_engine
from aloe_infer.sampling import SamplingParams

pytestmark = pytest.mark.vllm

CONVERSATIONS = [
    [{"role": "user", "content": "Which drug is first-line for type 2 diabetes?"}],
    [
        {"role": "system", "content": "You are a careful clinician."},
        {"role": "user", "content": "A 60-year-old has crushing chest pain. Next step?"},
    ],
    [{"role": "user", "content": "List three causes of acute kidney injury."}],
]
# vLLM's CPU kernels sum in another order than torch: logprobs agree to ~1e-5 (measured), not bit-exactly.
LOGPROB_TOLERANCE = 1e-3


def ascii_piece(text: str) -> str:
    """Three ASCII letters from the middle of ``text`` (a stop string both detokenizers agree on)."""
    return next(
        text[i : i + 3]
        for i in range(5, len(text) - 3)
        if text[i : i + 3].isascii() and text[i : i + 3].isalpha()
    )


@pytest.fixture(scope="module")
def engines(vllm_engine, tiny_model_dir) -> Iterator[tuple]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vllm = load_engine(EngineConfig(type="vllm", model=str(tiny_model_dir)), llm=vllm_engine)
    hf = load_engine(EngineConfig(model=str(tiny_model_dir), max_model_len=vllm.max_model_len))
    yield vllm, hf
    torch.set_num_threads(threads)


def test_greedy_tokens_and_text_equal_the_hf_engine(engines):
    vllm, hf = engines
    params = SamplingParams(max_tokens=16)
    for v, h in zip(vllm.chat(CONVERSATIONS, params), hf.chat(CONVERSATIONS, params), strict=True):
        assert v.prompt_token_ids == h.prompt_token_ids
        assert v.completions[0].token_ids == h.completions[0].token_ids
        assert v.completions[0].text == h.completions[0].text
        assert v.completions[0].finish_reason == h.completions[0].finish_reason


def test_constrained_choice_stop_strings_and_logprobs_agree(engines):
    vllm, hf = engines
    letters = tuple(hf.tokenizer.encode(f" {x}", add_special_tokens=False)[0] for x in "ABCD")
    choice = SamplingParams(max_tokens=1, allowed_token_ids=letters)
    assert [r.completions[0].token_ids for r in vllm.chat(CONVERSATIONS, choice)] == [
        r.completions[0].token_ids for r in hf.chat(CONVERSATIONS, choice)
    ]
    text = hf.chat(CONVERSATIONS[:1], SamplingParams(max_tokens=24, ignore_eos=True))[0].completions[0].text
    word = ascii_piece(text)
    stop = SamplingParams(max_tokens=24, ignore_eos=True, stop=(word,))
    v_cut = vllm.chat(CONVERSATIONS[:1], stop)[0].completions[0]
    assert v_cut.text == hf.chat(CONVERSATIONS[:1], stop)[0].completions[0].text == text[: text.find(word)]
    assert v_cut.finish_reason == "stop" and v_cut.stop_reason == word
    with_logprobs = SamplingParams(max_tokens=5, logprobs=2, ignore_eos=True)
    for v, h in zip(
        vllm.chat(CONVERSATIONS, with_logprobs), hf.chat(CONVERSATIONS, with_logprobs), strict=True
    ):
        for v_step, h_step in zip(v.completions[0].logprobs, h.completions[0].logprobs, strict=True):
            assert set(v_step) == set(h_step)
            for token, value in h_step.items():
                assert v_step[token] == pytest.approx(value, abs=LOGPROB_TOLERANCE)


def test_seeded_samples_are_reproducible_and_batch_independent(engines):
    vllm, _ = engines
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=11, ignore_eos=True)
    alone = vllm.chat(CONVERSATIONS[:1], params)[0].completions[0].token_ids
    others = [params.model_copy(update={"seed": s}) for s in (1, 2)]
    assert vllm.chat(CONVERSATIONS, [params, *others])[0].completions[0].token_ids == alone
    assert (
        vllm.chat(CONVERSATIONS[:1], params.model_copy(update={"seed": 12}))[0].completions[0].token_ids
        != alone
    )


def test_too_long_prompt_is_a_row_error(engines):
    vllm, hf = engines
    too_long = list(range(10, 10 + vllm.max_model_len + 5))
    results = vllm.generate(["Hi", too_long], SamplingParams(max_tokens=4))
    assert results[0].ok and results[0].completions[0].token_ids
    assert results[1].error == hf.generate([too_long], SamplingParams(max_tokens=4))[0].error
    assert results[1].error.startswith(f"prompt has {len(too_long)} tokens but max_model_len is 2048")
