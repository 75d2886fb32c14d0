"""The eval harness on the vLLM engine: zero-shot equals the transformers engine's letters, and Medprompt
runs end to end over the real files in ../shared with the real MiniLM encoder.

Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/infer/test_eval_vllm.py``. The
session's one ``vllm_engine`` is injected into the local-mode passes (starting an engine per test would
cost a minute each on CPU); a Ray-mode pass would start its own engine inside the actor, as users run it.
"""

from __future__ import annotations

import pytest

from aloe_infer.engine import EngineConfig
from aloe_infer.eval.config import EvalConfig
from aloe_infer.eval.results import read_predictions
from aloe_infer.eval.run import run_eval
from aloe_infer.scoring import VllmNextTokenScorer
from aloe_infer.vllm_engine import VllmEngine

pytestmark = pytest.mark.vllm

LOCAL = {"mode": "local", "batch_size": 16}


@pytest.fixture(scope="module")
def engines(vllm_engine, tiny_model_dir):
    config = EngineConfig(type="vllm", model=str(tiny_model_dir), dtype="float32")
    tokenizer = VllmEngine(config, llm=vllm_engine).tokenizer
    return {
        "generate": VllmEngine(config, llm=vllm_engine),
        "score": VllmNextTokenScorer(vllm_engine, tokenizer),
    }


def _config(model, benchmarks, engine_type, **fields) -> EvalConfig:
    engine = {"type": engine_type, "model": str(model), "dtype": "float32"}
    if engine_type == "vllm":
        engine["max_model_len"] = 2048
    return EvalConfig.model_validate(
        {"engine": engine, "benchmarks": str(benchmarks), "actors": LOCAL} | fields
    )


def test_zero_shot_on_vllm_matches_the_transformers_engine(engines, tiny_model_dir, shared_mcqa, tmp_path):
    fields = {"names": ["medqa", "mmlu"], "limit": 3}
    run_eval(_config(tiny_model_dir, shared_mcqa, "vllm", **fields), tmp_path / "vllm", engines=engines)
    run_eval(_config(tiny_model_dir, shared_mcqa, "hf", **fields), tmp_path / "hf")
    ours = read_predictions(tmp_path / "vllm" / "predictions.jsonl")
    reference = read_predictions(tmp_path / "hf" / "predictions.jsonl")
    assert len(ours) == len(reference) == 3 + 18
    for a, b in zip(ours, reference, strict=True):
        assert a["prompt"] == b["prompt"]
        assert a["letter_logprobs"] == pytest.approx(b["letter_logprobs"], abs=1e-3)
        assert a["prediction"] == b["prediction"]


def test_medprompt_end_to_end_on_vllm(engines, tiny_model_dir, shared_mcqa, tmp_path):
    config = _config(
        tiny_model_dir,
        shared_mcqa,
        "vllm",
        strategy="medprompt",
        names=["medqa", "pubmedqa"],
        limit=3,
        generation={"max_tokens": 16, "retry": {"retries": 1}},
        medprompt={"k": 2, "ensemble": 5, "pool_limit": 8, "embedding_pool": LOCAL},
    )
    results = run_eval(config, tmp_path / "run", engines=engines)
    assert results["engine"] == "vllm" and results["pool"]["questions"] == 16
    predictions = read_predictions(tmp_path / "run" / "predictions.jsonl")
    assert len(predictions) == 6
    for p in predictions:
        assert len({tuple(m["order"]) for m in p["members"]}) == 5
        assert all(m["output"] is not None for m in p["members"])
