"""What fuzzy dedup reads from a batch of rows: the compared text, the answer length, the quality score.

Each function takes a pyarrow Table batch (any record kind) and returns one value per row, vectorised
where the schema allows and falling back to the per-row definitions of :mod:`aloe_core.text` otherwise,
so the result is always exactly what :func:`aloe_core.text.matching_text` would give.

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

TextFn = Callable[[pa.Table], Sequence[str]]


def _list_values(column: pa.ChunkedArray | pa.Array) -> tuple[pa.ListArray, np.ndarray]:
    """The column as one ListArray and its absolute offsets (int64, length n + 1)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = array.offsets.to_numpy().astype(np.int64)
    return array, offsets


def _message_contents(table: pa.Table) -> pa.ListArray:
    """``messages`` as list<string> of contents (same offsets, nulls where a message list is null)."""
    messages, _ = _list_values(table["messages"])
    contents = pc.struct_field(messages.values, "content")
    return pa.ListArray.from_arrays(messages.offsets, contents, mask=messages.is_null())


def matching_texts(table: pa.Table) -> list[str]:
    """:func:`aloe_core.text.matching_text` of every row.

    Plain conversation rows (``messages`` without an ``mcqa`` item) are joined in Arrow; MCQA items,
    preference rows and anything else go through the per-row definition.
    """
    names = set(table.column_names)
    if "messages" not in names or {"question", "options"} <= names:
        return [matching_text(row) for row in table.to_pylist()]
    joined = pc.binary_join(_message_contents(table), "\n")
    per_row = pc.is_null(joined)
    if "mcqa" in names:
        per_row = pc.or_(per_row, pc.is_valid(table["mcqa"]))
    texts = joined.to_pylist()
    for i in np.flatnonzero(per_row.to_numpy(zero_copy_only=False)).tolist():
        texts[i] = matching_text(table.slice(i, 1).to_pylist()[0])
    return texts


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
