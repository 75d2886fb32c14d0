""":func:`aloe_core.text.normalize_for_matching` over a whole Arrow string array, exactly.

The definition is NFKC, ``str.casefold``, ``[^\\w\\s]+`` -> space, ``\\s+`` -> space, strip, all with
Python's Unicode semantics. Its result is the maximal runs of ``\\w`` characters joined by single
spaces: every other character is punctuation (replaced by a space) or whitespace, the two replacements
merge adjacent separators into one space, and strip removes the one at either end.

A compiled kernel (:mod:`aloe_data.dedup.normalize_kernel`, one pass over the UTF-8 bytes) computes
exactly that for every string made only of ASCII and *plain separators*; the other strings (accented
letters, NBSP, emoji...: ~2% of the embedded corpus's matching texts) go through the Python function
itself. Why the kernel is exact on those strings:

* ASCII: NFKC leaves it unchanged (no ASCII character decomposes, and no two compose), ``casefold`` is
  ``lower`` (A-Z -> a-z), and Python's ``\\w`` is ``[A-Za-z0-9_]``; which other ASCII characters are
  ``\\s`` does not matter, since every non-``\\w`` character ends up in a separator. The byte table is
  built from Python's own ``re`` and ``str.casefold``.
* A plain separator is a BMP code point of category P (punctuation), S (symbol), Z (separator), Cc or
  Cf (``°``, ``–``, ``’``, ``×``, ``\\u2028``, ``\\x85``...) that is not ``\\w``, has no decomposition
  (NFKD leaves it unchanged), has combining class 0 and is its own case fold (the table is built from
  :mod:`unicodedata` and ``re`` at first use). NFKC of a string of ASCII and plain separators is the
  string itself: nothing decomposes, nothing reorders (all classes are 0), and nothing composes,
  because no canonical composition pair has an ASCII or plain-separator second character (the second
  characters with class 0 are all marks, category M; ``tests/data/test_exact_dedup_fast.py`` checks
  this over every code point). Case folding maps only A-Z, and each plain separator becomes a space.

Arrow's own kernels are not used for the Unicode part: utf8proc's NFKC, Arrow's case mapping and RE2's
classes follow their own Unicode tables, not Python's, and case folding is not lowering (``ß`` -> ``ss``).
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_core.text import normalize_for_matching

_WORD = re.compile(r"\w")
_SEPARATOR_CATEGORIES = ("P", "S", "Z", "Cc", "Cf")


@functools.cache
def ascii_word_bytes() -> np.ndarray:
    """uint8 over the 128 ASCII bytes: the case-folded byte for ``\\w`` characters, 0 for the others."""
    table = np.zeros(128, dtype=np.uint8)
    for byte in range(128):
        char = chr(byte)
        if _WORD.match(char):
            table[byte] = ord(char.casefold())
    return table


@functools.cache
def plain_separators() -> np.ndarray:
    """bool over the BMP: which code points are plain separators (module docstring). ~50 ms, once."""
    table = np.zeros(0x10000, dtype=bool)
    for cp in range(0x80, 0x10000):
        char = chr(cp)
        table[cp] = (
            unicodedata.category(char).startswith(_SEPARATOR_CATEGORIES)
            and unicodedata.combining(char) == 0
            and unicodedata.normalize("NFKD", char) == char
            and char.casefold() == char
            and not _WORD.match(char)
        )
    return table


def normalize_strings(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`normalize_for_matching` of every string (nulls stay null), same type as ``texts``.

    Strings must be valid UTF-8 (what Arrow's readers and aloe's ingest give); bytes the kernel cannot
    decode send their string to Python, which raises on them.
    """
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    if len(texts) == 0:
        return texts
    fast, to_python = _normalize_plain(texts)
    if texts.null_count:
        fast = pc.if_else(pc.is_valid(texts), fast, pa.scalar(None, texts.type))
        to_python &= pc.is_valid(texts).to_numpy(zero_copy_only=False)
    if not to_python.any():
        return fast
    slow = [normalize_for_matching(text) for text in texts.filter(pa.array(to_python)).to_pylist()]
    return pc.replace_with_mask(fast, pa.array(to_python), pa.array(slow, texts.type))


def _normalize_plain(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The kernel's output (nulls as "") and which strings it left to Python."""
    from aloe_data.dedup.normalize_kernel import normalize_plain  # numba only where strings are normalised

    offset_type = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    out = np.empty(int(offsets[-1] - offsets[0]) + 1, dtype=np.uint8)  # + the kernel's one byte of slack
    out_offsets = np.empty(len(texts) + 1, dtype=offset_type)
    to_python = np.zeros(len(texts), dtype=bool)
    normalize_plain(data, offsets, ascii_word_bytes(), plain_separators(), out, out_offsets, to_python)
    used = int(out_offsets[-1])
    buffers = [None, pa.py_buffer(out_offsets), pa.py_buffer(out[:used])]
    return pa.Array.from_buffers(texts.type, len(texts), buffers), to_python


def words_of_strings(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The words (:func:`aloe_core.text.words`) of every string, concatenated in order, and how many
    each string has (int64).

    ``words(t)`` is ``normalize_for_matching(t).split(" ")`` for a text that normalises to something,
    and nothing for one that normalises to "" (the normal form is the words joined by single spaces),
    so this is :func:`normalize_strings` and one split kernel: no Python string is made per word, which
    is what decontamination's per-batch tokenising spent most of its time on. Strings must not be null.
    """
    normalized = normalize_strings(texts)
    if normalized.null_count:
        raise ValueError("words_of_strings: null strings have no words")
    parts = pc.split_pattern(normalized, " ")
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    is_empty = pc.equal(pc.binary_length(normalized), 0).to_numpy(zero_copy_only=False)
    counts[is_empty] = 0
    flat = pc.list_flatten(parts)
    if is_empty.any():  # each empty text split into one "" (no word is ever empty)
        flat = flat.filter(pc.greater(pc.binary_length(flat), 0))
    return flat, counts
