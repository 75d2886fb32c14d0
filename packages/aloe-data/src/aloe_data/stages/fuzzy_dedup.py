"""Near-duplicate removal with MinHash LSH, as a pipeline stage (``type: fuzzy_dedup``).

Two rows are near-duplicates when their MinHash signatures (datasketch's hash family, over word or
character n-grams of :func:`aloe_core.text.matching_text` after normalisation) share an LSH band, and,
with ``verify``, their exact shingle Jaccard is >= ``threshold``. Clusters are connected components;
each keeps one row (highest score, then longest answer, then smallest id). See
:mod:`aloe_data.dedup.fuzzy` for the distributed steps and how far the driver-side part scales.

Like ``exact_dedup``, only ids leave the workers: :func:`aloe_data.dedup.near_duplicates` returns the
dropped ids with ``duplicate_of`` and ``similarity``, and :func:`aloe_data.pipeline.broadcast.mark_by_id`
broadcasts that table and marks those rows in input order, so reruns write byte-identical shards.
Dropped rows get ``drop_reason="near_duplicate"``, a ``drop_detail`` sentence, and the ``duplicate_of``
and ``similarity`` columns (null on kept rows).

Inputs the stage defines behaviour for: rows whose text has no shingles (empty, or only punctuation)
are never near-duplicates of anything; a text with fewer words (characters) than ``ngram`` is one
shingle, its whole normalised text, so it only matches the same short text; strings that are not valid
UTF-8 raise :class:`aloe_core.errors.InputError` naming the row and column.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import ray.data
from pydantic import Field

from aloe_data.dedup import DROP_REASON, MinHashConfig, near_duplicates
from aloe_data.pipeline.annotations import with_annotations
from aloe_data.pipeline.broadcast import mark_by_id
from aloe_data.pipeline.columns import set_columns
from aloe_data.pipeline.stage import Stage, StageConfig, StageContext

DUPLICATE_OF = "duplicate_of"
SIMILARITY = "similarity"
DUPLICATE_FIELD = pa.field(DUPLICATE_OF, pa.string())
SIMILARITY_FIELD = pa.field(SIMILARITY, pa.float64())
ANNOTATION_FIELDS = (DUPLICATE_FIELD, SIMILARITY_FIELD)


class FuzzyDedupConfig(MinHashConfig, StageConfig):
    """The MinHash / LSH / keep-rule settings of :class:`~aloe_data.dedup.MinHashConfig`, plus batching."""

    type: Literal["fuzzy_dedup"] = "fuzzy_dedup"
    # Numpy overhead is amortised from ~1k rows; memory is ~2 KB a row.
    batch_size: int = Field(4096, ge=1, description="Rows per signature batch.")
    num_partitions: int | None = Field(
        None, ge=1, description="Partitions of the band-key shuffle (default: min(200, 2 x cluster CPUs))."
    )

    def minhash(self) -> MinHashConfig:
        """The library config (only the MinHash fields)."""
        return MinHashConfig(**self.model_dump(include=set(MinHashConfig.model_fields)))


def _detail(kept_id: str, similarity: float, verified: bool) -> str:
    measure = "Jaccard" if verified else "estimated Jaccard"
    return f"near duplicate of {kept_id} ({measure} {similarity:.3f})"


def mark_near_duplicates(batch: pa.Table, decisions: pa.Table, found: np.ndarray, verified: bool) -> pa.Table:
    """A :data:`~aloe_data.pipeline.broadcast.Marker`: the rows with a decision (``duplicate_of``,
    ``similarity``) are marked, the ``duplicate_of`` / ``similarity`` columns added (null on other rows);
    row order unchanged."""
    kept_ids = decisions[DUPLICATE_OF].to_pylist()
    similarity = decisions[SIMILARITY].to_pylist()
    hits = found.tolist()
    reasons = [DROP_REASON if h else None for h in hits]
    details = [
        _detail(k, v, verified) if h else None for h, k, v in zip(hits, kept_ids, similarity, strict=True)
    ]
    out = with_annotations(batch, reasons, details)
    return set_columns(
        out, {DUPLICATE_FIELD: decisions[DUPLICATE_OF], SIMILARITY_FIELD: decisions[SIMILARITY]}
    )


class FuzzyDedupStage(Stage):
    """Drop near-duplicate rows (MinHash LSH); each cluster keeps its best-scored, then longest, row."""

    config_class = FuzzyDedupConfig
    command = "dedup"
    cli_shortcuts: ClassVar[dict[str, str]] = {"score_key": "keep.score_key"}

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        config: FuzzyDedupConfig = self.config  # type: ignore[assignment]
        dropped = near_duplicates(
            ds, config.minhash(), batch_size=config.batch_size, num_partitions=config.num_partitions
        )
        return mark_by_id(ds, dropped, partial(mark_near_duplicates, verified=config.verify))
