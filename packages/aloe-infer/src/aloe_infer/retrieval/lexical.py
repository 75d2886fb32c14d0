"""The BM25 side of the index (bm25s, as FlashRAG uses): tokenize, index, save, load, search.

bm25s stores its sparse score matrix as numpy arrays and its vocabulary as JSON, loaded with
``allow_pickle=False`` (nothing executable is read back). Queries are tokenized with the same stopwords
and stemmer as the corpus; query words missing from the vocabulary score nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aloe_infer.retrieval.config import BM25Config


def _stemmer(config: BM25Config) -> Any:
    if config.stemmer == "none":
        return None
    import Stemmer

    return Stemmer.Stemmer(config.stemmer)


def _stopwords(config: BM25Config) -> Any:
    return None if config.stopwords == "none" else config.stopwords


def build_bm25(texts: list[str], config: BM25Config, out: Path) -> None:
    """Index ``texts`` (row i = FAISS vector i) and save the index to the folder ``out``."""
    import bm25s

    tokens = bm25s.tokenize(
        texts, stopwords=_stopwords(config), stemmer=_stemmer(config), show_progress=False
    )
    index = bm25s.BM25(k1=config.k1, b=config.b)
    index.index(tokens, show_progress=False)
    index.save(str(out), show_progress=False)


class BM25Searcher:
    """A loaded bm25s index (memory-mapped) with the corpus's tokenization settings."""

    def __init__(self, folder: Path, config: BM25Config, size: int) -> None:
        import bm25s

        self.index = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        self.config = config
        self.stemmer = _stemmer(config)
        self.size = size

    def search(self, queries: list[str], depth: int) -> list[list[tuple[int, float]]]:
        """``[(chunk row, BM25 score), ...]`` per query, best first; zero scores (no shared word) left out."""
        import bm25s

        if self.size == 0 or not queries:
            return [[] for _ in queries]
        tokens = bm25s.tokenize(
            queries,
            stopwords=_stopwords(self.config),
            stemmer=self.stemmer,
            return_ids=False,
            show_progress=False,
        )
        ids, scores = self.index.retrieve(tokens, k=min(depth, self.size), show_progress=False, n_threads=1)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if s > 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]
