"""Searching an index folder: dense (FAISS), BM25 (bm25s), or both fused by RRF; optional re-ranking.

The library API the eval harness and ``aloe infer ask`` / ``retrieve`` call::

    retriever = Retriever.open("runs/rag-index", RetrievalConfig(retriever="hybrid"))
    hits = retriever.search(["first-line treatment of anaphylaxis?"], k=5)[0]
    hits[0].doc_id, hits[0].chunk_id, hits[0].score, hits[0].title, hits[0].text

Scores are what ranked the hits: cosine (dense), BM25 (bm25), RRF (hybrid) or the cross-encoder's score
(with ``rerank_model``). Queries are embedded in this process (a batch of queries is one forward pass
per token budget); only the index build needs actor pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_infer.retrieval.config import BM25Config, RetrievalConfig
from aloe_infer.retrieval.dense import load_dense, search_dense
from aloe_infer.retrieval.fusion import reciprocal_rank_fusion
from aloe_infer.retrieval.lexical import BM25Searcher
from aloe_infer.retrieval.store import (
    BM25,
    check_same_model,
    load_chunks,
    local_index,
    model_identity,
    read_manifest,
    resolve_embedding_model,
)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, best first in its list."""

    doc_id: str
    chunk_id: str
    score: float
    title: str
    text: str


class Retriever:
    """An opened index; build one with :meth:`open`."""

    def __init__(
        self, index_dir: Path, config: RetrievalConfig, manifest: dict[str, Any], chunks: Any
    ) -> None:
        self.index_dir, self.config, self.manifest = index_dir, config, manifest
        # Kept as Arrow (about the corpus's text size in memory), read per hit with take(): Python
        # strings for every chunk of a PubMed-sized corpus would cost several times more.
        self.chunks = chunks.select(["chunk_id", "doc_id", "title", "text"])
        self._embedder: Any = None
        self._dense: Any = None
        self._bm25: BM25Searcher | None = None
        self._reranker: Any = None

    @classmethod
    def open(cls, index_dir: str | Path, config: RetrievalConfig | None = None) -> Retriever:
        """Load the index at ``index_dir`` for ``config.retriever``.

        Raises:
            InputError: no index there, or (dense and hybrid) the query embedding model is not the one the
                index was built with; both one line.
        """
        config = config or RetrievalConfig()
        name, index_dir = index_dir, local_index(index_dir)  # a URI: its local copy
        manifest = read_manifest(index_dir)
        model = None
        if config.retriever != "bm25":
            model = resolve_embedding_model(config.embedding_model)
            check_same_model(name, manifest, model_identity(model))
        retriever = cls(index_dir, config, manifest, load_chunks(index_dir, manifest))
        if model is not None:
            from aloe_infer.embeddings import SentenceEmbedder

            if config.threads is not None:
                import torch

                torch.set_num_threads(config.threads)
            retriever._embedder = SentenceEmbedder(model, device=config.device)
            retriever._dense = load_dense(index_dir, manifest, config)
        if config.retriever != "dense":
            settings = BM25Config.model_validate(manifest["settings"]["bm25"])
            retriever._bm25 = BM25Searcher(index_dir / BM25, settings, len(retriever))
        if config.rerank_model is not None:
            from aloe_infer.retrieval.rerank import CrossEncoder

            retriever._reranker = CrossEncoder(
                config.rerank_model, device=config.device, max_length=config.rerank_max_length
            )
        return retriever

    def __len__(self) -> int:
        return self.chunks.num_rows

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """The ``k`` best chunks for each query, best first (fewer if the index has fewer matches)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        depth = k
        if self.config.retriever == "hybrid" or self._reranker is not None:
            depth = max(k, self.config.candidates, self.config.rerank_candidates if self._reranker else 0)
        ranked = self._ranked(queries, depth)
        if self._reranker is not None:
            ranked = [
                self._rerank(q, r[: self.config.rerank_candidates])
                for q, r in zip(queries, ranked, strict=True)
            ]
        return [self._hits(r[:k]) for r in ranked]

    def _ranked(self, queries: list[str], depth: int) -> list[list[tuple[int, float]]]:
        dense = bm25 = None
        if self._dense is not None:
            dense = search_dense(self._dense, self._embedder.embed(queries), depth)
        if self._bm25 is not None:
            bm25 = self._bm25.search(queries, depth)
        if dense is None or bm25 is None:
            return dense if dense is not None else bm25  # type: ignore[return-value]
        return [
            reciprocal_rank_fusion([[i for i, _ in d], [i for i, _ in b]], self.config.rrf_k)
            for d, b in zip(dense, bm25, strict=True)
        ]

    def _rerank(self, query: str, ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
        from aloe_infer.retrieval.chunking import embedding_text

        rows = self.chunks.take([row for row, _ in ranked])
        titles, texts = rows.column("title").to_pylist(), rows.column("text").to_pylist()
        passages = [embedding_text(title, text) for title, text in zip(titles, texts, strict=True)]
        scores = self._reranker.score(query, passages)
        order = sorted(range(len(ranked)), key=lambda j: (-float(scores[j]), j))
        return [(ranked[j][0], float(scores[j])) for j in order]

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        if not ranked:
            return []
        rows = self.chunks.take([row for row, _ in ranked]).to_pylist()
        return [
            Hit(r["doc_id"], r["chunk_id"], score, r["title"], r["text"])
            for r, (_, score) in zip(rows, ranked, strict=True)
        ]
