"""Retrieval for the ``rag`` and ``rag-cot`` strategies: open the index first, search once per benchmark.

:func:`open_retriever` runs before any model work, so a missing index or one built with another
embedding model stops the run with :class:`~aloe_infer.retrieval.Retriever`'s one-line error.
:func:`retrieve` then asks one batched :meth:`~aloe_infer.retrieval.Retriever.search` per benchmark
(every question of the benchmark in one call: one embedding pass, one FAISS / bm25s batch) and returns
the hits aligned with the run's items, which every retrieval strategy of the run shares.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aloe_infer.eval.benchmarks import Benchmark
from aloe_infer.eval.config import RagEvalConfig
from aloe_infer.retrieval import Hit, Retriever

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieved:
    """``hits[n]``: the ``k`` best chunks for the run's ``n``-th item, best first; ``summary``: what
    results.json records (index, retriever, k, the index's embedding model and size, seconds)."""

    hits: list[list[Hit]]
    summary: dict[str, Any]


def open_retriever(config: RagEvalConfig) -> Retriever:
    """The index at ``config.index``, opened for ``config.retriever``.

    Raises:
        InputError: no index there, or the query embedding model is not the index's (one line).
    """
    assert config.index is not None, "EvalConfig checks rag.index for retrieval strategies"
    return Retriever.open(config.index, config.retrieval())


def retrieve(retriever: Retriever, benchmarks: Sequence[Benchmark], config: RagEvalConfig) -> Retrieved:
    """The ``config.k`` best chunks for every question, one batched search per benchmark."""
    started = time.perf_counter()
    hits: list[list[Hit]] = []
    for bench in benchmarks:
        hits += retriever.search([item.question for item in bench.items], config.k)
        logger.info("eval: retrieved %d chunks for %d %s questions", config.k, len(bench.items), bench.name)
    manifest = retriever.manifest
    summary = {
        "index": str(config.index),
        "retriever": config.retriever,
        "k": config.k,
        "context_tokens": config.context_tokens,
        "chunks": len(retriever),
        "embedding_model": manifest.get("embedding", {}).get("name"),
        "queries": len(hits),
        "seconds": time.perf_counter() - started,
    }
    return Retrieved(hits, summary)


def hit_fields(hits: Sequence[Hit], used: int) -> dict[str, Any]:
    """A prediction record's ``retrieved`` (every hit, best first) and ``sources`` (how many of them, from
    the first, fitted the prompt's budget and were shown as ``[1]``, ``[2]``...)."""
    return {
        "retrieved": [
            {"doc_id": h.doc_id, "chunk_id": h.chunk_id, "score": h.score, "title": h.title} for h in hits
        ],
        "sources": used,
    }
