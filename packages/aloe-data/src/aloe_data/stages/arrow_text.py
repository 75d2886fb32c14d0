"""Helpers for working on whole Arrow string arrays with Python's exact text semantics.

pyarrow.compute's RE2 kernels are fast, but RE2's ``\\s``, ``\\d`` and ``\\b`` are not Python's, and
some Python patterns (look-arounds) cannot be written in RE2 at all. The batched stages therefore use RE2
only where its answer provably equals Python's: character classes built here from Python's own
predicates (``str.isspace``, ``str.isdecimal``, what Unicode normalisation may change), and prefilters
whose matches are a superset of the Python pattern's, with the exact Python function run on the few
strings they select (:func:`map_where`). Nested columns (messages, MCQA options) are read and rebuilt as
flat string arrays (:func:`leaf`, :func:`with_leaf`).
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_data.stages.derived_cache import cached_text


@cache
def _every_code_point() -> str:
    """Every code point in order (surrogates included), so that a character's index is its code point."""
    return "".join(map(chr, range(sys.maxunicode + 1)))


def _class_body(codes: Iterable[int]) -> str:
    """The inside of an RE2 character class holding ``codes`` (sorted), as ``\\x{..}`` ranges."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(rf"\x{{{a:x}}}" if a == b else rf"\x{{{a:x}}}-\x{{{b:x}}}" for a, b in ranges)


@cache
def python_class(pattern: str, negate: bool = False) -> str:
    """An RE2 character class (``[...]``) of every code point that Python's ``re`` matches with
    ``pattern`` (one character), or with ``negate`` of every other one: Python's own Unicode tables,
    where RE2's may be another Unicode version.

    Derived once per machine, Python version and pattern (building the string of every code point and
    scanning it takes 0.04-0.13 s per class, five classes for ``clean``, paid by every new worker), then
    read from the derived cache. The entry is named by a hash of the pattern, since patterns hold
    characters a file name cannot."""
    key = hashlib.blake2b(f"{pattern}\0{negate}".encode(), digest_size=12).hexdigest()
    python = ".".join(map(str, sys.version_info[:3]))
    name = f"python_class-{key}-py{python}-unicode-{unicodedata.unidata_version}-v1"
    return cached_text(name, lambda: _derive_python_class(pattern, negate))


def _derive_python_class(pattern: str, negate: bool) -> str:
    runs = re.finditer(f"(?:{pattern})+", _every_code_point())
    body = _class_body(code for run in runs for code in range(*run.span()))
    return f"[{'^' if negate else ''}{body}]"


def whitespace_class(negate: bool = False) -> str:
    """RE2 class of Python's whitespace (``re``'s ``\\s``; the same set ``str.strip``/``split`` use):
    NBSP, ``\\x1c``-``\\x1f``, ``\\x85``, ``\\u2028``... besides the ASCII ones."""
    return python_class(r"\s", negate)


def digit_class() -> str:
    """RE2 class of Python's ``re`` ``\\d`` on str patterns (Unicode decimal digits)."""
    return python_class(r"\d")


@cache
def _normalization_facts() -> tuple[np.ndarray, np.ndarray, frozenset[int]]:
    """Code points with a non-zero combining class, code points with a decomposition mapping, and code
    points that can compose with the one before them under NFC/NFKC (the second of every canonical pair
    not excluded from composition, and Hangul vowel and final jamo)."""
    chars = _every_code_point()
    marks = np.flatnonzero(np.fromiter(map(unicodedata.combining, chars), np.int16, len(chars)))
    mapped = np.flatnonzero(
        np.fromiter(map(len, map(unicodedata.decomposition, chars)), np.int32, len(chars))
    )
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for code in mapped:
        pair = unicodedata.decomposition(chars[code]).split()
        canonical = len(pair) == 2 and not pair[0].startswith("<")
        if canonical and unicodedata.normalize("NFC", chars[code]) == chars[code]:  # composes, not excluded
            seconds.add(int(pair[1], 16))
    return marks, mapped, frozenset(seconds)


@cache
def may_change_under(form: str) -> str:
    """RE2 class of the characters without which a string is already in normal ``form`` (NFC, NFKC):
    those that change alone, have a non-zero combining class or may compose with the character before
    them (Unicode's quick check passes a string with none of these).

    Derived from Python's Unicode tables once per machine and Unicode version (a walk over every code
    point, 0.3 s), then read from the derived cache by each new worker."""
    name = f"may_change_under-{form}-unicode-{unicodedata.unidata_version}-v1"
    return cached_text(name, lambda: _derive_may_change_under(form))


def _derive_may_change_under(form: str) -> str:
    marks, mapped, seconds = _normalization_facts()
    chars = _every_code_point()
    changing = [int(code) for code in mapped if unicodedata.normalize(form, chars[code]) != chars[code]]
    return f"[{_class_body(sorted(set(marks.tolist()) | seconds | set(changing)))}]"


def matches(texts: pa.Array, pattern: str) -> np.ndarray:
    """Whether each string contains a match of the RE2 ``pattern`` (nulls: False), as a numpy bool array."""
    if len(texts) == 0:
        return np.zeros(0, dtype=bool)
    found = pc.match_substring_regex(texts, pattern)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def map_where(
    texts: pa.Array, mask: np.ndarray, fn: Callable[[str], Any], into: pa.Array | None = None
) -> pa.Array:
    """``texts`` (or ``into``, an array aligned with it) with ``fn`` of ``texts``' strings, computed in
    Python, where ``mask`` is true; the other strings are not converted to Python at all, which is the
    point when ``mask`` selects few."""
    into = texts if into is None else into
    (where,) = np.nonzero(mask)
    if len(where) == 0:
        return into
    values = [fn(text) for text in texts.take(pa.array(where)).to_pylist()]
    return pc.replace_with_mask(into, pa.array(mask), pa.array(values, into.type))


def utf8_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The bytes (uint8) and the int64 offsets (one more than strings) of a string or binary array,
    without copying the bytes; string ``i`` is ``data[offsets[i]:offsets[i + 1]]`` (nulls are empty)."""
    if len(texts) == 0:
        return np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    texts = texts.cast(pa.large_binary()) if texts.type in (pa.large_string(), pa.large_binary()) else texts
    if texts.null_count:
        texts = texts.fill_null(b"" if pa.types.is_binary(texts.type) else "")
    offset_type = np.int64 if pa.types.is_large_binary(texts.type) else np.int32
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


@dataclass(frozen=True)
class Leaf:
    """The strings at one path of a nested column (e.g. every message's ``content``), flat.

    ``values`` holds one string per slot of the child array, aligned with it, so that
    :func:`with_leaf` can put changed strings back without touching the offsets or null masks above
    them; ``rows`` is each string's row, and ``present`` whether no level above it (nor the string) is
    null."""

    values: pa.Array
    rows: np.ndarray
    present: np.ndarray


def valid_mask(array: pa.Array) -> np.ndarray:
    """Whether each slot of ``array`` is not null, as a numpy bool array."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return array.is_valid().to_numpy(zero_copy_only=False)


def _list_children(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """A list array's offsets rebased to 0 and the slice of its values they cover."""
    offsets = array.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0], array.values.slice(offsets[0], offsets[-1] - offsets[0])


def leaf(column: pa.Array, path: tuple[str, ...]) -> Leaf:
    """The strings of ``column`` (one chunk) at ``path``: struct field names, list levels implicit
    (``("content",)`` of a list of messages, ``("options", "text")`` of an MCQA struct)."""
    array, rows, present = column, np.arange(len(column)), valid_mask(column)
    names = list(path)
    while True:
        if pa.types.is_list(array.type):
            offsets, array = _list_children(array)
            counts = np.diff(offsets)
            rows, present = np.repeat(rows, counts), np.repeat(present, counts)
        elif pa.types.is_struct(array.type):
            array = array.field(names.pop(0))
        else:
            return Leaf(array, rows, present & valid_mask(array))
        present = present & valid_mask(array)


def with_leaf(column: pa.Array, path: tuple[str, ...], values: pa.Array) -> pa.Array:
    """``column`` with the strings at ``path`` replaced by ``values`` (aligned as :func:`leaf` gives
    them); every offset and null mask above them is kept."""
    if pa.types.is_list(column.type):
        offsets, child = _list_children(column)
        return pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()),
            with_leaf(child, path, values),
            type=column.type,
            mask=column.is_null(),
        )
    if pa.types.is_struct(column.type):
        fields = list(column.type)
        children = [
            with_leaf(column.field(f.name), path[1:], values) if f.name == path[0] else column.field(f.name)
            for f in fields
        ]
        return pa.StructArray.from_arrays(children, fields=fields, mask=column.is_null())
    return values


def row_any(flags: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, whether any of its strings (``rows[i]`` is string ``i``'s row) has its flag set."""
    out = np.zeros(n_rows, dtype=bool)
    out[rows[flags]] = True
    return out
