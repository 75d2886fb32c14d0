"""DEITA scores from vLLM equal the transformers scores on the tiny model (same prompts, same tokens).

Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/data/test_deita_vllm.py``. Uses the
session ``vllm_engine`` (one engine per session). Tolerance: 1e-4 on each 1..6 score (measured: 4e-6).
Both engines run fp32 on the same token ids, but vLLM's CPU attention and matmul kernels sum in a
different order than torch's SDPA, which moves the expected scores in the 6th decimal.
"""

from __future__ import annotations

import pytest

from aloe_core.schemas import dumps_meta
from aloe_data.stages.deita import DeitaBatchScorer, DeitaScoreConfig, load_scoring_model

pytestmark = pytest.mark.vllm

TOLERANCE = 1e-4


def chat(turns: list[tuple[str, str]], n: int) -> dict:
    messages = []
    for question, answer in turns:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"id": f"r{n}", "messages": messages, "meta": dumps_meta({})}


ROWS = [
    chat([("What is the first-line drug for type 2 diabetes?", "Metformin.")], 0),
    chat([("Explain how warfarin works.", "It blocks vitamin K epoxide reductase.")], 1),
    chat(
        [
            ("Why are ACE inhibitors avoided in pregnancy?", "They harm fetal kidneys."),
            ("And ARBs?", "Also contraindicated, for the same reason."),
        ],
        2,
    ),
    chat([("List causes of acute kidney injury. " * 20, "Prerenal, intrinsic and postrenal. " * 20)], 3),
]


def test_vllm_scores_equal_transformers_scores(vllm_engine, tiny_model_dir):
    path = str(tiny_model_dir)
    hf = DeitaBatchScorer(DeitaScoreConfig(complexity_model=path, max_length=1024), "sft")
    config = DeitaScoreConfig(complexity_model=path, engine="vllm", max_length=1024)
    model = load_scoring_model(path, config, "cpu", llm=vllm_engine)
    vllm_scorer = DeitaBatchScorer(config, "sft", models={path: model})
    expected = hf.score_rows(ROWS)
    got = vllm_scorer.score_rows(ROWS)
    for e, g in zip(expected, got, strict=True):
        assert g["turns"] == e["turns"]
        assert g["complexity"] == pytest.approx(e["complexity"], abs=TOLERANCE)
        assert g["quality"] == pytest.approx(e["quality"], abs=TOLERANCE)
        assert g["score"] == pytest.approx(e["score"], abs=TOLERANCE * 12 * e["turns"])
    assert len({round(r["score"], 2) for r in expected}) > 2  # scores differ between rows
