"""How a stage marks the rows it drops.

A stage never filters rows out of its Dataset: it returns every input row, with ``drop_reason`` set
(non-null) on the rows it drops, and may add more annotation columns (``drop_detail``, ``duplicate_of``,
``similarity``, ``matched_benchmark``...). The stage writer then sends kept rows, cast to the record
schema, to ``part-*.parquet`` and dropped rows, with every annotation column, to ``_dropped/``. Keeping
dropped rows in the same Dataset is what makes ``rows_in == rows_out + dropped`` checkable: nothing can
disappear between the two outputs.
"""

from __future__ import annotations

import pyarrow as pa

from aloe_core.schemas import schema_for

DROP_REASON = "drop_reason"
DROP_DETAIL = "drop_detail"


def annotated_schema(kind: str, extra: list[pa.Field] | None = None) -> pa.Schema:
    """The record schema of ``kind`` with every field nullable (a malformed input row may have no
    content) plus ``drop_reason``, ``drop_detail`` and any ``extra`` annotation fields."""
    fields = [pa.field(f.name, f.type, nullable=True) for f in schema_for(kind)]
    fields += [pa.field(DROP_REASON, pa.string()), pa.field(DROP_DETAIL, pa.string())]
    return pa.schema(fields + list(extra or []))


def with_annotations(
    table: pa.Table, reasons: list[str | None], details: list[str | None] | None = None
) -> pa.Table:
    """Set ``drop_reason``/``drop_detail`` on ``table``, keeping any reason a row already carries."""
    if DROP_REASON in table.column_names:
        previous = table.column(DROP_REASON).to_pylist()
        reasons = [old if old is not None else new for old, new in zip(previous, reasons, strict=True)]
        table = table.drop_columns([DROP_REASON])
    if details is None:
        details = [None] * table.num_rows
    if DROP_DETAIL in table.column_names:
        previous = table.column(DROP_DETAIL).to_pylist()
        details = [old if old is not None else new for old, new in zip(previous, details, strict=True)]
        table = table.drop_columns([DROP_DETAIL])
    table = table.append_column(pa.field(DROP_REASON, pa.string()), pa.array(reasons, pa.string()))
    return table.append_column(pa.field(DROP_DETAIL, pa.string()), pa.array(details, pa.string()))
