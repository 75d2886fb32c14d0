"""Fixtures of the RAG tests: the embedded medical document collection and one index built over it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def rag_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture document collection as one JSONL file per topic (228 documents); read-only."""
    from aloe_fixtures.corpus.documents import write_documents

    folder = tmp_path_factory.mktemp("rag-corpus")
    write_documents(folder)
    return folder


@pytest.fixture(scope="session")
def local_index_config():
    """Index settings of the tests: embedding in this process (starting actors costs more than the work)."""
    from aloe_infer.actors import ActorPoolConfig
    from aloe_infer.retrieval import IndexConfig

    return IndexConfig(embed=ActorPoolConfig(mode="local", batch_size=256))


@pytest.fixture(scope="session")
def rag_index(rag_corpus: Path, local_index_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat index over :func:`rag_corpus`, built once per session; read-only."""
    from aloe_infer.retrieval import build_index

    out = tmp_path_factory.mktemp("rag-index") / "index"
    build_index(rag_corpus, out, local_index_config)
    return out
