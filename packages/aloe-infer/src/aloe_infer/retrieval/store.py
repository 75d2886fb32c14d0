"""The index folder: its layout, its manifest, and the identity of the embedding model behind it.

```
INDEX/
  manifest.json          written last: format, embedding model (name, fingerprint, dim), settings, one
                         entry per source file (rel path, sha256, key, documents, chunks, dropped), counts
  chunks/<key>.parquet   one per source file: chunk_id, doc_id, title, text, start, end, chunk_index,
                         source, source_sha256 (provenance of every chunk)
  vectors/<key>.npy      one per source file: float32 unit-norm embeddings, row i = chunk i of the file
  dense.faiss            the FAISS index (not for ``Flat``: an exact index is the vectors themselves,
                         rebuilt at open time as fast as a read)
  bm25/                  bm25s index (numpy arrays + JSON vocabulary; nothing pickled)
```

FAISS vector ``i`` is chunk ``i`` of the files' chunk tables concatenated in manifest order. ``key`` is
derived from a file's relative path and sha256, so an unchanged file keeps its chunk and vector files
across rebuilds (re-indexing copies them instead of embedding again).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aloe_core import storage
from aloe_core.errors import InputError

FORMAT = "aloe-rag-index/1"
MANIFEST = "manifest.json"
CHUNKS = "chunks"
VECTORS = "vectors"
DENSE = "dense.faiss"
BM25 = "bm25"

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("chunk_index", pa.int32()),
        ("source", pa.string()),
        ("source_sha256", pa.string()),
    ]
)


def file_key(rel: str, sha256: str) -> str:
    return hashlib.sha256(f"{rel}\0{sha256}".encode()).hexdigest()[:24]


def local_index(index_dir: str | Path) -> Path:
    """The local folder to load the index ``index_dir`` from (FAISS and BM25 read local files): itself,
    or for a URI its copy in this machine's cache (:func:`aloe_core.storage.local_copy`), fetched again
    only when the index on the store changed. The manifest is checked on the store first, so a missing
    index there is :func:`read_manifest`'s one-line error.
    """
    if not storage.is_uri(index_dir):
        return Path(index_dir)
    read_manifest(index_dir)
    return Path(storage.local_copy(index_dir))


def read_manifest(index_dir: str | Path) -> dict[str, Any]:
    """The manifest of a finished index.

    Raises:
        InputError: no index at ``index_dir`` (or one this version cannot read).
    """
    index_dir = storage.location(index_dir)
    path = storage.join(index_dir, MANIFEST)
    if not storage.is_file(path):
        raise InputError(
            f"{index_dir}: no RAG index here (no {MANIFEST}); build one with "
            f"`aloe infer index --corpus PATH --out {index_dir}`"
        )
    try:
        manifest = json.loads(storage.read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable index manifest ({exc}); rebuild the index") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: index format {manifest.get('format')!r}, expected {FORMAT!r}; rebuild it")
    return manifest


def load_chunks(
    index_dir: str | Path, manifest: dict[str, Any], columns: list[str] | None = None
) -> pa.Table:
    """Every chunk, in FAISS order (files in manifest order)."""
    tables = [
        pq.read_table(Path(index_dir) / CHUNKS / f"{entry['key']}.parquet", columns=columns)
        for entry in manifest["files"]
        if entry["chunks"]
    ]
    if not tables:
        schema = CHUNK_SCHEMA if columns is None else pa.schema([CHUNK_SCHEMA.field(c) for c in columns])
        return schema.empty_table()
    return pa.concat_tables(tables)


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode())
        with (Path(folder) / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def resolve_embedding_model(value: str | None) -> Path:
    """The encoder folder a config names; None is the packaged all-MiniLM-L6-v2."""
    from aloe_infer.embeddings import default_embedding_model

    return default_embedding_model() if value is None else Path(value)


def model_identity(folder: str | Path) -> dict[str, Any]:
    """``{name, fingerprint, dim}`` of an encoder folder; the fingerprint hashes its config and weights,
    so the same model found at another path (another machine, a moved venv) is the same model."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputError(f"{folder}: not an embedding model folder (no config.json)")
    files = sorted(p.name for p in folder.iterdir() if p.name == "config.json" or p.suffix == ".safetensors")
    stamp = tuple(
        (name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns) for name in files
    )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    from aloe_infer.embeddings import DEFAULT_MODEL_NAME, DEFAULT_MODEL_PACKAGE

    packaged = folder.name == "model" and folder.parent.name == DEFAULT_MODEL_PACKAGE
    return {
        "name": DEFAULT_MODEL_NAME if packaged else folder.name,
        "fingerprint": _fingerprint(str(folder.resolve()), stamp),
        "dim": int(config["hidden_size"]),
    }


def check_same_model(index_dir: str | Path, manifest: dict[str, Any], identity: dict[str, Any]) -> None:
    """Raises InputError (one line) when queries would be embedded by another model than the index's."""
    built = manifest["embedding"]
    if built["fingerprint"] == identity["fingerprint"]:
        return
    raise InputError(
        f"{index_dir}: index built with embedding model {built['name']} (dim {built['dim']}, "
        f"fingerprint {built['fingerprint'][:12]}) but queries would use {identity['name']} "
        f"(dim {identity['dim']}, fingerprint {identity['fingerprint'][:12]}); set embedding_model to "
        "the index's model or rebuild the index"
    )
