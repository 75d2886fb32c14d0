"""RAG indexes on a real S3 endpoint on 127.0.0.1 (moto's server mode): `aloe infer index --out s3://...`
writes the files of a local build (its manifest last), a rebuild reuses the unchanged files' vectors
from the previous index on the bucket, and a retriever opened on the bucket answers as the local index
does. (An eval with `rag.index` on the bucket: tests/infer/test_eval_rag.py.)"""

from __future__ import annotations

import json
import tempfile

import pytest
from test_rag_index import EmbedCounter, _docs, _write_jsonl

from aloe_core import storage
from aloe_core.errors import InputError
from aloe_infer.retrieval import RetrievalConfig, Retriever, build_index
from aloe_infer.retrieval.store import MANIFEST

QUERIES = ["asthma inhalers", "insulin", "sepsis fluids by b"]


def _files(root: str) -> dict[str, bytes]:
    """Every file under ``root`` (a folder or a URI) by its relative name."""
    _, inner = storage.resolve(root)
    names = [i.path.removeprefix(inner + "/") for i in storage.list_tree(root)]
    return {name: storage.read_bytes(storage.join(root, name)) for name in names}


def _without_timing(manifest: bytes) -> dict:
    data = json.loads(manifest)
    data["build"].pop("seconds")
    return data


def _hits(index: str, retriever: str) -> list[list[tuple[str, float]]]:
    found = Retriever.open(index, RetrievalConfig(retriever=retriever)).search(QUERIES, 4)
    return [[(h.chunk_id, round(h.score, 6)) for h in hits] for hits in found]


def test_an_index_built_on_the_bucket_equals_a_local_one_and_answers_the_same(
    s3_bucket, local_index_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    corpus, local, remote = tmp_path / "corpus", str(tmp_path / "index"), s3_bucket + "/rag/index"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 5))
    _write_jsonl(corpus / "b.jsonl", _docs("b", 4))
    build_index(corpus, local, local_index_config)
    built = build_index(corpus, remote, local_index_config)
    assert built["build"]["embedded_chunks"] == 9

    here, there = _files(local), _files(remote)
    assert sorted(there) == sorted(here) and MANIFEST in there
    assert _without_timing(there.pop(MANIFEST)) == _without_timing(here.pop(MANIFEST))
    assert there == here  # chunks, vectors, FAISS and BM25 files, byte for byte
    assert list((tmp_path / "tmp").glob("aloe-*")) == []  # the scratch build went after the upload
    for retriever in ("bm25", "dense", "hybrid"):
        assert _hits(remote, retriever) == _hits(local, retriever)

    # A rebuild reads the previous index from the bucket and embeds only the changed file.
    _write_jsonl(corpus / "b.jsonl", [*_docs("b", 3), {"id": "b9", "text": "Changed note on sepsis."}])
    build_index(corpus, local, local_index_config)
    counter = EmbedCounter(monkeypatch)
    again = build_index(corpus, remote, local_index_config)
    assert counter.rows == again["build"]["embedded_chunks"] == 4 and again["build"]["reused_chunks"] == 5
    assert _hits(remote, "hybrid") == _hits(local, "hybrid")
    assert sorted(_files(remote)) == sorted(_files(local))  # the old b's files are gone from the bucket


def test_a_uri_without_an_index_is_a_one_line_error(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    where = s3_bucket + "/rag/none"
    with pytest.raises(InputError, match=rf"^{where}: no RAG index here \(no manifest\.json\); build one"):
        Retriever.open(where, RetrievalConfig(retriever="bm25"))


def test_a_corpus_folder_on_the_bucket_indexes_as_the_local_folder(
    s3_bucket, local_index_config, tmp_path, monkeypatch
):
    """`aloe infer index --corpus s3://...`: the same chunks, vectors and manifest as from the folder."""
    from aloe_core.atomic import upload_dir

    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus"
    _write_jsonl(corpus / "a.jsonl", _docs("a", 5))
    _write_jsonl(corpus / "sub" / "b.jsonl", _docs("b", 4))
    uri = s3_bucket + "/corpus"
    upload_dir(corpus, uri, last="a.jsonl")
    build_index(corpus, str(tmp_path / "from-disk"), local_index_config)
    built = build_index(uri, str(tmp_path / "from-bucket"), local_index_config)
    assert built["counts"]["files"] == 2 and built["build"]["embedded_chunks"] == 9
    here, there = _files(str(tmp_path / "from-disk")), _files(str(tmp_path / "from-bucket"))
    assert _without_timing(there.pop(MANIFEST)) == _without_timing(here.pop(MANIFEST))
    assert there == here
    with pytest.raises(InputError, match=r"corpus on object storage must be a folder"):
        build_index(uri + "/a.jsonl", str(tmp_path / "x"), local_index_config)
    with pytest.raises(InputError, match=r"corpus not found"):
        build_index(s3_bucket + "/nothing", str(tmp_path / "y"), local_index_config)


def test_aloe_infer_retrieve_reads_queries_from_and_writes_hits_to_the_bucket(
    s3_bucket, local_index_config, tmp_path, monkeypatch
):
    """`aloe infer retrieve --queries s3://... --out s3://...` writes the hits a local run writes."""
    from typer.testing import CliRunner

    from aloe_infer.cli import app

    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    _write_jsonl(tmp_path / "corpus" / "a.jsonl", _docs("a", 5))
    index = str(tmp_path / "index")
    build_index(tmp_path / "corpus", index, local_index_config)
    queries = "".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in enumerate(QUERIES))
    (tmp_path / "q.jsonl").write_text(queries)
    storage.put_object(s3_bucket + "/q.jsonl", queries.encode())
    runner = CliRunner()
    for source, out in ((str(tmp_path / "q.jsonl"), str(tmp_path / "hits.jsonl")),
                        (s3_bucket + "/q.jsonl", s3_bucket + "/hits.jsonl")):  # fmt: skip
        done = runner.invoke(
            app, ["retrieve", "--index", index, "--queries", source, "--out", out, "--retriever", "bm25"]
        )
        assert done.exit_code == 0, done.output
    hits = storage.read_text(s3_bucket + "/hits.jsonl")
    assert hits == (tmp_path / "hits.jsonl").read_text() and len(hits.splitlines()) == len(QUERIES)
    missing = runner.invoke(app, ["retrieve", "--index", index, "--queries", s3_bucket + "/none.jsonl",
                                  "--out", str(tmp_path / "x.jsonl")])  # fmt: skip
    assert isinstance(missing.exception, InputError) and "queries file not found" in str(missing.exception)
