"""What dedup reads from a batch of rows: the compared text, the answer length, the quality score.

Each function takes a pyarrow Table batch (any record kind) and returns one value per row, computed in
Arrow (and, for normalisation, :func:`aloe_data.dedup.normalize.normalize_strings`) for the sft, mcqa
and preference layouts, and falling back to the per-row definitions of :mod:`aloe_core.text` for rows
the vectorised path cannot take (null fields, which the definition rejects) and unknown layouts, so the
result is always exactly what :func:`aloe_core.text.matching_text` would give. Fuzzy dedup shingles
:func:`matching_texts`; exact dedup hashes :func:`normalized_matching_texts`.

Invalid UTF-8: Arrow does not validate strings read from Parquet, so a shard written by other tools can
hold bytes that are not UTF-8 (aloe's own readers quarantine such rows as ``malformed``).
:func:`check_utf8` turns that into an :class:`~aloe_core.errors.InputError` naming the row and column,
instead of a ``UnicodeDecodeError`` from deep inside a Ray task.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_core.errors import InputError
from aloe_core.text import matching_text
from aloe_data.dedup.normalize import normalize_strings

TextFn = Callable[[pa.Table], Sequence[str]]


def _list_values(column: pa.ChunkedArray | pa.Array) -> tuple[pa.ListArray, np.ndarray]:
    """The column as one ListArray and its absolute offsets (int64, length n + 1)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = array.offsets.to_numpy().astype(np.int64)
    return array, offsets


def _contents(column: pa.ChunkedArray | pa.Array) -> pa.ListArray:
    """A list<struct<role, content>> column as list<string> of contents (same offsets and nulls)."""
    messages, _ = _list_values(column)
    contents = pc.struct_field(messages.values, "content")
    return pa.ListArray.from_arrays(messages.offsets, contents, mask=messages.is_null())


def _with_element(lists: pa.ListArray, extra: pa.Array, first: bool) -> pa.ListArray:
    """Each row's list with ``extra[row]`` added first (or last): the matching text of an MCQA item is
    its question then its options, that of a preference row its prompt then ``chosen``."""
    offsets = lists.offsets.to_numpy().astype(np.int64)
    values = lists.values.slice(offsets[0], offsets[-1] - offsets[0])
    n, m = len(extra), len(values)
    grown = offsets - offsets[0] + np.arange(n + 1)
    extra_at = grown[:-1] if first else grown[1:] - 1
    source = np.empty(n + m, dtype=np.int64)  # position in concat([values, extra]) of each output value
    is_extra = np.zeros(n + m, dtype=bool)
    is_extra[extra_at] = True
    source[extra_at] = m + np.arange(n)
    source[~is_extra] = np.arange(m)
    merged = pa.concat_arrays([values, extra.cast(values.type)]).take(pa.array(source))
    return pa.ListArray.from_arrays(pa.array(grown, pa.int32()), merged, mask=lists.is_null())


def _sorted_within_rows(lists: pa.ListArray) -> pa.ListArray:
    """Each row's strings in ascending order (Arrow compares UTF-8 bytes, which orders strings by code
    point, as Python's ``sorted`` does)."""
    offsets = lists.offsets.to_numpy().astype(np.int64)
    values = lists.values.slice(offsets[0], offsets[-1] - offsets[0])
    row_of = np.repeat(np.arange(len(lists)), np.diff(offsets))
    order = pc.sort_indices(
        pa.table({"row": row_of, "value": values}), sort_keys=[("row", "ascending"), ("value", "ascending")]
    )
    relative = pa.array(offsets - offsets[0], pa.int32())
    return pa.ListArray.from_arrays(relative, values.take(order), mask=lists.is_null())


def mcqa_matching_texts(
    question: pa.Array | pa.ChunkedArray, options: pa.Array | pa.ChunkedArray
) -> pa.Array:
    """:func:`aloe_core.text.mcqa_matching_text` of every item: the normalised question, then the
    normalised option texts sorted, joined by newlines (a null options list counts as no options)."""
    options, _ = _list_values(options)
    options = pc.fill_null(options, pa.scalar([], options.type))
    offsets = options.offsets.to_numpy().astype(np.int64)
    flat = options.values.slice(offsets[0], offsets[-1] - offsets[0])
    texts = normalize_strings(pc.struct_field(flat, "text"))
    relative = pa.array(offsets - offsets[0], pa.int32())
    sorted_texts = _sorted_within_rows(pa.ListArray.from_arrays(relative, texts))
    question = question.combine_chunks() if isinstance(question, pa.ChunkedArray) else question
    return pc.binary_join(_with_element(sorted_texts, normalize_strings(question), first=True), "\n")


def _conversation_texts(table: pa.Table) -> pa.Array | None:
    """The matching text by the table's layout, ignoring the ``mcqa`` column (None: no known layout)."""
    names = set(table.column_names)
    if {"question", "options"} <= names:
        return mcqa_matching_texts(table["question"], table["options"])
    if "messages" in names:
        return pc.binary_join(_contents(table["messages"]), "\n")
    if {"prompt", "chosen"} <= names:
        chosen = table["chosen"].combine_chunks()
        return pc.binary_join(_with_element(_contents(table["prompt"]), chosen, first=False), "\n")
    return None


def _item_texts(item: pa.StructArray) -> pa.Array:
    """The matching text of each row's ``mcqa`` item (null rows give texts nobody reads)."""
    return mcqa_matching_texts(pc.struct_field(item, "question"), pc.struct_field(item, "options"))


def matching_text_array(table: pa.Table) -> pa.Array:
    """:func:`aloe_core.text.matching_text` of every row, as an Arrow string array, computed in Arrow.

    Same precedence as the definition: a non-null ``mcqa`` item, else the row's own question and
    options, else its messages, else prompt + chosen. Rows the vectorised path leaves null (a null
    message list, question or option text) go through the definition, so they fail as it does.
    """
    item = table["mcqa"].combine_chunks() if "mcqa" in table.column_names else None
    items = 0 if item is None else len(item) - item.null_count
    if items == len(table) and items:  # every row an MCQA item (batches mostly hold one source)
        texts = _item_texts(item)
    else:
        texts = _conversation_texts(table)
        if texts is None:
            return pa.array([matching_text(row) for row in table.to_pylist()], pa.string())
        if items:  # some rows items, some not: pick per row (a copy of every text, so only when mixed)
            texts = pc.if_else(pc.is_valid(item), _item_texts(item), texts)
    per_row = np.flatnonzero(pc.is_null(texts).to_numpy(zero_copy_only=False))
    if not len(per_row):
        return texts
    fixed = [matching_text(table.slice(i, 1).to_pylist()[0]) for i in per_row.tolist()]
    return pc.replace_with_mask(texts, pc.is_null(texts), pa.array(fixed, texts.type))


def matching_texts(table: pa.Table) -> list[str]:
    """:func:`aloe_core.text.matching_text` of every row (what fuzzy dedup shingles)."""
    return matching_text_array(table).to_pylist()


def normalized_matching_texts(table: pa.Table) -> pa.Array:
    """``normalize_for_matching(matching_text(row))`` of every row: the text exact dedup compares.

    The definition normalises the whole matching text once more (an MCQA item's newlines become
    spaces); that second pass is applied to the joined array here too, so the result is exactly it.
    """
    return normalize_strings(matching_text_array(table))


def answer_lengths(table: pa.Table) -> np.ndarray:
    """Characters of each row's answer, as exact dedup measures it: all assistant messages (sft) or
    ``chosen`` (preference); 0 for rows without one."""
    names = set(table.column_names)
    if "messages" in names:
        messages, offsets = _list_values(table["messages"])
        # The messages of rows offsets[0]..offsets[-1] of the child array (a slice starts mid-array).
        flat = messages.values.slice(offsets[0], offsets[-1] - offsets[0])
        lengths = pc.fill_null(pc.utf8_length(pc.struct_field(flat, "content")), 0).to_numpy()
        assistant = pc.fill_null(pc.equal(pc.struct_field(flat, "role"), "assistant"), False)
        weights = np.where(assistant.to_numpy(zero_copy_only=False), lengths, 0)
        row_of = np.repeat(np.arange(len(table)), np.diff(offsets))
        total = np.bincount(row_of, weights=weights, minlength=len(table)).astype(np.int64)
        return np.where(messages.is_valid().to_numpy(zero_copy_only=False), total, 0)
    if "chosen" in names:
        return pc.fill_null(pc.utf8_length(table["chosen"]), 0).to_numpy().astype(np.int64)
    return np.zeros(len(table), dtype=np.int64)


def check_utf8(table: pa.Table) -> None:
    """Raise :class:`InputError` if any string in ``table`` (nested ones included) is not valid UTF-8.

    Full validation is one C pass over the bytes; the slow per-row search only runs to name the row.
    """
    for name in table.column_names:
        column = table[name]
        try:
            column.validate(full=True)
        except pa.ArrowInvalid as exc:
            if "UTF8" not in str(exc):
                raise
            row = _first_undecodable_row(column)
            row_id = table["id"][row].as_py() if "id" in table.column_names and name != "id" else None
            where = f"row {row_id!r}" if row_id is not None else f"row {row} of a batch"
            raise InputError(
                f"{where}: column {name!r} holds bytes that are not valid UTF-8; fix the shard, or read the "
                "source with `aloe data ingest`, which quarantines such rows as malformed"
            ) from exc


def _first_undecodable_row(column: pa.ChunkedArray) -> int:
    for i in range(len(column)):
        try:
            column.slice(i, 1).to_pylist()
        except UnicodeDecodeError:
            return i
    return -1


def quality_scores(table: pa.Table, key: str | None) -> np.ndarray:
    """float64 score of every row (NaN = none): column ``key`` if present, else the value at dotted
    path ``key`` of the JSON ``meta`` column (``deita.score`` is ``meta["deita"]["score"]``).

    Only finite numbers count as scores (JSON booleans, strings, NaN and infinities are ignored).
    """
    if key is None:
        return np.full(len(table), np.nan)
    if key in table.column_names:
        values = pc.cast(table[key], pa.float64()).to_numpy(zero_copy_only=False)
        return np.where(np.isfinite(values), values, np.nan)
    if "meta" not in table.column_names:
        return np.full(len(table), np.nan)
    return np.array([_meta_score(text, key) for text in table["meta"].to_pylist()], dtype=np.float64)


def _meta_score(text: str | None, key: str) -> float:
    if not text:
        return math.nan
    value = json.loads(text)
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return math.nan
    return float(value)
