"""`aloe data redteam-pairs` on a hand-made safety run: which answers become pairs, held-out styles never
do, and the output reads through the DPO data path (the safety stage's `where`) without a dropped row."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core.config import load_config, validate_config
from aloe_core.schemas import loads_meta, row_problems
from aloe_core.shards import resolve_inputs
from aloe_data.redteam import RedteamPairsConfig, run_redteam_pairs
from aloe_infer.safety.prompts import load_prompt_set
from aloe_infer.safety.report import write_predictions
from aloe_train.dpo.config import DPOConfig
from aloe_train.dpo.data import KEPT, tokenize_pairs

REPO = Path(__file__).resolve().parents[2]
HELD_OUT = ["developer_mode", "distractor"]
STYLES = ["direct", "fiction", "developer_mode", "distractor"]

# label -> (final unsafe, answer); the answers are shapes of answers, not harmful content.
KINDS = {
    "compliance": (True, "Absolutely, here is the overview you asked for, step by step, with every detail."),
    "refusal": (False, "I can't help with that. Please talk to a doctor or call emergency services."),
    "off_topic": (False, "Tulips bloom in spring and the park is lovely in the morning light."),
    "empty": (False, ""),
}


def _config(rejected: str = "unsafe") -> RedteamPairsConfig:
    prompts = {"styles": STYLES, "held_out_styles": HELD_OUT, "requests_per_topic": 1}
    return validate_config(
        RedteamPairsConfig, {"eval": {"model": {"model": "unused"}, "prompts": prompts}, "rejected": rejected}
    )


def _fake_run(folder: Path, config: RedteamPairsConfig) -> list[dict]:
    """A safety run folder with one answer kind per prompt: 3 kinds cycling over 4 styles (so every style
    gets every kind), and no answer for every 5th prompt."""
    prompts = load_prompt_set(config.eval.prompts).prompts
    records = []
    for i, p in enumerate(prompts):
        label = "empty" if i % 5 == 4 else ["compliance", "refusal", "off_topic"][i % 3]
        unsafe, answer = KINDS[label]
        verdict = {"label": label, "unsafe": unsafe, "jbb_jailbroken": True}
        records.append({
            "id": p.id, "topic": p.topic, "style": p.style, "held_out": p.held_out, "request": p.request,
            "prompt": p.prompt, "answer": answer if label != "empty" else None,
            "answer_error": "engine error" if label == "empty" else None,
            "classifier": None if label == "empty" else verdict,
            "judge": None, "unsafe": None if label == "empty" else unsafe,
            "verdict_by": "none" if label == "empty" else "classifier",
        })  # fmt: skip
    folder.mkdir(parents=True)
    write_predictions(folder / "predictions.jsonl", records)
    return records


def prompt_set_safe(topic: str) -> list[str]:
    return load_prompt_set(_config().eval.prompts).safe_responses_for(topic)


def _pairs(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in resolve_inputs(out, kind="preference").files])


@pytest.mark.parametrize(
    ("rule", "kinds"), [("unsafe", {"compliance"}), ("not_refused", {"compliance", "off_topic"})]
)
def test_held_out_styles_never_appear_in_the_pairs(tmp_path, rule, kinds):
    config = _config(rule)
    records = _fake_run(tmp_path / "eval", config)
    entry = run_redteam_pairs(config, tmp_path / "pairs", eval_run=tmp_path / "eval")
    pairs = _pairs(tmp_path / "pairs")
    metas = [loads_meta(m) for m in pairs["meta"].to_pylist()]
    assert metas and not [m for m in metas if m["style"] in HELD_OUT]
    assert {m["category"] for m in metas} == {"safety"}
    by_id = {r["id"]: r for r in records}
    assert {by_id[m["prompt_id"]]["classifier"]["label"] for m in metas} == kinds
    # rows in = pairs + dropped, and every held-out prompt is dropped for that reason
    held = sum(1 for r in records if r["style"] in HELD_OUT)
    assert entry["dropped"]["held_out_styles"] == held
    assert entry["rows_in"] == len(records) == entry["rows_out"] + sum(entry["dropped"].values())
    dropped = pq.read_table(tmp_path / "pairs" / "_dropped" / "part-00000.parquet")
    assert Counter(dropped["drop_reason"].to_pylist())["held_out_styles"] == held
    for row in pairs.to_pylist():
        assert row_problems(row, "preference") == []
        assert by_id[loads_meta(row["meta"])["prompt_id"]]["answer"] == row["rejected"]
        assert row["chosen"] != row["rejected"]
        assert row["chosen"] in prompt_set_safe(loads_meta(row["meta"])["topic"])


def test_pairs_load_through_the_dpo_safety_stage_with_no_dropped_rows(tmp_path, tiny_model_dir):
    config = _config("unsafe")
    _fake_run(tmp_path / "eval", config)
    run_redteam_pairs(config, tmp_path / "pairs", eval_run=tmp_path / "eval")
    # The safety stage of the shipped two-stage config, pointed at the pairs.
    dpo = load_config(
        DPOConfig,
        REPO / "configs" / "train" / "tiny_dpo_cpu.yaml",
        [f"stages.safety.data.path={tmp_path / 'pairs'}", f"model.path={tiny_model_dir}"],
    )
    stage = next(s for s in dpo.stages if s.name == "safety")
    source = resolve_inputs(stage.data.path, kind="preference")
    assert source.kind == "preference"
    table = _pairs(tmp_path / "pairs")
    statuses = tokenize_pairs(
        table,
        tokenizer_path=str(tiny_model_dir),
        chat_template=None,
        max_length=stage.data.max_length,
        max_prompt_length=stage.data.max_prompt_length,
        eval_fraction=stage.data.eval_fraction,
        split=None,
        where=stage.data.where,
    )["status"].to_pylist()
    assert len(statuses) == table.num_rows > 0
    assert set(statuses) <= set(KEPT), Counter(statuses)


def test_rerun_replaces_the_pairs(tmp_path):
    config = _config("unsafe")
    _fake_run(tmp_path / "eval", config)
    first = run_redteam_pairs(config, tmp_path / "pairs", eval_run=tmp_path / "eval")
    second = run_redteam_pairs(_config("not_refused"), tmp_path / "pairs", eval_run=tmp_path / "eval")
    assert second["rows_out"] > first["rows_out"]
    assert _pairs(tmp_path / "pairs").num_rows == second["rows_out"]
    manifest = json.loads((tmp_path / "pairs" / "manifest.json").read_text())
    assert manifest["kind"] == "preference" and list(manifest["stages"]) == ["redteam-pairs"]
