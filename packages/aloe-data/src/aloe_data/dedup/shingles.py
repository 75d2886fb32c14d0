"""Shingles (word or character n-grams of the normalised text), per text and for whole batches.

The per-text functions (:func:`char_ngrams`, :func:`shingle_set`) are the definition: Python sets of
strings, built on :mod:`aloe_core.text` so "the same text" means the same thing as in exact dedup and
decontamination. They are used for exact-Jaccard verification and as the test oracle.

:func:`shingle_batch` produces the same shingles for a whole batch without creating one Python string
per shingle: texts are normalised into one UTF-8 buffer with numpy, and each shingle is a
(start, length) slice of it, ready for :func:`aloe_data.dedup.sha1.sha1_prefix32`. A shingle's bytes are
exactly ``shingle.encode("utf-8")`` (word shingles: tokens joined by one space).

Normalisation is :func:`aloe_core.text.normalize_for_matching`: NFKC, case-fold, then the maximal runs
of regex ``\\w`` characters joined by single spaces (punctuation and whitespace runs both become one
separator). The batch path reproduces it exactly: NFKC and case-folding per text (C speed), then the
``\\w`` test as a lookup table over all code points built from Python's own ``re`` module.

Short texts: a text with at least one but fewer than ``n`` words (word shingles) or characters (char
shingles) yields one shingle, the whole normalised text, so short texts still compare; an empty
normalised text yields no shingles.

Input is Python ``str``. Text read from Arrow is valid UTF-8 (readers reject invalid bytes upstream);
a ``str`` built in Python may still hold lone surrogates: they are neither ``\\w`` nor whitespace, so
normalisation drops them like punctuation, and encoding uses ``surrogatepass`` so nothing can raise.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from aloe_core.text import normalize_for_matching, word_ngrams

ShingleKind = Literal["word", "char"]
_SPACE = 0x20


def char_ngrams(text: str, n: int) -> set[str]:
    """Distinct character n-grams of :func:`normalize_for_matching` text (spaces included).

    Same short-text rule as :func:`aloe_core.text.word_ngrams`: fewer than ``n`` characters (but at
    least one) yields the whole normalised text; an empty normalised text yields the empty set.
    """
    normalized = normalize_for_matching(text)
    if not normalized:
        return set()
    if len(normalized) < n:
        return {normalized}
    return {normalized[i : i + n] for i in range(len(normalized) - n + 1)}


def shingle_set(text: str, kind: ShingleKind, n: int) -> set[str]:
    """The shingles of one text: the reference definition the batch path must reproduce."""
    return word_ngrams(text, n) if kind == "word" else char_ngrams(text, n)


@dataclass(frozen=True)
class ShingleBatch:
    """All shingles of a batch of texts as slices of one UTF-8 buffer.

    Attributes:
        buffer: uint8 array, the normalised texts' UTF-8 bytes.
        starts, lengths: int64 arrays, one entry per shingle (duplicates within a text are kept: they
            cannot change a MinHash).
        offsets: int64 array of len(texts) + 1; text i owns shingles ``offsets[i]:offsets[i + 1]``.
    """

    buffer: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray


@functools.cache
def _word_char_table() -> np.ndarray:
    """Boolean table over all code points: does Python's ``re`` ``\\w`` match it (the definition used by
    :func:`normalize_for_matching`)? Built once per process (~0.2 s)."""
    every_code_point = "".join(map(chr, range(0x110000)))
    table = np.zeros(0x110000, dtype=bool)
    for match in re.finditer(r"\w+", every_code_point):
        table[match.start() : match.end()] = True
    return table


@functools.cache
def _ascii_word_bytes() -> bytes:
    """``bytes.translate`` table mapping an ASCII byte to 1 if it is ``\\w``, else 0 (C-speed lookup)."""
    return bytes(_word_char_table()[:256].astype(np.uint8))


def _prepare(text: str) -> str:
    # NFKC is the identity on ASCII and case-folding ASCII is lower(): skip the Unicode machinery.
    return text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()


def shingle_batch(texts: Sequence[str], kind: ShingleKind, n: int) -> ShingleBatch:
    """Shingles of every text, equal (as UTF-8 bytes) to :func:`shingle_set` of each text."""
    joined = "".join(texts)
    if joined.isascii():  # the common case: one C-level lower() for the whole batch
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        raw = joined.lower().encode("ascii")
        code_points = np.frombuffer(raw, dtype=np.uint8)
        is_word = np.frombuffer(raw.translate(_ascii_word_bytes()), dtype=bool)
    else:
        prepared = [_prepare(t) for t in texts]
        lengths = np.fromiter(map(len, prepared), dtype=np.int64, count=len(prepared))
        joined = "".join(prepared)
        code_points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        is_word = _word_char_table()[code_points]
    text_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=text_starts[1:])
    boundary = np.zeros(len(code_points) + 1, dtype=bool)  # True where a text starts (or the batch ends)
    boundary[text_starts] = True
    word_start, word_len, text_of = _word_spans(is_word, boundary, text_starts)
    buffer, byte_pos, word_out = _normalized_buffer(code_points, is_word, boundary, word_start, word_len)
    words_per_text = np.bincount(text_of, minlength=len(texts))
    if kind == "word":
        word_end_byte = word_out + word_len if byte_pos is None else byte_pos[word_out + word_len]
        word_start_byte = word_out if byte_pos is None else byte_pos[word_out]
        starts, ends, offsets = _ngram_slices(words_per_text, n, word_start_byte, word_end_byte)
    else:
        # Characters of the normalised text: output code points from a text's first word to the end of
        # its last word (the single-space separators in between included).
        first = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(words_per_text, out=first[1:])
        has_words = words_per_text > 0
        text_start = np.zeros(len(texts), dtype=np.int64)
        text_start[has_words] = word_out[first[:-1][has_words]]
        char_count = np.zeros(len(texts), dtype=np.int64)
        last_word = first[1:][has_words] - 1
        char_count[has_words] = word_out[last_word] + word_len[last_word] - text_start[has_words]
        starts, ends, offsets = _char_slices(text_start, char_count, n, byte_pos)
    return ShingleBatch(buffer, starts, ends - starts, offsets)


def _word_spans(
    is_word: np.ndarray, boundary: np.ndarray, text_starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, length, text index) of every maximal run of ``\\w`` code points; runs never cross texts."""
    size = len(is_word)
    begins = is_word.copy()
    begins[1:] &= ~is_word[:-1]
    begins |= boundary[:size] & is_word
    finishes = is_word.copy()
    finishes[:-1] &= ~is_word[1:]
    finishes |= boundary[1:] & is_word
    starts = np.flatnonzero(begins)
    lengths = np.flatnonzero(finishes) + 1 - starts
    text_of = np.searchsorted(text_starts, starts, side="right") - 1
    return starts, lengths, text_of


def _normalized_buffer(
    code_points: np.ndarray,
    is_word: np.ndarray,
    boundary: np.ndarray,
    word_start: np.ndarray,
    word_len: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The words of every text, each followed by one space inside its text, as UTF-8.

    Returns (buffer, byte_pos, word_out): ``word_out`` is the output code point index where each word
    starts and ``byte_pos[i]`` the byte offset of output code point i (plus one entry for the end), or
    None when the batch is ASCII (code point index == byte offset). Two words of one text are always
    separated by at least one non-word code point; the first of those becomes the single space.
    """
    ends = word_start + word_len
    inside = ~boundary[ends]  # a word that ends its text has no separator after it
    separators = ends[inside]
    keep = is_word.copy()
    keep[separators] = True
    values = code_points.copy()
    values[separators] = _SPACE
    out = values[keep]
    word_out = np.zeros(len(word_start), dtype=np.int64)
    np.cumsum((word_len + inside)[:-1], out=word_out[1:])
    if out.dtype == np.uint8:
        return out, None, word_out
    utf8 = out.tobytes().decode("utf-32-le").encode("utf-8")
    byte_len = 1 + (out >= 0x80).astype(np.int64) + (out >= 0x800) + (out >= 0x10000)
    byte_pos = np.zeros(len(out) + 1, dtype=np.int64)
    np.cumsum(byte_len, out=byte_pos[1:])
    return np.frombuffer(utf8, dtype=np.uint8), byte_pos, word_out


def _ngram_counts(unit_count: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: number of shingles, units per shingle (n, or all units of a short text), offsets."""
    counts = np.where(unit_count >= n, unit_count - n + 1, np.minimum(unit_count, 1))
    span = np.minimum(unit_count, n)
    offsets = np.zeros(len(unit_count) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return counts, span, offsets


def _local_index(counts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """0..counts[i]-1 for every text i, concatenated."""
    total = int(offsets[-1])
    return np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], counts)


def _ngram_slices(
    word_count: np.ndarray, n: int, word_start_byte: np.ndarray, word_end_byte: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte (start, end) of every word n-gram: from its first word's start to its last word's end."""
    counts, span, offsets = _ngram_counts(word_count, n)
    first_word = np.zeros(len(word_count), dtype=np.int64)
    np.cumsum(word_count[:-1], out=first_word[1:])
    first = np.repeat(first_word, counts) + _local_index(counts, offsets)
    last = first + np.repeat(span, counts) - 1
    return word_start_byte[first], word_end_byte[last], offsets


def _char_slices(
    text_start: np.ndarray, char_count: np.ndarray, n: int, byte_pos: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte (start, end) of every character n-gram of each normalised text."""
    counts, span, offsets = _ngram_counts(char_count, n)
    first = np.repeat(text_start, counts) + _local_index(counts, offsets)
    end = first + np.repeat(span, counts)
    if byte_pos is None:
        return first, end, offsets
    return byte_pos[first], byte_pos[end], offsets
