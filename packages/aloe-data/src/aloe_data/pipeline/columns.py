"""Setting a column, or one key of every row's JSON ``meta``, on an Arrow batch.

Stages annotate batches in place of dropping rows; each of them used to drop-and-append its annotation
columns and parse, edit and re-serialise ``meta`` by hand. These two setters are that code, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_core.schemas import dumps_meta, loads_meta

META = "meta"


def set_column(
    table: pa.Table, field: pa.Field | str, values: Sequence[Any] | pa.Array | pa.ChunkedArray
) -> pa.Table:
    """``table`` with column ``field`` set to ``values``: replaced in place when it exists (keeping its
    position), appended otherwise. A plain name takes the existing column's type, else the values' type."""
    if isinstance(field, str) and field in table.column_names:
        field = table.schema.field(field)
    if isinstance(field, str):
        array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
        field = pa.field(field, array.type)
    else:
        array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, field.type)
        if array.type != field.type:
            array = array.cast(field.type)
    if field.name in table.column_names:
        return table.set_column(table.column_names.index(field.name), field, array)
    return table.append_column(field, array)


def set_columns(table: pa.Table, columns: Mapping[pa.Field | str, Any]) -> pa.Table:
    """:func:`set_column` for each ``field: values`` of ``columns``, in order."""
    for field, values in columns.items():
        table = set_column(table, field, values)
    return table


def update_meta(table: pa.Table, key: str, values: Sequence[Any], *, merge: bool = False) -> pa.Table:
    """``meta[key] = value`` for every row whose value is not None (other rows' meta is left as is).

    With ``merge``, a dict value is merged into an existing ``meta[key]`` dict instead of replacing it.
    Only the changed rows' meta strings are parsed and re-serialised; the others are not even converted
    to Python.
    """
    if len(values) != table.num_rows:
        raise ValueError(f"update_meta: {len(values)} values for {table.num_rows} rows")
    changed = [i for i, value in enumerate(values) if value is not None]
    if not changed:
        return table
    column = table.column(META).combine_chunks()
    updated = []
    for i, text in zip(changed, column.take(pa.array(changed)).to_pylist(), strict=True):
        meta, value = loads_meta(text), values[i]
        if merge and isinstance(value, Mapping) and isinstance(meta.get(key), dict):
            meta[key] = {**meta[key], **value}
        else:
            meta[key] = value
        updated.append(dumps_meta(meta))
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[changed] = True
    return set_column(
        table, META, pc.replace_with_mask(column, pa.array(mask), pa.array(updated, column.type))
    )
