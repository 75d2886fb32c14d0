"""Model cards (aloe_train.cards): hyperparameters from the training config, the eval table from
`aloe eval run`'s results.json, the data release, and a card regenerated from the folder alone."""

from __future__ import annotations

import json
from pathlib import Path

from aloe_core.config import load_config
from aloe_infer.eval.results import aggregates, score
from aloe_train.cards import FACTS, training_facts, write_model_card
from aloe_train.sft.config import SFTConfig

REPO = Path(__file__).resolve().parents[2]


def results_json(strategy: str, correct: dict[str, list[bool]]) -> dict:
    """A results.json as `aloe eval run` writes it, scored by the harness's own functions."""
    benchmarks = {}
    for name, flags in correct.items():
        preds = [{"correct": c, "prediction": "A"} for c in flags]
        benchmarks[name] = score(preds) | {"skipped": [], "files": [f"{name}_test.json"]}
    return {
        "model": "m",
        "engine": "hf",
        "strategy": strategy,
        "split": "test",
        "chat_template": True,
        "benchmarks": benchmarks,
        "aggregates": aggregates(benchmarks),
        "questions": 8,
        "config": {},
    }


def test_sft_card_has_hyperparameters_release_and_eval_table(tmp_path):
    config = load_config(SFTConfig, REPO / "configs/train/tiny_sft_cpu.yaml")
    stats = {
        "source": {
            "release": "aloe-sample",
            "version": "1.2.0",
            "license": "apache-2.0",
            "path": "runs/release",
            "split": "train",
            "rows": 218,
        },
        "rows": {"train": {"ok": 200}},
    }
    facts = training_facts(
        "sft",
        title="t",
        base_model="runs/tiny",
        config=config.model_dump(mode="json"),
        data=stats,
        recipe="aloe SFT recipe.",
        results="10 steps.",
    )
    model = tmp_path / "model"
    model.mkdir()
    card = write_model_card(model, kind="sft", facts=facts).read_text()
    assert card.startswith("---\nlicense: unknown\nbase_model: runs/tiny\n")
    assert "datasets:\n- aloe-sample\n" in card
    assert "Data release **aloe-sample** version **1.2.0**" in card
    t = config.train
    workers = config.scaling.num_workers
    assert f"| learning rate | `{config.optim.lr}` |" in card
    assert f"| global batch (rows) | `{t.micro_batch_size * t.grad_accum_steps * workers}` |" in card
    assert f"| max length (tokens) | `{config.data.max_length}` |" in card
    for heading in ("Intended use", "Out-of-scope use", "Bias, risks and limitations", "Evaluation"):
        assert f"## {heading}" in card
    assert "Impersonation of healthcare professionals" in card and "Not evaluated yet." in card

    zero = results_json("zero-shot", {"medqa": [True, False, True, True], "pubmedqa": [False] * 4})
    medprompt = results_json("medprompt", {"medqa": [True] * 4, "pubmedqa": [True, False, False, False]})
    (tmp_path / "zs.json").write_text(json.dumps(zero))
    write_model_card(
        model, kind="sft", eval_results=[tmp_path / "zs.json", medprompt]
    )  # facts from the folder
    card = (model / "README.md").read_text()
    low, high = zero["benchmarks"]["medqa"]["ci95"]
    header = "| benchmark | zero-shot (test) | medprompt (test) |"
    assert header in card
    assert f"| `medqa` | 0.750 [{low:.3f}, {high:.3f}] (n=4) | 1.000 [" in card
    assert "| **multimedqa** | 0.375 | 0.625 |" in card  # (3 + 0) / 8 and (4 + 1) / 8
    assert f"| learning rate | `{config.optim.lr}` |" in card  # kept from aloe_card.json
    assert json.loads((model / FACTS).read_text())["evaluations"][0]["strategy"] == "zero-shot"
