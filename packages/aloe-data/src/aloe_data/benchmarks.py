"""Benchmark test sets for decontamination: load their items, and index their word n-grams as 64-bit hashes.

Loading (:func:`load_benchmarks`)
    Paths are files, folders (walked recursively, keeping only files whose path relative to the folder
    matches ``glob``, ``*test*`` by default) or globs (every match is used). Files are found and read with
    the source readers (:mod:`aloe_data.sources`: same containers, same compression handling) and every
    row is parsed by the source layout of its format: prompt-engine JSON (``{uid: {id?, question,
    options{A..}, correct_answer, context?}}``), open-ended prompt-engine items (no options), MedMCQA
    columns, MedQA JSONL and PubMedQA (original or hub). With ``fmt="auto"`` each row's format is told
    from its keys (:func:`aloe_core.layouts.sniff_benchmark_format`), so one folder may mix formats.

    An item is named by its benchmark (the file's path relative to the folder it was found in, without
    extensions, e.g. ``medqa_4opt/medqa_4opt_test``; a file given by name is its stem) and its item id (the
    row's own id field, ``id``/``pubid``, else its key in a JSON object or its line/row number). A row that
    cannot be parsed is an error, not a skipped row: decontaminating against part of a test set would
    silently let the rest leak.

Indexing (:func:`build_index`)
    Every item contributes up to four *texts*, each matched on its own (see :data:`VARIANTS`): the
    question; question + options as displayed (``A. text`` lines in benchmark order, which after
    normalisation is how most prompt templates show an item); question + option texts sorted (the text
    :func:`aloe_core.text.mcqa_matching_text` gives, so an MCQA training row matches whatever the order of
    its options); optionally the context (PubMedQA abstracts). A text's shingles are its normalised word
    n-grams (:func:`aloe_core.text.words`, the project's one definition of text identity), with two rules:

    * short texts: a text with ``min_short_words`` to ``n - 1`` words is one shingle, the whole text, so
      short questions still match (a row matches it when it holds those words contiguously); a text with
      fewer words is not indexed on its own, since stems such as "Which of the following is true" occur
      in thousands of unrelated rows (its question + options text usually still is indexed);
    * question + options texts keep only n-grams holding at least ``min(question words, n // 3)`` words
      of the question (:func:`max_start`): a run of option texts alone ("A. Vitamin A B. Vitamin D C.
      Vitamin C D. Vitamin B") is shared by unrelated items and is no evidence of a leak.

    Shingles are stored as 64-bit hashes (:func:`ngram_hash`: blake2b of each token, combined by a
    polynomial over the n tokens modulo 2**64, finalised with a MurmurHash3 mix: stable across processes
    and machines, never Python's ``hash()``) in one sorted ``uint64`` array with a parallel ``int32`` array
    of the text ("entry") each hash belongs to, so lookups are ``np.searchsorted``. Memory: 12 bytes per
    (shingle, text) pair: the 11 medical test sets in ../shared (13,938 items) give 1.08M pairs, 13 MB.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from aloe_core.containers import READERS, RawRow
from aloe_core.errors import InputError
from aloe_core.layouts import LAYOUTS, RowError, join_context, require_str, sniff_benchmark_format
from aloe_core.text import mcqa_matching_text, words
from aloe_data.sources.config import FORMAT_FAMILY, SourceConfig
from aloe_data.sources.paths import (
    COMPRESSION_SUFFIXES,
    EXTENSIONS,
    FileUnit,
    filesystem_for,
    resolve_entry,
)

BenchmarkFormat = Literal["auto", "prompt_engine_mcqa", "prompt_engine_open", "medmcqa", "medqa", "pubmedqa"]
VARIANTS = ("question", "question+options", "question+sorted options", "context")

_MASK = (1 << 64) - 1
_MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so multiplication is invertible mod 2**64 (see ngram_hash)
_M1, _M2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53
_GLOB_CHARS = re.compile(r"[*?\[]")
_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_LIMIT = 2_000_000  # distinct tokens kept per process (~250 MB at most)


@dataclass(frozen=True)
class BenchmarkItem:
    """One test item: ``options`` is ``[{letter, text}]`` (empty for open-ended items)."""

    benchmark: str
    item_id: str
    question: str
    options: list[dict[str, str]]
    context: str | None = None


# -- loading -------------------------------------------------------------------------------------------


def _strip_extensions(rel: str) -> str:
    name = rel
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            name, lower = name[: -len(suffix)], lower[: -len(suffix)]
    for suffix in (s for group in EXTENSIONS.values() for s in group):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _file_key(unit: FileUnit, root_name: str) -> str:
    """What ``glob`` is matched against and the name derives from: the path under the folder/glob root;
    for the shards of a save_to_disk folder (``*.arrow``), that folder's path (or the root's own name)."""
    if unit.container != "arrow":
        return unit.rel
    return unit.rel.rsplit("/", 1)[0] if "/" in unit.rel else root_name


@dataclass(frozen=True)
class BenchmarkFile:
    """One file to read: its benchmark ``name``, the file, and the filesystem it is on."""

    name: str
    unit: FileUnit
    filesystem: pafs.FileSystem


def _entry_files(entry: str, glob: str) -> list[BenchmarkFile]:
    source = SourceConfig(name="benchmarks", format="prompt_engine_mcqa", path=entry)
    fs, units = resolve_entry(source, 0, entry)
    path = filesystem_for(entry)[1]
    # A glob's matches are taken as given; only a folder named as such is filtered by ``glob``.
    kind = pafs.FileType.NotFound if _GLOB_CHARS.search(entry) else fs.get_file_info(path).type
    keyed = [(_file_key(u, PurePosixPath(path).name), u) for u in units]
    if kind == pafs.FileType.Directory:
        keyed = [(key, unit) for key, unit in keyed if fnmatch.fnmatch(key, glob)]
        if not keyed:
            raise InputError(f"benchmark folder {entry!r} has no data file whose path matches {glob!r}")
    if kind == pafs.FileType.File:  # a file named explicitly: its stem, whatever folder it is in
        keyed = [(PurePosixPath(key).name, unit) for key, unit in keyed]
    return [BenchmarkFile(_strip_extensions(key), unit, fs) for key, unit in keyed]


def benchmark_files(paths: Sequence[str], glob: str = "*test*") -> list[BenchmarkFile]:
    """Every benchmark file named by ``paths``, in the order given, with its benchmark name.

    Folders keep only files whose path relative to the folder matches ``glob`` (fnmatch, so ``*`` also
    crosses ``/``); files and glob patterns are taken as given.

    Raises:
        InputError: a path matches no data file, a folder has no file matching ``glob``, or two files
            (other than the shards of one save_to_disk folder) would get the same benchmark name.
    """
    if not paths:
        raise InputError("no benchmark paths given; name at least one benchmark file or folder")
    found = [f for entry in paths for f in _entry_files(entry, glob)]
    first: dict[str, BenchmarkFile] = {}
    for file in found:
        other = first.setdefault(file.name, file)
        same_folder = other.unit.path.rsplit("/", 1)[0] == file.unit.path.rsplit("/", 1)[0]
        if other is not file and not (file.unit.container == "arrow" and same_folder):  # shards of one set
            raise InputError(
                f"benchmark files {other.unit.path} and {file.unit.path} would both be named {file.name!r}; "
                "pass their common parent folder instead, so that names include their folders"
            )
    return found


def _open(file: BenchmarkFile) -> Any:
    if file.unit.container == "parquet":
        return file.filesystem.open_input_file(file.unit.path)
    return file.filesystem.open_input_stream(file.unit.path, compression="detect")


def _item(raw: RawRow, fmt: str, benchmark: str, locator_prefix: str) -> BenchmarkItem:
    """One parsed item; raises RowError (field path + problem) from the layout."""
    value = raw.value or {}
    parsed = LAYOUTS[fmt](value)
    item_id = str(parsed.meta.get("original_id", f"{locator_prefix}{raw.locator}"))
    if FORMAT_FAMILY[fmt] == "chat":  # open-ended: the question alone, not the context + question prompt
        question = require_str(value, "question")
        return BenchmarkItem(benchmark, item_id, question, [], join_context(value.get("context"), "context"))
    content = parsed.content
    return BenchmarkItem(benchmark, item_id, content["question"], content["options"], content["context"])


def _file_items(file: BenchmarkFile, fmt: str, locator_prefix: str) -> Iterator[BenchmarkItem]:
    with _open(file) as stream:
        for raw in READERS[file.unit.container](stream):
            where = f"benchmark file {file.unit.path}, row {raw.locator}"
            if raw.error is not None:
                raise InputError(f"{where}: {raw.error}")
            row_fmt = sniff_benchmark_format(raw.value or {}) if fmt == "auto" else fmt
            if row_fmt is None:
                raise InputError(
                    f"{where}: cannot tell the benchmark format from its keys {sorted(raw.value or {})}; "
                    "set the format (prompt_engine_mcqa, prompt_engine_open, medmcqa, medqa, pubmedqa)"
                )
            try:
                yield _item(raw, row_fmt, file.name, locator_prefix)
            except RowError as exc:
                raise InputError(f"{where} (read as {row_fmt}): {exc}") from None


def load_benchmarks(
    paths: Sequence[str], glob: str = "*test*", fmt: BenchmarkFormat = "auto"
) -> list[BenchmarkItem]:
    """Every item of every benchmark file named by ``paths`` (see module docstring), in file order.

    Raises:
        InputError: naming the path, file and row: nothing to read, an unreadable or unparsable row, an
            undetectable format, or an empty benchmark file.
    """
    files = benchmark_files(paths, glob)
    names = [f.name for f in files]
    items: list[BenchmarkItem] = []
    for file in files:
        # Shards of one benchmark number their rows from 0 each: prefix the shard to keep row ids unique.
        prefix = f"{PurePosixPath(file.unit.rel).name}:" if names.count(file.name) > 1 else ""
        before = len(items)
        items += _file_items(file, fmt, prefix)
        if len(items) == before:
            raise InputError(f"benchmark file {file.unit.path} holds no items")
    return items


def benchmark_fingerprint(paths: Sequence[str], glob: str = "*test*") -> str:
    """sha256 over the name and bytes of every benchmark file ``paths`` name: changes when a test set
    changes under the same paths, which a config hash cannot see (for resume keys)."""
    digest = hashlib.sha256()
    for file in benchmark_files(paths, glob):
        digest.update(f"{file.name}\x1f{file.unit.rel}\x1f".encode())
        with file.filesystem.open_input_stream(file.unit.path) as stream:
            for chunk in iter(lambda s=stream: s.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# -- hashing -------------------------------------------------------------------------------------------


def token_hash(token: str) -> int:
    """64-bit blake2b of a token's UTF-8 bytes (little-endian), cached per process."""
    value = _TOKEN_CACHE.get(token)
    if value is None:
        digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_LIMIT:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[token] = value
    return value


def _fmix(x: int) -> int:
    x ^= x >> 33
    x = (x * _M1) & _MASK
    x ^= x >> 33
    x = (x * _M2) & _MASK
    return x ^ (x >> 33)


def ngram_hash(tokens: Sequence[str]) -> int:
    """The hash of one shingle (a sequence of normalised words): the reference definition.

    ``poly = sum(token_hash(t_i) * M**(k-1-i)) mod 2**64`` with ``M`` odd, then a MurmurHash3 finaliser of
    ``poly ^ k``. Because ``M`` is invertible mod 2**64, two different k-word sequences collide with
    probability 2**-64 over the token hashes; :func:`window_hashes` computes the same values vectorised.
    """
    poly = 0
    for token in tokens:
        poly = (poly * _MULTIPLIER + token_hash(token)) & _MASK
    return _fmix(poly ^ len(tokens))


def token_hashes(tokens: Sequence[str] | pa.Array) -> np.ndarray:
    """:func:`token_hash` of every token (Python strings or an Arrow string array), each distinct token
    hashed once (a batch of rows repeats its words many times: the distinct ones are found by Arrow's
    dictionary encoding, in C++)."""
    if isinstance(tokens, pa.Array):
        encoded = tokens.dictionary_encode()
    elif len(tokens) < 1024:
        return np.fromiter(map(token_hash, tokens), dtype=np.uint64, count=len(tokens))
    else:
        try:
            encoded = pa.array(tokens, pa.string()).dictionary_encode()
        except (pa.ArrowException, UnicodeEncodeError):  # a lone surrogate: not UTF-8, hashed one by one
            return np.fromiter(map(token_hash, tokens), dtype=np.uint64, count=len(tokens))
    distinct = encoded.dictionary.to_pylist()
    hashes = np.fromiter(map(token_hash, distinct), dtype=np.uint64, count=len(distinct))
    return hashes[encoded.indices.to_numpy()]


def _fmix_array(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(_M1)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(_M2)
    return x ^ (x >> np.uint64(33))


def iter_window_hashes(
    hashes: np.ndarray, offsets: np.ndarray, lengths: Sequence[int]
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`ngram_hash` of every window of each length in ``lengths`` inside each piece, one length at
    a time (so a caller can filter each length's windows before the next is made).

    Args:
        hashes: token hashes (:func:`token_hashes`) of all pieces, concatenated.
        offsets: piece ``p`` owns ``hashes[offsets[p]:offsets[p + 1]]`` (len = pieces + 1).
        lengths: window lengths (>= 1) to compute.

    Yields:
        ``(length, hash, piece, start)`` with one array entry per window, ``start`` being the token
        position inside the piece, in (piece, start) order. Windows never cross a piece boundary.
    """
    offsets = np.asarray(offsets, np.int64)
    piece_of = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    piece_end = offsets[1:][piece_of]
    wanted = set(lengths)
    acc = hashes.astype(np.uint64, copy=True)
    multiplier = np.uint64(_MULTIPLIER)
    with np.errstate(over="ignore"):
        for k in range(1, max(wanted, default=0) + 1):
            if k > 1:  # Horner step: acc[j] becomes the polynomial of tokens j .. j + k - 1
                acc = acc[:-1] * multiplier + hashes[k - 1 :]
            if not len(acc):
                return
            if k not in wanted:
                continue
            starts = np.flatnonzero(np.arange(len(acc), dtype=np.int64) + k <= piece_end[: len(acc)])
            pieces = piece_of[starts]
            yield k, _fmix_array(acc[starts] ^ np.uint64(k)), pieces, starts - offsets[pieces]


def window_hashes(
    hashes: np.ndarray, offsets: np.ndarray, lengths: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All of :func:`iter_window_hashes` at once, as ``(hash, piece, start, length)`` arrays."""
    parts = [
        (h, p, s, np.full(len(h), k, np.int64)) for k, h, p, s in iter_window_hashes(hashes, offsets, lengths)
    ]
    if not parts:
        empty = np.zeros(0, np.int64)
        return np.zeros(0, np.uint64), empty, empty, empty
    h, p, s, k = (np.concatenate(column) for column in zip(*parts, strict=True))
    return h, p, s, k


# -- index ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkIndex:
    """Hashed shingles of benchmark texts ("entries": one per item and variant with any shingle).

    ``hashes`` is sorted; ``entry_of[i]`` is the entry ``hashes[i]`` belongs to (a hash shared by several
    entries appears once per entry). Per entry: ``entry_item`` (index into ``items``), ``entry_variant``
    (index into :data:`VARIANTS`) and ``entry_size`` (its number of distinct shingles). ``lengths`` are
    the shingle lengths present (``n`` and the word counts of short texts), which rows must be cut into.

    ``bitmap`` is a one-hash Bloom filter of ``hashes`` (bit ``h >> (64 - bitmap_bits)`` set for every
    shingle, about 32 bits per shingle, so about 3% of absent hashes pass): nearly every window of a
    training row is absent, and one look-up in a few MB answers that, where a binary search of the
    sorted hashes costs ~20 cache misses (it took 70% of the stage's time). :meth:`contains` is exact.
    """

    n: int
    lengths: tuple[int, ...]
    hashes: np.ndarray
    entry_of: np.ndarray
    entry_item: np.ndarray
    entry_variant: np.ndarray
    entry_size: np.ndarray
    items: tuple[tuple[str, str], ...]  # (benchmark, item id)
    bitmap: np.ndarray  # uint8, 2**bitmap_bits bits
    bitmap_bits: int

    @property
    def nbytes(self) -> int:
        arrays = (self.hashes, self.entry_of, self.entry_item, self.entry_variant, self.entry_size)
        return sum(a.nbytes for a in arrays) + self.bitmap.nbytes

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Which of ``hashes`` (uint64) are shingles of the index: the bitmap, then an exact search of
        the few that pass it."""
        maybe = np.flatnonzero(_bitmap_test(self.bitmap, self.bitmap_bits, hashes))
        found = np.zeros(len(hashes), bool)
        if len(maybe) and len(self.hashes):
            candidates = hashes[maybe]
            at = np.minimum(np.searchsorted(self.hashes, candidates), len(self.hashes) - 1)
            found[maybe] = self.hashes[at] == candidates
        return found


def index_arrays(index: BenchmarkIndex) -> dict[str, np.ndarray]:
    """``index`` as plain arrays (no objects, so they store without pickle): the inverse of
    :func:`index_from_arrays`."""
    return {
        "n": np.array(index.n, np.int64),
        "lengths": np.array(index.lengths, np.int64),
        "hashes": index.hashes,
        "entry_of": index.entry_of,
        "entry_item": index.entry_item,
        "entry_variant": index.entry_variant,
        "entry_size": index.entry_size,
        "item_benchmarks": np.array([b for b, _ in index.items], dtype=np.str_),
        "item_ids": np.array([i for _, i in index.items], dtype=np.str_),
        "bitmap": index.bitmap,
        "bitmap_bits": np.array(index.bitmap_bits, np.int64),
    }


def index_from_arrays(arrays: dict[str, np.ndarray]) -> BenchmarkIndex:
    """The :class:`BenchmarkIndex` that :func:`index_arrays` wrote."""
    return BenchmarkIndex(
        n=int(arrays["n"]),
        lengths=tuple(int(x) for x in arrays["lengths"].tolist()),
        hashes=arrays["hashes"],
        entry_of=arrays["entry_of"],
        entry_item=arrays["entry_item"],
        entry_variant=arrays["entry_variant"],
        entry_size=arrays["entry_size"],
        items=tuple(zip(arrays["item_benchmarks"].tolist(), arrays["item_ids"].tolist(), strict=True)),
        bitmap=arrays["bitmap"],
        bitmap_bits=int(arrays["bitmap_bits"]),
    )


def bitmap_bits_for(count: int) -> int:
    """Bits (as a power of two) of the Bloom bitmap for ``count`` shingles: >= 32 per shingle, >= 2**16."""
    return max(16, (max(count, 1) * 32 - 1).bit_length())


def _bitmap_slots(bits: int, hashes: np.ndarray) -> np.ndarray:
    return (hashes >> np.uint64(64 - bits)).astype(np.int64)


def build_bitmap(hashes: np.ndarray, bits: int) -> np.ndarray:
    """The bitmap :class:`BenchmarkIndex` keeps: bit ``slot`` set for the top ``bits`` bits of each hash."""
    slots = _bitmap_slots(bits, hashes)
    bitmap = np.zeros(1 << (bits - 3), np.uint8)
    np.bitwise_or.at(bitmap, slots >> 3, (1 << (slots & 7)).astype(np.uint8))
    return bitmap


def _bitmap_test(bitmap: np.ndarray, bits: int, hashes: np.ndarray) -> np.ndarray:
    slots = _bitmap_slots(bits, hashes)
    return (bitmap[slots >> 3] >> (slots & 7).astype(np.uint8)) & 1 == 1


def item_texts(item: BenchmarkItem, with_context: bool = False) -> list[tuple[int, str, int | None]]:
    """``(variant index, text, question words)`` of one item: see :data:`VARIANTS`.

    ``question words`` (None for texts that are not question + options) is the number of words of the
    question at the start of the text; see :func:`max_start` for what it restricts. A text with at least
    ``n`` words is indexed by its n-grams starting at 0 .. :func:`max_start`; one with ``min_short_words``
    to ``n - 1`` words by one shingle, the whole text; a shorter one not at all.
    """
    texts: list[tuple[int, str, int | None]] = [(0, item.question, None)]
    if item.options:
        question_words = len(words(item.question))
        shown = "\n".join(f"{o['letter']}. {o['text']}" for o in item.options)
        texts.append((1, f"{item.question}\n{shown}", question_words))
        texts.append((2, mcqa_matching_text(item.question, item.options), question_words))
    if with_context and item.context:
        texts.append((3, item.context, None))
    return texts


def max_start(n_words: int, n: int, question_words: int | None) -> int:
    """Last start position of an n-gram kept for a text of ``n_words`` words (>= n).

    In a question + options text an n-gram must hold ``min(question words, ceil(n / 2))`` words of the
    question: runs of option texts with a word or two of question before them ("... deficiency of: A.
    vitamin A B. vitamin D C. vitamin C D. vitamin B") are shared by unrelated items and are not evidence
    that a row holds this item.
    """
    last = n_words - n
    if question_words is None:
        return last
    return min(last, question_words - min(question_words, n // 3))


@dataclass
class _Texts:
    """Benchmark texts tokenised into one array: text ``t`` owns ``tokens[offsets[t]:offsets[t + 1]]``."""

    tokens: list[str]
    offsets: list[int]
    last_starts: list[int]
    entry_item: list[int]
    entry_variant: list[int]


def _collect_texts(
    items: Sequence[BenchmarkItem], n: int, min_short_words: int, with_context: bool
) -> _Texts:
    texts = _Texts([], [0], [], [], [])
    for i, item in enumerate(items):
        for variant, text, question_words in item_texts(item, with_context):
            toks = words(text)
            if len(toks) < min(n, min_short_words):
                continue
            texts.tokens += toks
            texts.offsets.append(len(texts.tokens))
            texts.last_starts.append(max_start(len(toks), n, question_words))
            texts.entry_item.append(i)
            texts.entry_variant.append(variant)
    return texts


def _text_shingle_hashes(texts: _Texts, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(entry, hash)`` pairs of every text, sorted by entry then hash (see text_shingles)."""
    offsets = np.asarray(texts.offsets, np.int64)
    sizes = np.diff(offsets)
    tokens = token_hashes(texts.tokens)
    # Long texts: their n-grams up to the last allowed start.
    hashes, piece, start, _ = window_hashes(tokens, offsets, [n])
    keep = start <= np.asarray(texts.last_starts, np.int64)[piece]
    long_piece, long_hashes = piece[keep], hashes[keep]
    # Short texts: one shingle, the whole text, hashed over those texts' tokens only (cutting every
    # text into windows of every short length took most of the build).
    short = np.flatnonzero(sizes < n)
    short_offsets = np.r_[0, np.cumsum(sizes[short])]
    gather = np.repeat(offsets[short] - short_offsets[:-1], sizes[short]) + np.arange(short_offsets[-1])
    hashes, piece, start, length = window_hashes(
        tokens[gather], short_offsets, sorted({int(s) for s in sizes[short]})
    )
    whole = (start == 0) & (length == sizes[short][piece])
    piece = np.concatenate([long_piece, short[piece[whole]]])
    hashes = np.concatenate([long_hashes, hashes[whole]])
    order = np.lexsort((hashes, piece))
    piece, hashes = piece[order], hashes[order]
    first = np.ones(len(piece), bool)
    first[1:] = (piece[1:] != piece[:-1]) | (hashes[1:] != hashes[:-1])
    return piece[first], hashes[first]


def build_index(
    items: Sequence[BenchmarkItem],
    n: int = 13,
    min_short_words: int = 8,
    with_context: bool = False,
) -> BenchmarkIndex:
    """Index the shingles of every item's texts (see module docstring)."""
    texts = _collect_texts(items, n, min_short_words, with_context)
    entry_of, hashes = _text_shingle_hashes(texts, n)
    entry_item = np.asarray(texts.entry_item, np.int64)
    order = np.argsort(hashes, kind="stable")
    sizes = np.diff(np.asarray(texts.offsets, np.int64))
    bits = bitmap_bits_for(len(hashes))
    return BenchmarkIndex(
        n=n,
        lengths=tuple(sorted({n, *(int(s) for s in sizes if s < n)})),
        hashes=hashes[order],
        entry_of=entry_of[order].astype(np.int32),
        entry_item=entry_item.astype(np.int32),
        entry_variant=np.asarray(texts.entry_variant, np.int8),
        entry_size=np.bincount(entry_of, minlength=len(entry_item)).astype(np.int32),
        items=tuple((it.benchmark, it.item_id) for it in items),
        bitmap=build_bitmap(hashes, bits),
        bitmap_bits=bits,
    )
