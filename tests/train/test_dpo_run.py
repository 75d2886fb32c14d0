"""Two-stage DPO end to end: 2 CPU workers (Ray Train V2 + FSDP2/gloo) on the embedded corpus's pairs.

Stage ``general`` trains on the factual/helpfulness pairs, stage ``safety`` on the red-teaming pairs
(``data.where`` on the category the preference reader keeps in meta), starting from stage 1's model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from aloe_core.config import validate_config
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.runner import run_pipeline
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline
from aloe_train.dpo.config import DPOConfig
from aloe_train.dpo.data import collate_pairs, tokenize_pairs
from aloe_train.dpo.recipe import pair_logps, run_dpo
from aloe_train.metrics import read_metrics

pytestmark = pytest.mark.slow  # a two-stage DPO run on 2 workers (module fixture): CI's second step

GENERAL = ["factual", "unhelpful"]
SAFETY = ["safety_refusal", "unsafe_advice"]


@pytest.fixture(scope="module")
def preference_run(ray_session, tmp_path_factory) -> Path:
    """The corpus's preference file as a pipeline run (ingest only: the reader's rows as trained on)."""
    root = tmp_path_factory.mktemp("dpo-data")
    write_sample(root / "sample", rows=700, seed=2)
    config = validate_config(PipelineConfig, sample_pipeline(root / "sample", "preference", stages=[]))
    run_pipeline(config, root / "run")
    return root / "run"


def dpo_config(model: Path, data: Path, out: Path) -> DPOConfig:
    data_section: dict[str, Any] = {"path": str(data), "max_length": 256, "max_prompt_length": 128}
    return validate_config(
        DPOConfig,
        {
            "model": {"path": str(model)},
            "output_dir": str(out),
            "stages": [
                {
                    "name": "general",
                    "data": data_section | {"where": {"category": GENERAL}},
                    "loss": {"type": "sigmoid", "beta": 0.1},
                    "optim": {"lr": 5e-3, "warmup_ratio": 0.1},
                    "train": {"epochs": 2, "micro_batch_size": 2, "grad_accum_steps": 2},
                },
                {
                    "name": "safety",
                    "data": data_section | {"where": {"category": SAFETY}},
                    "loss": {"type": "sigmoid", "beta": 0.1, "label_smoothing": 0.05, "sft_weight": 0.1},
                    "optim": {"lr": 2e-3, "warmup_ratio": 0.1},
                    "train": {"epochs": 2, "micro_batch_size": 2, "grad_accum_steps": 2},
                },
            ],
            "scaling": {"num_workers": 2, "max_failures": 0},
            "export": {"dtype": "float32"},
        },
    )


@pytest.fixture(scope="module")
def two_stages(tiny_model_dir, preference_run, tmp_path_factory) -> tuple[DPOConfig, dict[str, Any]]:
    config = dpo_config(tiny_model_dir, preference_run, tmp_path_factory.mktemp("dpo"))
    return config, run_dpo(config)


def stage_records(out: str, stage: str) -> list[dict[str, Any]]:
    return [r for r in read_metrics(Path(out) / stage / "metrics.jsonl") if "loss" in r]


def training_pairs(model_dir: Path, run: Path, categories: list[str]) -> pa.Table:
    files = sorted((run / "ingest").glob("*.parquet")) if (run / "ingest").is_dir() else []
    files = files or sorted(p for p in run.rglob("*.parquet") if "_dropped" not in p.parts)
    rows = pa.concat_tables([pa.parquet.read_table(f) for f in files])
    table = tokenize_pairs(
        rows,
        tokenizer_path=str(model_dir),
        chat_template=None,
        max_length=256,
        max_prompt_length=128,
        eval_fraction=0.0,
        split=None,
        where={"category": categories},
    )
    return table.filter(pa.compute.equal(table["weight"], 1.0))


def implicit_reward_accuracy(policy_dir: Path, reference_dir: Path, pairs: pa.Table) -> float:
    """Share of pairs where the policy raised chosen over rejected relative to the reference."""
    zeros = pa.array([0.0] * pairs.num_rows)
    table = pairs.append_column("ref_chosen_logps", zeros).append_column("ref_rejected_logps", zeros)
    batch = collate_pairs(table, 0)
    with torch.no_grad():
        policy = pair_logps(AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32), batch)
        ref = pair_logps(AutoModelForCausalLM.from_pretrained(reference_dir, dtype=torch.float32), batch)
    margin = (policy.chosen - ref.chosen) - (policy.rejected - ref.rejected)
    return float((margin > 0).float().mean())


def test_both_stages_train_and_reward_accuracy_rises(two_stages, tiny_model_dir, preference_run):
    config, summary = two_stages
    out = Path(config.output_dir)
    assert [s["stage"] for s in summary["stages"]] == ["general", "safety"]
    general_model, safety_model = (Path(s["model"]) for s in summary["stages"])
    for stage in ("general", "safety"):
        records = stage_records(config.output_dir, stage)
        stage_summary = json.loads((out / stage / "summary.json").read_text())
        assert stage_summary["steps"] == stage_summary["planned_steps"] == len(records) >= 6
        # Step 1 runs with policy == reference (the precomputed log-probs are the starting model's): the
        # rewards are 0 up to float noise between the two forward passes, so the DPO loss is log 2
        # (the safety stage adds an SFT term on top, hence no loss check there).
        first = records[0]
        assert abs(first["rewards/margins"]) < 1e-3, (stage, first)
        if stage == "general":
            assert abs(first["loss"] - math.log(2)) < 1e-3, first
        accuracy = [r["rewards/accuracies"] for r in records]
        assert sum(accuracy[-3:]) / 3 >= 0.75 and sum(accuracy[-3:]) / 3 > accuracy[0], (stage, accuracy)
        margins = [r["rewards/margins"] for r in records]
        assert min(margins[-3:]) > 1.0, (stage, margins)
    # Stage 2 started from stage 1's export and used it as its reference.
    stage2_config = json.loads((out / "safety" / "summary.json").read_text())
    assert stage2_config["model"] == str(safety_model)
    assert f"base_model: {general_model}" in (safety_model / "README.md").read_text()
    # Independent check on the exported weights: the trained policies prefer the chosen answers.
    general_pairs = training_pairs(tiny_model_dir, preference_run, GENERAL)
    safety_pairs = training_pairs(tiny_model_dir, preference_run, SAFETY)
    assert general_pairs.num_rows >= 10 and safety_pairs.num_rows >= 10
    assert implicit_reward_accuracy(general_model, tiny_model_dir, general_pairs) >= 0.8
    assert implicit_reward_accuracy(safety_model, general_model, safety_pairs) >= 0.8


def test_data_stats_count_every_row_and_the_split_by_category(two_stages):
    config, _ = two_stages
    out = Path(config.output_dir)
    general = json.loads((out / "general" / "data_stats.json").read_text())["rows"]
    safety = json.loads((out / "safety" / "data_stats.json").read_text())["rows"]
    total_g = sum(general["train"].values())
    total_s = sum(safety["train"].values())
    assert total_g == total_s  # both stages read the same run; each selects its own categories
    kept_g = total_g - general["train"].get("not_selected", 0)
    kept_s = total_s - safety["train"].get("not_selected", 0)
    assert general["train"]["not_selected"] == kept_s and safety["train"]["not_selected"] == kept_g


def test_the_final_export_loads_and_generates(two_stages):
    _, summary = two_stages
    model_dir = Path(summary["model"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Can I double my warfarin dose?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert "dpo" in (model_dir / "README.md").read_text()
