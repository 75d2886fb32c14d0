"""vLLM (CPU) serves the tiny model exactly like transformers: same chat rendering, same greedy tokens.

Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm

CONVERSATIONS = [
    [{"role": "user", "content": "Which drug is first-line for type 2 diabetes?"}],
    [
        {"role": "system", "content": "You are a careful clinician."},
        {"role": "user", "content": "A 60-year-old has crushing chest pain. Next step?"},
    ],
]
N_TOKENS = 8


def _transformers_greedy(model_dir: Path) -> list[tuple[list[int], list[int]]]:
    """Per conversation: (prompt ids, up to N_TOKENS greedy new ids) from transformers in fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    results = []
    for conversation in CONVERSATIONS:
        enc = tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        out = model.generate(**enc, max_new_tokens=N_TOKENS, do_sample=False)
        prompt = enc["input_ids"][0].tolist()
        results.append((prompt, out[0, len(prompt) :].tolist()))
    return results


def test_vllm_chat_greedy_matches_transformers(vllm_engine, tiny_model_dir: Path) -> None:
    from vllm import SamplingParams

    outputs = vllm_engine.chat(
        CONVERSATIONS, SamplingParams(temperature=0.0, max_tokens=N_TOKENS), use_tqdm=False
    )
    expected = _transformers_greedy(tiny_model_dir)
    assert any(len(new) == N_TOKENS for _, new in expected)  # at least one full-length comparison
    assert len(outputs) == len(expected)
    for output, (prompt, new) in zip(outputs, expected, strict=True):
        assert list(output.prompt_token_ids) == prompt  # same template rendering and tokenization
        # Equal lists also mean vLLM stops on the same eos ids (generation_config) as transformers.
        assert list(output.outputs[0].token_ids) == new
