"""The FAISS side of the index: build from per-file vectors, load, search by inner product.

Vectors are unit-norm, so inner product is cosine. ``Flat`` is exact search (MedRAG's and FlashRAG's
default); other ``index_factory`` strings (``HNSW32``, ``IVF65536,PQ48``) are approximate and are
written to ``dense.faiss``. IVF and PQ factories are trained on a seeded sample of the vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aloe_core.errors import ConfigError
from aloe_infer.retrieval.config import DenseIndexConfig, RetrievalConfig
from aloe_infer.retrieval.store import DENSE, VECTORS


def is_flat(factory: str) -> bool:
    return factory.replace(" ", "") in ("Flat", "IDMap,Flat")


def _vector_files(index_dir: Path, manifest: dict[str, Any]) -> Iterator[np.ndarray]:
    for entry in manifest["files"]:
        if entry["chunks"]:
            # allow_pickle=False: an index folder is data, never code.
            yield np.load(index_dir / VECTORS / f"{entry['key']}.npy", mmap_mode="r", allow_pickle=False)


def _new_index(dim: int, config: DenseIndexConfig) -> Any:
    import faiss

    try:
        index = faiss.index_factory(dim, config.factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "invalid"
        raise ConfigError(
            f"dense.factory: {config.factory!r} is not a FAISS index_factory string ({first})"
        ) from None
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efConstruction = config.hnsw_ef_construction
    return index


def _training_sample(index_dir: Path, manifest: dict[str, Any], size: int) -> np.ndarray:
    total = sum(entry["chunks"] for entry in manifest["files"])
    chosen = np.sort(np.random.default_rng(0).choice(total, size=min(size, total), replace=False))
    parts, offset = [], 0
    for vectors in _vector_files(index_dir, manifest):
        local = chosen[(chosen >= offset) & (chosen < offset + len(vectors))] - offset
        parts.append(np.asarray(vectors[local], dtype=np.float32))
        offset += len(vectors)
    return np.concatenate(parts)


def build_dense(index_dir: Path, manifest: dict[str, Any], config: DenseIndexConfig) -> Any:
    """The FAISS index over every vector file of ``index_dir``, added file by file (bounded memory)."""
    index = _new_index(manifest["embedding"]["dim"], config)
    if not index.is_trained:
        sample = _training_sample(index_dir, manifest, config.train_size)
        if len(sample) < getattr(index, "nlist", 1):
            raise ConfigError(
                f"dense.factory: {config.factory!r} needs at least as many vectors as IVF lists to train; "
                f"the corpus has {len(sample)} chunks (use Flat or HNSW32 for a small corpus)"
            )
        index.train(sample)
    for vectors in _vector_files(index_dir, manifest):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_dense(index_dir: Path, manifest: dict[str, Any], config: DenseIndexConfig) -> None:
    """Build and write ``dense.faiss`` (nothing for a flat index: its vectors are the index)."""
    import faiss

    if is_flat(config.factory):
        return
    faiss.write_index(build_dense(index_dir, manifest, config), str(index_dir / DENSE))


def load_dense(index_dir: Path, manifest: dict[str, Any], config: RetrievalConfig) -> Any:
    """The index to search, with the query-time settings (``nprobe``, ``ef_search``) applied."""
    import faiss

    settings = DenseIndexConfig.model_validate(manifest["settings"]["dense"])
    if config.threads is not None:
        faiss.omp_set_num_threads(config.threads)
    if is_flat(settings.factory):
        return build_dense(index_dir, manifest, settings)
    index = faiss.read_index(str(index_dir / DENSE))
    inner = faiss.downcast_index(index)
    if hasattr(inner, "nprobe"):
        inner.nprobe = config.nprobe
    if getattr(inner, "hnsw", None) is not None:
        inner.hnsw.efSearch = config.ef_search
    return index


def search_dense(index: Any, queries: np.ndarray, depth: int) -> list[list[tuple[int, float]]]:
    """``[(vector id, cosine), ...]`` per query, best first (FAISS's -1 padding left out)."""
    if index.ntotal == 0 or len(queries) == 0:
        return [[] for _ in range(len(queries))]
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(depth, index.ntotal))
    return [
        [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
        for row_ids, row_scores in zip(ids, scores, strict=True)
    ]
