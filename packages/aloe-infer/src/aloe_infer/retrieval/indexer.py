"""``aloe infer index``: corpus -> chunks -> embeddings (Ray Data actors) -> FAISS + BM25 index folder.

The build happens in a staging folder beside ``out`` and is published with two renames
(:func:`aloe_core.atomic.publish_dir`), so a build killed at any point leaves the previous index whole;
the next build removes the debris. ``out`` may be an ``s3://`` / ``gs://`` URI: the index is then built
in a local scratch folder and uploaded with its manifest last (:func:`aloe_core.atomic.building_dir`),
so a reader that finds ``manifest.json`` finds the whole index, and the previous index is read from
its local copy (:func:`aloe_infer.retrieval.store.local_index`).

Incremental: a source file whose relative path and sha256 match the previous index (built with the same
embedding model, chunking and fields) keeps its chunk table and vectors, hard-linked into the new
folder; only new or changed files are chunked and embedded, and files no longer in the corpus simply
are not carried over. FAISS and BM25 are then rebuilt from all vectors and texts (cheap next to
embedding). The manifest's ``build`` section counts ``embedded_chunks`` and ``reused_chunks``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, building_dir, remove_debris
from aloe_core.errors import InputError
from aloe_infer.actors import EmbedActor, actor_cpus, run_pass
from aloe_infer.retrieval.chunking import Chunker, embedding_text
from aloe_infer.retrieval.config import IndexConfig
from aloe_infer.retrieval.dense import write_dense
from aloe_infer.retrieval.documents import SourceFile, list_sources, read_documents
from aloe_infer.retrieval.lexical import build_bm25
from aloe_infer.retrieval.store import (
    BM25,
    CHUNK_SCHEMA,
    CHUNKS,
    FORMAT,
    MANIFEST,
    VECTORS,
    file_key,
    load_chunks,
    local_index,
    model_identity,
    read_manifest,
    resolve_embedding_model,
)

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    """A file chunked but not yet embedded."""

    entry: dict[str, Any]
    table: pa.Table


@dataclass
class _Build:
    staging: Path
    config: IndexConfig
    model: Path
    dim: int
    seen_ids: set[str] = field(default_factory=set)
    pending: list[_Pending] = field(default_factory=list)
    embedded: int = 0
    reused: int = 0


def build_index(corpus: str | Path, out: str | Path, config: IndexConfig) -> dict[str, Any]:
    """Index ``corpus`` into the folder ``out`` (replacing any previous index there); returns the manifest.

    Raises:
        InputError: the corpus is missing or holds no supported file.
    """
    started = time.perf_counter()
    out = storage.location(out)
    remove_debris(out)
    sources, unsupported = list_sources(corpus)
    if not sources:
        raise InputError(f"{corpus}: no documents found (.jsonl, .json, .parquet, .txt or .md files)")
    model = resolve_embedding_model(config.embedding_model)
    identity = model_identity(model)
    previous = _previous(out, config, identity)
    with building_dir(out, last=MANIFEST) as staging:
        for name in (CHUNKS, VECTORS, BM25):
            (staging / name).mkdir()
        build = _Build(staging, config, model, identity["dim"])
        chunker = Chunker(model, config.chunking)
        entries = [_index_file(build, chunker, source, previous) for source in sources]
        _flush(build)
        manifest = _manifest(config, identity, entries, unsupported, build)
        write_dense(staging, manifest, config.dense)
        texts = load_chunks(staging, manifest, ["title", "text"])
        build_bm25(
            [embedding_text(t, x) for t, x in zip(*_columns(texts, "title", "text"), strict=True)],
            config.bm25,
            staging / BM25,
        )
        manifest["build"]["seconds"] = round(time.perf_counter() - started, 3)
        atomic_write_json(staging / MANIFEST, manifest)  # last (uploaded last): without it, no index
    counts = manifest["counts"]
    logger.info(
        "rag index %s: %d files, %d documents, %d chunks (%d embedded, %d reused), dropped %s",
        out,
        counts["files"],
        counts["documents"],
        counts["chunks"],
        build.embedded,
        build.reused,
        counts["dropped"] or "nothing",
    )
    return manifest


def _columns(table: pa.Table, *names: str) -> list[list[Any]]:
    return [table.column(name).to_pylist() for name in names]


def _previous(out: str | Path, config: IndexConfig, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The previous index at ``out`` (a URI: its local copy) if its chunks and vectors can be reused,
    else None."""
    if not storage.is_file(storage.join(out, MANIFEST)):
        return None
    try:
        folder = local_index(out)
        manifest = read_manifest(folder)
    except InputError as exc:
        logger.warning("%s; building from scratch", exc)
        return None
    same = (
        manifest["embedding"]["fingerprint"] == identity["fingerprint"]
        and manifest["settings"]["chunking"] == config.chunking.model_dump(mode="json")
        and manifest["settings"]["fields"] == config.fields.model_dump(mode="json")
    )
    if not same:
        logger.info("%s: built with another embedding model, chunking or fields; re-embedding all", out)
        return None
    return manifest | {"dir": folder, "by_key": {entry["key"]: entry for entry in manifest["files"]}}


def _index_file(
    build: _Build, chunker: Chunker, source: SourceFile, previous: dict[str, Any] | None
) -> dict[str, Any]:
    key = file_key(source.rel, source.sha256)
    old = None if previous is None else previous["by_key"].get(key)
    if old is not None and _reusable(build, previous, old):
        _link(previous["dir"] / CHUNKS / f"{key}.parquet", build.staging / CHUNKS / f"{key}.parquet")
        _link(previous["dir"] / VECTORS / f"{key}.npy", build.staging / VECTORS / f"{key}.npy")
        build.reused += old["chunks"]
        return dict(old)
    dropped: Counter[str] = Counter()
    documents = []
    for document in read_documents(source, build.config.fields, dropped):
        if document.doc_id in build.seen_ids:
            logger.warning(
                "%s:%s: document id %r seen before; dropped", source.rel, document.locator, document.doc_id
            )
            dropped["duplicate_doc_id"] += 1
            continue
        build.seen_ids.add(document.doc_id)
        documents.append(document)
    rows: dict[str, list[Any]] = {name: [] for name in CHUNK_SCHEMA.names}
    kept = 0
    for document, spans in zip(documents, chunker.spans([d.text for d in documents]), strict=True):
        if not spans:
            dropped["empty_text"] += 1
            continue
        kept += 1
        for n, (start, end) in enumerate(spans):
            values = (
                f"{document.doc_id}#{n}",
                document.doc_id,
                document.title,
                document.text[start:end],
                start,
                end,
                n,
                source.rel,
                source.sha256,
            )
            for name, value in zip(CHUNK_SCHEMA.names, values, strict=True):
                rows[name].append(value)
    entry = {
        "rel": source.rel,
        "sha256": source.sha256,
        "key": key,
        "documents": kept,
        "chunks": len(rows["chunk_id"]),
        "dropped": dict(sorted(dropped.items())),
    }
    build.pending.append(_Pending(entry, pa.table(rows, schema=CHUNK_SCHEMA)))
    if sum(p.table.num_rows for p in build.pending) >= build.config.embed_group_chunks:
        _flush(build)
    return entry


def _reusable(build: _Build, previous: dict[str, Any], old: dict[str, Any]) -> bool:
    """An unchanged file is reused unless its documents' ids now clash (or clashed) with another file's."""
    if old["dropped"].get("duplicate_doc_id"):
        return False
    if not old["chunks"]:
        return True
    ids = set(
        pq.read_table(previous["dir"] / CHUNKS / f"{old['key']}.parquet", columns=["doc_id"])
        .column("doc_id")
        .to_pylist()
    )
    if ids & build.seen_ids:
        return False
    build.seen_ids |= ids
    return True


def _link(src: Path, dst: Path) -> None:
    """Hard-link (no copy, and the old index keeps its own name for the file); copy across filesystems."""
    if not src.is_file():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _flush(build: _Build) -> None:
    """Embed every pending file's chunks in one actor pass and write their chunk and vector files."""
    pending, build.pending = build.pending, []
    tables = [p.table for p in pending if p.table.num_rows]
    vectors = np.zeros((0, build.dim), dtype=np.float32)
    if tables:
        chunks = pa.concat_tables(tables)
        texts = [embedding_text(t, x) for t, x in zip(*_columns(chunks, "title", "text"), strict=True)]
        vectors = _embed(build, texts)
        build.embedded += len(texts)
    offset = 0
    for item in pending:
        n = item.table.num_rows
        pq.write_table(
            item.table, build.staging / CHUNKS / f"{item.entry['key']}.parquet", compression="zstd"
        )
        np.save(build.staging / VECTORS / f"{item.entry['key']}.npy", vectors[offset : offset + n])
        offset += n


def _embed(build: _Build, texts: list[str]) -> np.ndarray:
    pool = build.config.embed
    requests = pa.table({"request": pa.array(np.arange(len(texts)), pa.int64()), "text": texts})
    kwargs = {
        "model": str(build.model),
        "device": build.config.device,
        "max_batch_tokens": build.config.max_batch_tokens,
        "cpus": actor_cpus(pool),
    }
    result = run_pass(requests, EmbedActor, kwargs, pool, label="rag index: embed")
    flat = result.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    assert flat.size == len(texts) * build.dim, f"{flat.size} values for {len(texts)} x {build.dim}"
    return np.asarray(flat, dtype=np.float32).reshape(len(texts), build.dim)


def _manifest(
    config: IndexConfig,
    identity: dict[str, Any],
    entries: list[dict[str, Any]],
    unsupported: list[str],
    build: _Build,
) -> dict[str, Any]:
    dropped: Counter[str] = Counter()
    for entry in entries:
        dropped.update(entry["dropped"])
    return {
        "format": FORMAT,
        "embedding": {**identity, "path": str(build.model)},
        "settings": config.model_dump(mode="json", include={"fields", "chunking", "dense", "bm25"}),
        "files": entries,
        "unsupported_files": unsupported,
        "counts": {
            "files": len(entries),
            "documents": sum(e["documents"] for e in entries),
            "chunks": sum(e["chunks"] for e in entries),
            "dropped": dict(sorted(dropped.items())),
        },
        "build": {"embedded_chunks": build.embedded, "reused_chunks": build.reused},
    }
