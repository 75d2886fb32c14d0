"""Retrieval: dense equals brute-force cosine, RRF fusion, re-ranking, one-line errors, batch retrieval
from the command line and answers that survive a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aloe_core.errors import InputError
from aloe_infer.retrieval import RetrievalConfig, Retriever
from aloe_infer.retrieval.chunking import embedding_text
from aloe_infer.retrieval.fusion import reciprocal_rank_fusion
from aloe_infer.retrieval.store import load_chunks, read_manifest

QUERIES = [
    "Which drug causes a dry cough through bradykinin?",
    "first-line treatment of community-acquired pneumonia in a healthy outpatient",
    "reference range of serum sodium",
    "weak thumb opposition and numbness of the lateral digits",
    "gram-positive cocci in clusters, catalase-positive",
]
EXPECTED_DOCS = [
    "drugs/lisinopril",
    "diseases/community-acquired-pneumonia",
    "labs/serum-sodium",
    "nerves/median-nerve",
    "organisms/staphylococcus-aureus",
]


@pytest.fixture(scope="module")
def embedder():
    from aloe_infer.embeddings import SentenceEmbedder, default_embedding_model

    return SentenceEmbedder(default_embedding_model())


def test_dense_retrieval_equals_brute_force_cosine(rag_index, embedder):
    chunks = load_chunks(rag_index, read_manifest(rag_index))
    texts = [
        embedding_text(t, x)
        for t, x in zip(chunks["title"].to_pylist(), chunks["text"].to_pylist(), strict=True)
    ]
    corpus = embedder.embed(texts)  # embedded here, independently of the index build
    queries = embedder.embed(QUERIES)
    cosine = queries @ corpus.T
    retriever = Retriever.open(rag_index, RetrievalConfig(retriever="dense"))
    results = retriever.search(QUERIES, 10)
    ids = chunks["chunk_id"].to_pylist()
    for row, hits in enumerate(results):
        order = np.argsort(-cosine[row], kind="stable")[:10]
        assert [h.chunk_id for h in hits] == [ids[i] for i in order]
        assert np.allclose([h.score for h in hits], cosine[row][order], atol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid"])
def test_each_retriever_finds_the_fact_tables_document(rag_index, kind):
    results = Retriever.open(rag_index, RetrievalConfig(retriever=kind)).search(QUERIES, 5)
    for want, hits in zip(EXPECTED_DOCS, results, strict=True):
        assert want in [h.doc_id for h in hits], (kind, want, [h.doc_id for h in hits])
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_rrf_sums_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)] == [1, 3, 2]
    assert reciprocal_rank_fusion([[5, 6], [6, 5]], k=1)[0][0] == 5  # a tie goes to the smaller id


def test_hybrid_scores_are_rrf_of_the_two_rankings(rag_index):
    k = 100
    dense = Retriever.open(rag_index, RetrievalConfig(retriever="dense")).search(QUERIES[:2], k)
    bm25 = Retriever.open(rag_index, RetrievalConfig(retriever="bm25")).search(QUERIES[:2], k)
    hybrid = Retriever.open(rag_index, RetrievalConfig(retriever="hybrid", rrf_k=10)).search(QUERIES[:2], 5)
    for d, b, h in zip(dense, bm25, hybrid, strict=True):
        ranks = [{x.chunk_id: r for r, x in enumerate(hits, 1)} for hits in (d, b)]
        for hit in h:
            assert hit.score == pytest.approx(
                sum(1 / (10 + r[hit.chunk_id]) for r in ranks if hit.chunk_id in r)
            )


def test_missing_index_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError) as info:
        Retriever.open(tmp_path / "no-index", RetrievalConfig())
    assert "no RAG index here" in str(info.value) and "\n" not in str(info.value)


def test_an_index_built_with_another_embedding_model_is_a_one_line_error(rag_index, tmp_path):
    from aloe_infer.embeddings import default_embedding_model

    other = tmp_path / "other-encoder"
    other.mkdir()
    source = default_embedding_model()
    for path in source.iterdir():  # the same files, but another config: another model to the check
        if path.is_file():
            (other / path.name).symlink_to(path)
    config = json.loads((source / "config.json").read_text())
    (other / "config.json").unlink()
    (other / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    with pytest.raises(InputError) as info:
        Retriever.open(rag_index, RetrievalConfig(retriever="hybrid", embedding_model=str(other)))
    message = str(info.value)
    assert "index built with embedding model sentence-transformers/all-MiniLM-L6-v2" in message
    assert "other-encoder" in message and "\n" not in message
    # BM25 alone needs no query embedding, so the model does not matter there.
    assert Retriever.open(rag_index, RetrievalConfig(retriever="bm25", embedding_model=str(other)))


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A randomly initialised 2-layer BERT cross-encoder (with MiniLM's vocabulary), saved as safetensors."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from aloe_infer.embeddings import default_embedding_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(default_embedding_model())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_cross_encoder_reorders_the_fused_candidates_by_its_scores(rag_index, tiny_cross_encoder):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config = RetrievalConfig(retriever="hybrid", rerank_model=str(tiny_cross_encoder), rerank_candidates=8)
    [hits] = Retriever.open(rag_index, config).search(QUERIES[:1], 8)
    [fused] = Retriever.open(rag_index, RetrievalConfig(retriever="hybrid")).search(QUERIES[:1], 8)
    assert {h.chunk_id for h in hits} == {h.chunk_id for h in fused}
    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder).eval()
    with torch.inference_mode():
        for hit in hits:  # each pair alone: batching and padding must not change a score
            batch = tokenizer(QUERIES[0], embedding_text(hit.title, hit.text), return_tensors="pt")
            assert hit.score == pytest.approx(float(model(**batch).logits[0, 0]), abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def _aloe(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from aloe_core.cli import main; sys.argv = ['aloe', *sys.argv[1:]]; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)


def test_retrieve_command_in_a_new_process_answers_like_this_one(rag_index, tmp_path):
    """Restart: the index loads in a fresh process and ranks exactly as the library does here."""
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in enumerate(QUERIES)))
    out = tmp_path / "hits.jsonl"
    done = _aloe(
        "infer",
        "retrieve",
        "--index",
        str(rag_index),
        "--queries",
        str(queries),
        "--k",
        "3",
        "--retriever",
        "hybrid",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    here = Retriever.open(rag_index, RetrievalConfig(retriever="hybrid")).search(QUERIES, 3)
    assert [line["id"] for line in lines] == [str(i) for i in range(len(QUERIES))]
    for line, hits in zip(lines, here, strict=True):
        assert line["results"] == [
            {"doc_id": h.doc_id, "chunk_id": h.chunk_id, "score": round(h.score, 6), "title": h.title}
            for h in hits
        ]


def test_retrieve_command_errors_are_one_line(rag_index, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": 1, "question": "ok"}\n{"id": 2}\n')
    done = _aloe(
        "infer",
        "retrieve",
        "--index",
        str(rag_index),
        "--queries",
        str(queries),
        "--out",
        str(tmp_path / "o.jsonl"),
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"aloe: error: {queries}:2: question: must be a non-empty string"
    )
    queries.write_text('{"id": 1, "question": "ok"}\n')
    done = _aloe(
        "infer",
        "retrieve",
        "--index",
        str(tmp_path / "none"),
        "--queries",
        str(queries),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--retriever",
        "bm25",
    )
    assert done.returncode == 2 and "no RAG index here" in done.stderr.strip().splitlines()[-1]
    done = _aloe(
        "infer",
        "retrieve",
        "--index",
        str(rag_index),
        "--queries",
        str(queries),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--retriever",
        "sparse",
    )
    assert done.returncode == 2 and "retrieval.retriever" in done.stderr.strip().splitlines()[-1]


def test_index_command_prints_counts(rag_corpus, tmp_path):
    sub = tmp_path / "corpus"
    sub.mkdir()
    (sub / "hormones.jsonl").write_bytes((Path(rag_corpus) / "hormones.jsonl").read_bytes())
    done = _aloe(
        "infer",
        "index",
        "--corpus",
        str(sub),
        "--out",
        str(tmp_path / "index"),
        "--set",
        "index.embed.mode=local",
    )
    assert done.returncode == 0, done.stderr
    assert "1 files, 18 documents" in done.stdout and "18 embedded, 0 reused" in done.stdout
