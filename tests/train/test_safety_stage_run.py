"""The red-teaming loop end to end on the tiny model: safety eval (Ray Data actors), redteam pairs, the
DPO safety stage of the shipped two-stage config (2 Ray Train CPU workers), safety eval again, compare.

The tiny model is random-weight: its answers are off-topic noise, so pairs use ``rejected:
not_refused`` (every answer that is not a refusal; the default ``unsafe`` would keep none) and the
judge (the tiny model itself) never parses, so every verdict is the classifier's. What is checked is
the plumbing a real model goes through: both reports written, the pairs read by the DPO data path with
no dropped or unselected row, held-out styles absent from training, the trained model evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aloe_core.config import load_config, validate_config
from aloe_data.redteam import RedteamPairsConfig, run_redteam_pairs
from aloe_infer.safety.report import compare_runs, read_predictions
from aloe_infer.safety.run import SafetyConfig, run_safety_eval
from aloe_train.dpo.config import DPOConfig
from aloe_train.dpo.data import KEPT
from aloe_train.dpo.recipe import run_dpo

pytestmark = pytest.mark.slow  # Ray Data generation twice and a DPO stage on 2 workers

REPO = Path(__file__).resolve().parents[2]
HELD_OUT = ["distractor"]


def safety_config(model: Path) -> SafetyConfig:
    return validate_config(
        SafetyConfig,
        {
            "model": {"model": str(model)},
            "prompts": {
                "styles": ["direct", "refusal_suppression", "fiction", "distractor"],
                "held_out_styles": HELD_OUT,
                "requests_per_topic": 1,
            },
            "generation": {"max_tokens": 24},
            # 2 actors x 0.5 CPU: a pool holding every CPU of the local Ray leaves none to feed it (stalls).
            "pool": {"mode": "ray", "concurrency": 2, "cpus_per_actor": 0.5, "batch_size": 16},
            "judge": {"engine": {"model": str(model)}, "max_tokens": 16},
        },
    )


def test_eval_pairs_safety_stage_eval_again(ray_session, tiny_model_dir, tmp_path):
    before = run_safety_eval(safety_config(tiny_model_dir), tmp_path / "safety-before")
    assert before["prompts"]["n"] == 12 * 4 and before["answer_errors"] == 0

    pairs_config = RedteamPairsConfig(eval=safety_config(tiny_model_dir), rejected="not_refused")
    entry = run_redteam_pairs(pairs_config, tmp_path / "pairs", eval_run=tmp_path / "safety-before")
    assert entry["dropped"]["held_out_styles"] == 12 and entry["rows_out"] > 0

    dpo = load_config(
        DPOConfig,
        REPO / "configs" / "train" / "tiny_dpo_cpu.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"output_dir={tmp_path / 'dpo'}",
            f"stages.safety.data.path={tmp_path / 'pairs'}",
            "stages.safety.train.epochs=1",
            "scaling.max_failures=0",
        ],
    )
    dpo = dpo.model_copy(update={"stages": [s for s in dpo.stages if s.name == "safety"]})
    assert dpo.scaling.num_workers == 2
    summary = run_dpo(dpo)
    stats = json.loads((tmp_path / "dpo" / "safety" / "data_stats.json").read_text())
    # Every pair kept (long jailbreak prompts are cut to the config's max_prompt_length: kept, counted
    # as truncated_prompt); none dropped, none left out by the stage's `where`.
    rows = stats["rows"]["train"]
    assert set(rows) <= set(KEPT) and sum(rows.values()) == entry["rows_out"], stats["rows"]
    assert stats["train_pairs"]["pairs"] == entry["rows_out"]

    after_model = Path(summary["model"])
    after = run_safety_eval(safety_config(after_model), tmp_path / "safety-after")
    for run in ("safety-before", "safety-after"):
        assert (tmp_path / run / "results.json").is_file() and (tmp_path / run / "heatmap.png").is_file()
    assert after["model"] == str(after_model) and after["prompts"]["n"] == before["prompts"]["n"]
    result = compare_runs(tmp_path / "safety-before", tmp_path / "safety-after", tmp_path / "compare")
    assert result["paired"] == 48 and (tmp_path / "compare" / "compare.png").is_file()
    # Training changed the model: at least one answer differs.
    answers = {r["id"]: r["answer"] for r in read_predictions(tmp_path / "safety-before")}
    assert any(answers[r["id"]] != r["answer"] for r in read_predictions(tmp_path / "safety-after"))
