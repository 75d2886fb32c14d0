"""Retrieval-augmented answering: index a medical corpus, retrieve (dense, BM25, hybrid), cite sources.

Public API (what ``aloe infer index / retrieve / ask`` and the eval harness call):

* :func:`build_index` (``corpus, out, IndexConfig``) -> manifest dict;
* :class:`Retriever` (``Retriever.open(index_dir, RetrievalConfig)``, ``.search(queries, k)`` ->
  ``list[list[Hit]]``) and :class:`Hit` (``doc_id, chunk_id, score, title, text``);
* :func:`build_context` (hits, the generating model's tokenizer, :class:`PromptConfig`) ->
  :class:`RagContext` (numbered sources under a token budget), :func:`rag_messages`, and for other prompts
  :func:`sources_section` and :func:`sources_budget`;
* :class:`RagConfig`: the YAML of ``configs/rag/*.yaml`` (``index``, ``retrieval``, ``prompt``).
"""

from __future__ import annotations

from aloe_core.config import StrictModel
from aloe_infer.retrieval.config import (
    BM25Config,
    ChunkingConfig,
    DenseIndexConfig,
    DocumentFields,
    IndexConfig,
    PromptConfig,
    RetrievalConfig,
)
from aloe_infer.retrieval.indexer import build_index
from aloe_infer.retrieval.prompt import (
    RagContext,
    build_context,
    rag_messages,
    sources_budget,
    sources_section,
    sources_table,
)
from aloe_infer.retrieval.retriever import Hit, Retriever


class RagConfig(StrictModel):
    """One YAML for the three steps (``configs/rag/*.yaml``)."""

    index: IndexConfig = IndexConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    prompt: PromptConfig = PromptConfig()


__all__ = [
    "BM25Config",
    "ChunkingConfig",
    "DenseIndexConfig",
    "DocumentFields",
    "Hit",
    "IndexConfig",
    "PromptConfig",
    "RagConfig",
    "RagContext",
    "RetrievalConfig",
    "Retriever",
    "build_context",
    "build_index",
    "rag_messages",
    "sources_budget",
    "sources_section",
    "sources_table",
]
