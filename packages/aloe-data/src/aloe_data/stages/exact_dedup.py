"""Exact deduplication on normalised content, distributed through a hash shuffle.

Two rows are exact duplicates when :func:`aloe_core.text.matching_text` of both normalises to the same
string (case, spacing, punctuation and Unicode forms ignored; an MCQA item's options in any order). Rows
are grouped by the sha256 of that string with Ray Data's ``groupby`` (a hash shuffle, so no single process
sees all keys); in each group the kept row is chosen deterministically (longest answer, then smallest
id) and the others are dropped with ``drop_reason="exact_duplicate"`` and ``duplicate_of`` = the kept id.
Output rows are sorted by id so reruns write identical shards.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import pyarrow as pa
import ray.data

from aloe_core.text import matching_text, normalize_for_matching
from aloe_data.pipeline.annotations import DROP_DETAIL, DROP_REASON
from aloe_data.pipeline.stage import Stage, StageConfig, StageContext

KEY = "_dedup_key"
ANSWER_LEN = "_answer_len"
DUPLICATE_OF = "duplicate_of"


class ExactDedupConfig(StageConfig):
    type: Literal["exact_dedup"] = "exact_dedup"


def answer_length(row: dict) -> int:
    """Length of the row's answer text, the first tie-breaker for which duplicate to keep."""
    if "chosen" in row:
        return len(row["chosen"] or "")
    return sum(len(m["content"]) for m in row.get("messages") or [] if m["role"] == "assistant")


def _add_keys(table: pa.Table) -> pa.Table:
    rows = table.to_pylist()
    keys = [hashlib.sha256(normalize_for_matching(matching_text(r)).encode("utf-8")).hexdigest() for r in rows]
    table = table.append_column(KEY, pa.array(keys, pa.string()))
    return table.append_column(ANSWER_LEN, pa.array([answer_length(r) for r in rows], pa.int64()))


def _mark_group(group: pa.Table) -> pa.Table:
    ids = group.column("id").to_pylist()
    lengths = group.column(ANSWER_LEN).to_pylist()
    keep = min(range(len(ids)), key=lambda i: (-lengths[i], ids[i]))
    reasons = [None if i == keep else "exact_duplicate" for i in range(len(ids))]
    duplicate_of = [None if i == keep else ids[keep] for i in range(len(ids))]
    group = group.drop_columns([c for c in (DROP_REASON, DROP_DETAIL, DUPLICATE_OF) if c in group.column_names])
    group = group.append_column(DROP_REASON, pa.array(reasons, pa.string()))
    group = group.append_column(DROP_DETAIL, pa.array([None] * len(ids), pa.string()))
    return group.append_column(DUPLICATE_OF, pa.array(duplicate_of, pa.string()))


class ExactDedupStage(Stage):
    """See module docstring."""

    config_class = ExactDedupConfig

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        keyed = ds.map_batches(_add_keys, batch_format="pyarrow")
        marked = keyed.groupby(KEY, num_partitions=max(2, ctx.num_cpus)).map_groups(
            _mark_group, batch_format="pyarrow"
        )
        return marked.drop_columns([KEY, ANSWER_LEN]).sort("id")

