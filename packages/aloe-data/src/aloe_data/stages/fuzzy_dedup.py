"""Near-duplicate removal with MinHash LSH, as a pipeline stage (``type: fuzzy_dedup``).

Two rows are near-duplicates when their MinHash signatures (datasketch's hash family, over word or
character n-grams of :func:`aloe_core.text.matching_text` after normalisation) share an LSH band, and,
with ``verify``, their exact shingle Jaccard is >= ``threshold``. Clusters are connected components;
each keeps one row (highest score, then longest answer, then smallest id). See
:mod:`aloe_data.dedup.fuzzy` for the distributed steps and how far the driver-side part scales.

Like ``exact_dedup``, only ids leave the workers: :func:`aloe_data.dedup.near_duplicates` returns the
dropped ids with ``duplicate_of`` and ``similarity``, that table is broadcast through the object store,
and a map pass marks those rows in input order, so reruns write byte-identical shards. Dropped rows get
``drop_reason="near_duplicate"``, a ``drop_detail`` sentence, and the ``duplicate_of`` and
``similarity`` columns (null on kept rows).

Inputs the stage defines behaviour for: rows whose text has no shingles (empty, or only punctuation)
are never near-duplicates of anything; a text with fewer words (characters) than ``ngram`` is one
shingle, its whole normalised text, so it only matches the same short text; strings that are not valid
UTF-8 raise :class:`aloe_core.errors.InputError` naming the row and column.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import ray
import ray.data
from pydantic import Field

from aloe_data.dedup import DROP_REASON, MinHashConfig, near_duplicates
from aloe_data.dedup.broadcast import IdIndex, worker_get
from aloe_data.pipeline.annotations import with_annotations
from aloe_data.pipeline.stage import Stage, StageConfig, StageContext

DUPLICATE_OF = "duplicate_of"
SIMILARITY = "similarity"
ANNOTATION_FIELDS = (pa.field(DUPLICATE_OF, pa.string()), pa.field(SIMILARITY, pa.float64()))


class FuzzyDedupConfig(MinHashConfig, StageConfig):
    """The MinHash / LSH / keep-rule settings of :class:`~aloe_data.dedup.MinHashConfig`, plus batching."""

    type: Literal["fuzzy_dedup"] = "fuzzy_dedup"
    # Rows per signature batch: numpy overhead is amortised from ~1k rows; memory is ~2 KB a row.
    batch_size: int = Field(4096, ge=1)
    # Partitions of the band-key shuffle; None: min(200, 2 x cluster CPUs).
    num_partitions: int | None = Field(None, ge=1)

    def minhash(self) -> MinHashConfig:
        """The library config (only the MinHash fields)."""
        return MinHashConfig(**self.model_dump(include=set(MinHashConfig.model_fields)))


def _index(dropped: pa.Table) -> tuple[IdIndex, pa.Table]:
    return IdIndex(dropped["id"]), dropped


def _detail(kept_id: str, similarity: float, verified: bool) -> str:
    measure = "Jaccard" if verified else "estimated Jaccard"
    return f"near duplicate of {kept_id} ({measure} {similarity:.3f})"


def mark_near_duplicates(table: pa.Table, dropped: pa.Table, verified: bool) -> pa.Table:
    """``table`` with the rows whose id is in ``dropped`` (id, duplicate_of, similarity) marked, and
    ``duplicate_of`` / ``similarity`` columns added (null on other rows); row order unchanged."""
    if dropped.num_rows == 0 or table.num_rows == 0:
        position = np.full(table.num_rows, -1, dtype=np.int64)
    else:
        position = IdIndex(dropped["id"]).positions(table["id"])
    return _mark(table, dropped, position, verified)


def _mark(table: pa.Table, dropped: pa.Table, position: np.ndarray, verified: bool) -> pa.Table:
    hit = position >= 0
    info = dropped.take(pa.array(position[hit], pa.int64()))
    kept_ids = np.full(table.num_rows, None, dtype=object)
    kept_ids[hit] = info[DUPLICATE_OF].to_numpy(zero_copy_only=False)
    similarity = np.full(table.num_rows, np.nan)
    similarity[hit] = info[SIMILARITY].to_numpy()
    reasons = [DROP_REASON if h else None for h in hit.tolist()]
    details = [
        _detail(k, s, verified) if h else None
        for h, k, s in zip(hit.tolist(), kept_ids.tolist(), similarity.tolist(), strict=True)
    ]
    out = with_annotations(table, reasons, details)
    columns = {DUPLICATE_OF: pa.array(kept_ids, pa.string()), SIMILARITY: pa.array(similarity, mask=~hit)}
    for field in ANNOTATION_FIELDS:
        if field.name in out.column_names:
            out = out.drop_columns([field.name])
        out = out.append_column(field, columns[field.name].cast(field.type))
    return out


def _annotate(batch: pa.Table, *, dropped: ray.ObjectRef, verified: bool) -> pa.Table:
    if batch.num_rows == 0:
        return batch
    index, table = worker_get(dropped, _index)  # indexed once per worker process, not per batch
    return _mark(batch, table, index.positions(batch["id"]), verified)


class FuzzyDedupStage(Stage):
    """See module docstring."""

    config_class = FuzzyDedupConfig

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        config: FuzzyDedupConfig = self.config  # type: ignore[assignment]
        dropped = near_duplicates(
            ds, config.minhash(), batch_size=config.batch_size, num_partitions=config.num_partitions
        )
        return ds.map_batches(
            _annotate,
            batch_format="pyarrow",
            fn_kwargs={"dropped": ray.put(dropped), "verified": config.verify},
        )
