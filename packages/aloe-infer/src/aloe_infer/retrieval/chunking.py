"""Chunking documents into overlapping windows of the embedding model's tokens.

Windows are counted in the tokens the encoder will read, so a chunk is never silently truncated by the
encoder (a character-count splitter, as MedRAG's textbooks use, cannot promise that). A chunk is the
text between its first token's start and its last token's end, so ``text[start:end]`` in the source
document is exactly the chunk (offsets are kept as provenance).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aloe_infer.retrieval.config import ChunkingConfig


def window_spans(
    offsets: Sequence[tuple[int, int]], chunk_tokens: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each window of ``chunk_tokens`` tokens, consecutive windows sharing
    ``overlap_tokens``; the last window ends at the last token (it may be shorter)."""
    spans: list[tuple[int, int]] = []
    step = chunk_tokens - overlap_tokens
    start = 0
    while start < len(offsets):
        end = min(start + chunk_tokens, len(offsets))
        spans.append((offsets[start][0], offsets[end - 1][1]))
        if end == len(offsets):
            break
        start += step
    return spans


class Chunker:
    """Splits texts with the tokenizer of the embedding model folder ``model_path``."""

    def __init__(self, model_path: str | Path, config: ChunkingConfig) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(Path(model_path))
        if not self.tokenizer.is_fast:
            raise ValueError(f"{model_path}: chunking needs a fast tokenizer (tokenizer.json) for offsets")
        self.config = config

    def spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Chunk spans of each text (an empty list for a text with no tokens)."""
        if not texts:
            return []
        # verbose=False: a long document is meant to exceed the model's length; no warning per document.
        encoded = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
            "offset_mapping"
        ]
        size, overlap = self.config.chunk_tokens, self.config.overlap_tokens
        return [window_spans(offsets, size, overlap) for offsets in encoded]


def embedding_text(title: str, text: str) -> str:
    """What the encoder and BM25 read for a chunk: its title, then its text (MedRAG embeds both)."""
    return f"{title}\n{text}" if title else text
