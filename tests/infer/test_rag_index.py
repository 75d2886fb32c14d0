"""Building an index: provenance, drops counted, incremental re-indexing, atomic replacement, FAISS
factories, and embedding through Ray Data actors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from aloe_core.errors import ConfigError, InputError
from aloe_infer.retrieval import IndexConfig, RetrievalConfig, Retriever, build_index
from aloe_infer.retrieval import indexer as indexer_module
from aloe_infer.retrieval.documents import file_sha256
from aloe_infer.retrieval.store import CHUNKS, VECTORS, load_chunks, read_manifest

QUERIES = [
    "Which drug causes a dry cough through bradykinin?",
    "first-line treatment of community-acquired pneumonia in a healthy outpatient",
    "reference range of serum sodium",
    "weak thumb opposition and numbness of the lateral digits",
]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _docs(prefix: str, n: int) -> list[dict]:
    topics = ["asthma inhalers", "insulin dosing", "sepsis fluids", "stroke thrombolysis", "gout flares"]
    return [
        {"id": f"{prefix}{i}", "title": f"{prefix} {i}", "text": f"Note {i} on {topics[i % 5]} by {prefix}."}
        for i in range(n)
    ]


class EmbedCounter:
    """Wraps the indexer's run_pass and counts the chunks sent to embedding actors."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows = 0
        real = indexer_module.run_pass

        def counting(requests, *args, **kwargs):
            self.rows += requests.num_rows
            return real(requests, *args, **kwargs)

        monkeypatch.setattr(indexer_module, "run_pass", counting)


def test_index_of_the_fixture_collection_keeps_provenance(rag_corpus, rag_index):
    manifest = read_manifest(rag_index)
    assert manifest["counts"]["documents"] == 228 and manifest["counts"]["dropped"] == {}
    assert manifest["embedding"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["embedding"]["dim"] == 384
    chunks = load_chunks(rag_index, manifest).to_pylist()
    assert len(chunks) == manifest["counts"]["chunks"] >= 228
    assert len({c["chunk_id"] for c in chunks}) == len(chunks)
    originals = {}
    for path in rag_corpus.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            originals[row["id"]] = (row["text"], path.name, file_sha256(path))
    for chunk in chunks:
        text, source, sha = originals[chunk["doc_id"]]
        assert text[chunk["start"] : chunk["end"]] == chunk["text"]
        assert (chunk["source"], chunk["source_sha256"]) == (source, sha)
    vectors = np.concatenate([np.load(p) for p in sorted((rag_index / VECTORS).glob("*.npy"))])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_empty_huge_and_non_utf8_documents_are_handled_and_counted(tmp_path, local_index_config):
    corpus = tmp_path / "corpus"
    huge = "Warfarin is monitored with the INR and reversed with vitamin K. " * 1500  # ~100 KB
    _write_jsonl(
        corpus / "docs.jsonl",
        [
            {"id": "ok", "text": "Metformin can cause lactic acidosis."},
            {"id": "blank", "text": " \n "},
            {"id": "huge", "title": "Warfarin", "text": huge},
            {"id": "ok", "text": "duplicate id"},
        ],
    )
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "latin1.txt").write_bytes("Na\xefve caf\xe9 text".encode("latin-1"))
    (corpus / "broken.jsonl").write_bytes(b'{"id": "x", "text": "\xff\xfe"}\n{"id": "y"}\n')
    manifest = build_index(corpus, tmp_path / "index", local_index_config)
    assert manifest["counts"]["documents"] == 2
    assert manifest["counts"]["dropped"] == {
        "duplicate_doc_id": 1,
        "empty_text": 2,
        "invalid_utf8": 1,
        "malformed": 2,
    }
    per_file = {e["rel"]: e for e in manifest["files"]}
    assert per_file["latin1.txt"]["dropped"] == {"invalid_utf8": 1} and per_file["latin1.txt"]["chunks"] == 0
    huge_chunks = per_file["docs.jsonl"]["chunks"] - 1
    assert huge_chunks > 100  # ~21k tokens in windows of 192
    hits = Retriever.open(tmp_path / "index", RetrievalConfig(retriever="bm25")).search(
        ["lactic acidosis"], 3
    )
    assert hits[0][0].doc_id == "ok"


def test_incremental_reindex_embeds_only_new_and_changed_files(tmp_path, local_index_config, monkeypatch):
    corpus, out = tmp_path / "corpus", tmp_path / "index"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 5))
    _write_jsonl(corpus / "b.jsonl", _docs("b", 4))
    _write_jsonl(corpus / "c.jsonl", _docs("c", 3))
    counter = EmbedCounter(monkeypatch)
    first = build_index(corpus, out, local_index_config)
    assert counter.rows == first["build"]["embedded_chunks"] == 12

    _write_jsonl(corpus / "b.jsonl", [*_docs("b", 4)[:3], {"id": "b9", "text": "Changed note on asthma."}])
    (corpus / "c.jsonl").unlink()
    _write_jsonl(corpus / "d.jsonl", _docs("d", 2))
    counter.rows = 0
    second = build_index(corpus, out, local_index_config)
    assert counter.rows == second["build"]["embedded_chunks"] == 4 + 2  # b (changed) and d (new)
    assert second["build"]["reused_chunks"] == 5  # a
    doc_ids = set(load_chunks(out, second).column("doc_id").to_pylist())
    assert doc_ids == {f"a{i}" for i in range(5)} | {"b0", "b1", "b2", "b9", "d0", "d1"}
    assert sorted(p.stem for p in (out / CHUNKS).glob("*.parquet")) == sorted(
        e["key"] for e in second["files"]
    )

    counter.rows = 0
    third = build_index(corpus, out, local_index_config)
    assert counter.rows == 0 and third["build"]["reused_chunks"] == 11

    # The incremental index answers exactly like one built from scratch.
    fresh = build_index(corpus, tmp_path / "fresh", local_index_config)
    config = RetrievalConfig(retriever="hybrid")
    queries = ["asthma inhalers", "insulin", "changed note"]
    got = Retriever.open(out, config).search(queries, 5)
    want = Retriever.open(tmp_path / "fresh", config).search(queries, 5)
    assert [[(h.chunk_id, round(h.score, 6)) for h in q] for q in got] == [
        [(h.chunk_id, round(h.score, 6)) for h in q] for q in want
    ]
    assert fresh["counts"] == third["counts"]


def test_another_chunking_reembeds_everything(tmp_path, local_index_config):
    corpus, out = tmp_path / "corpus", tmp_path / "index"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 3))
    build_index(corpus, out, local_index_config)
    other = local_index_config.model_copy(update={"chunking": {"chunk_tokens": 64, "overlap_tokens": 8}})
    other = IndexConfig.model_validate(other.model_dump())
    assert build_index(corpus, out, other)["build"]["embedded_chunks"] == 3


def test_a_build_killed_midway_leaves_the_previous_index_intact(tmp_path, local_index_config, monkeypatch):
    corpus, out = tmp_path / "corpus", tmp_path / "index"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 4))
    build_index(corpus, out, local_index_config)
    before = (out / "manifest.json").read_text()
    hits_before = Retriever.open(out, RetrievalConfig()).search(["insulin dosing"], 3)

    _write_jsonl(corpus / "b.jsonl", _docs("b", 4))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what a kill looks like to the process, mid-embedding

    monkeypatch.setattr(indexer_module, "run_pass", killed)
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, out, local_index_config)
    assert (out / "manifest.json").read_text() == before
    assert Retriever.open(out, RetrievalConfig()).search(["insulin dosing"], 3) == hits_before
    # A staging folder left by a hard kill (no except clause ran) is removed by the next build.
    debris = tmp_path / ".index.tmp-dead"
    shutil.copytree(out, debris)
    monkeypatch.undo()
    build_index(corpus, out, local_index_config)
    assert not debris.exists() and read_manifest(out)["counts"]["documents"] == 8


def test_missing_corpus_and_empty_corpus_are_one_line_errors(tmp_path, local_index_config):
    with pytest.raises(InputError, match="corpus not found"):
        build_index(tmp_path / "nowhere", tmp_path / "index", local_index_config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no documents found"):
        build_index(tmp_path / "empty", tmp_path / "index", local_index_config)
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize(("factory", "min_overlap"), [("HNSW32", 0.95), ("IVF4,PQ16x4", 0.6)])
def test_approximate_factories_build_and_agree_with_flat(
    tmp_path, rag_corpus, rag_index, factory, min_overlap
):
    config = IndexConfig.model_validate(
        {"embed": {"mode": "local", "batch_size": 256}, "dense": {"factory": factory, "train_size": 1000}}
    )
    # Reuses the session index's vectors: nothing is embedded again, only FAISS is rebuilt.
    out = tmp_path / "index"
    shutil.copytree(rag_index, out)
    manifest = build_index(rag_corpus, out, config)
    assert manifest["build"]["embedded_chunks"] == 0 and (out / "dense.faiss").is_file()
    queries = [
        *QUERIES,
        "gram-positive cocci in clusters",
        "hormone from beta cells",
        "occlusion of the left anterior descending artery",
    ]
    approx = Retriever.open(out, RetrievalConfig(retriever="dense", nprobe=4)).search(queries, 5)
    exact = Retriever.open(rag_index, RetrievalConfig(retriever="dense")).search(queries, 5)
    overlap = np.mean(
        [
            len({h.chunk_id for h in a} & {h.chunk_id for h in e}) / 5
            for a, e in zip(approx, exact, strict=True)
        ]
    )
    assert overlap >= min_overlap, overlap


def test_bad_factory_is_a_config_error(tmp_path, local_index_config):
    corpus = tmp_path / "corpus"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 3))
    bad = IndexConfig.model_validate({**local_index_config.model_dump(), "dense": {"factory": "Nonsense17"}})
    with pytest.raises(ConfigError, match="index_factory"):
        build_index(corpus, tmp_path / "index", bad)
    big = IndexConfig.model_validate(
        {**local_index_config.model_dump(), "dense": {"factory": "IVF1024,Flat"}}
    )
    with pytest.raises(ConfigError, match="at least as many vectors"):
        build_index(corpus, tmp_path / "index", big)


def test_ray_data_actors_embed_like_the_local_pass(tmp_path, ray_session, local_index_config):
    corpus = tmp_path / "corpus"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 6))
    _write_jsonl(corpus / "b.jsonl", _docs("b", 5))
    ray_config = IndexConfig.model_validate(
        {"embed": {"mode": "ray", "concurrency": 2, "batch_size": 4, "cpus_per_actor": 0.5}}
    )
    on_ray = build_index(corpus, tmp_path / "ray", ray_config)
    local = build_index(corpus, tmp_path / "local", local_index_config)
    assert on_ray["counts"] == local["counts"]
    for entry in local["files"]:
        a = np.load(tmp_path / "ray" / VECTORS / f"{entry['key']}.npy")
        b = np.load(tmp_path / "local" / VECTORS / f"{entry['key']}.npy")
        assert np.allclose(a, b, atol=1e-5)
        ids = pq.read_table(tmp_path / "ray" / CHUNKS / f"{entry['key']}.parquet").column("chunk_id")
        assert ids.to_pylist() == [f"{entry['rel'][0]}{i}#0" for i in range(entry["chunks"])]


def test_an_actor_pool_taking_every_cpu_is_refused(tmp_path, ray_session):
    corpus = tmp_path / "corpus"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 2))
    greedy = IndexConfig.model_validate({"embed": {"mode": "ray", "concurrency": 2, "cpus_per_actor": 1}})
    with pytest.raises(ConfigError, match="takes all 2 CPUs"):
        build_index(corpus, tmp_path / "index", greedy)
