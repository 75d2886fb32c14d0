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
    """Character ``(start, end)`` of each window of at most ``chunk_tokens`` tokens, consecutive windows
    sharing at least ``overlap_tokens``; the last window ends at the last token.

    Windows start and end at word boundaries (a token preceded by whitespace starts a word) when the
    window holds one: a window cut inside a word would re-tokenize into more tokens than it was counted
    as, and would embed a word fragment. A single word longer than a window is cut anyway.
    """
    n = len(offsets)
    starts = [i == 0 or offsets[i][0] > offsets[i - 1][1] for i in range(n)]

    def back_to_word(i: int, floor: int) -> int:
        j = i
        while j > floor and not starts[j]:
            j -= 1
        return j if j > floor else i

    spans: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = min(start + chunk_tokens, n)
        if end < n:
            end = back_to_word(end, start)
        spans.append((offsets[start][0], offsets[end - 1][1]))
        if end == n:
            break
        wanted = max(end - overlap_tokens, start + 1)
        start = back_to_word(wanted, start)
        if not starts[start]:  # no word start between the window's start and the overlap: go forward
            ahead = wanted
            while ahead < end and not starts[ahead]:
                ahead += 1
            start = ahead if starts[ahead] else wanted
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
