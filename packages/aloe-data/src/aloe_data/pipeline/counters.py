"""Stage counters: numbers a stage reports beside its drop reasons (datatrove's ``stat_update``), e.g.
how many emails ``clean`` masked.

Counters travel with the rows: :func:`add_counters` stores a batch's counts as JSON in a hidden
``_counters`` column on the batch's first row, and the stage writer (:class:`~aloe_data.pipeline.writer.
StageSink`) takes the column off (:func:`pop_counters`) and sums it over the rows it writes. Every row
reaches the writer exactly once, so the sums are right however Ray splits, retries or fuses the tasks
(a counter held in an actor or a driver-side accumulator would count a retried task twice), and they
are recorded in the stage's manifest entry as ``counters``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

COUNTERS = "_counters"


def add_counters(table: pa.Table, counts: Mapping[str, int]) -> pa.Table:
    """``table`` with ``counts`` added to the counters it carries (zeros are left out).

    A batch without rows cannot carry counts; callers count what their rows did, so an empty batch has
    none to report.
    """
    counts = {k: int(v) for k, v in counts.items() if v}
    if not counts:
        return table
    if table.num_rows == 0:
        raise ValueError(f"add_counters: an empty batch cannot carry counters {counts}")
    table, previous = pop_counters(table)
    previous.update(counts)
    values = [json.dumps(dict(sorted(previous.items())))] + [None] * (table.num_rows - 1)
    return table.append_column(pa.field(COUNTERS, pa.string()), pa.array(values, pa.string()))


def pop_counters(table: pa.Table) -> tuple[pa.Table, Counter[str]]:
    """``table`` without its counters column, and the sum of the counts it carried."""
    total: Counter[str] = Counter()
    if COUNTERS not in table.column_names:
        return table, total
    column = table.column(COUNTERS)
    for text in column.filter(pc.is_valid(column)).to_pylist():
        total.update(json.loads(text))
    return table.drop_columns([COUNTERS]), total
