"""Configuration of MinHash LSH fuzzy deduplication."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aloe_core.config import StrictModel
from aloe_data.dedup.lsh import optimal_param


class KeepRule(StrictModel):
    """Which row of a near-duplicate cluster is kept; the others are dropped.

    Rows are ranked by, in order: highest quality score (rows without one rank below rows with one),
    then longest answer text (characters of all assistant messages, or ``chosen`` for preference rows,
    as exact dedup measures it), then smallest ``id`` (so the choice never depends on execution order).
    """

    # Read from a float column of this name when the dataset has one, else from this dotted path of the
    # JSON ``meta`` column: the default is where the deita_score stage writes its score, so a pipeline
    # that scores before fuzzy dedup keeps the best-scored copy. None: ignore scores.
    score_key: str | None = "deita.score"
    prefer_longer_answer: bool = True


class MinHashConfig(StrictModel):
    """MinHash signatures, LSH banding and cluster resolution for :func:`aloe_data.dedup.fuzzy_dedup`."""

    # datasketch.MinHash defaults (num_perm=128, seed=1) so signatures can be checked against datasketch.
    num_perm: int = Field(128, ge=1, le=4096)
    seed: int = Field(1, ge=0, lt=2**32)
    # datasketch >= 2.0's default scheme ("affine32": fmix32 pre-mix, a*h+b mod 2**32, unbiased on large
    # sets); "legacy" reproduces datasketch < 2.0 / scheme="legacy" (Mersenne-prime) signatures.
    scheme: Literal["affine32", "legacy"] = "affine32"
    # 5-word shingles: datatrove MinhashConfig.n_grams=5 and the GPT-3 / FineWeb fuzzy-dedup setting.
    # For shingle="char" pick a larger n (NeMo Curator uses 24-character shingles).
    ngram: int = Field(5, ge=1, le=1000)
    shingle: Literal["word", "char"] = "word"
    # Jaccard threshold: NeMo Curator's and the common fuzzy-dedup default (datasketch MinHashLSH: 0.9).
    threshold: float = Field(0.8, gt=0.0, le=1.0)
    # LSH banding; leave both unset to derive them from threshold with datasketch's optimiser
    # (threshold 0.8, num_perm 128 -> 9 bands x 13 rows).
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    # datasketch MinHashLSH default weights (false positive, false negative) for that optimiser.
    fp_weight: float = Field(0.5, ge=0.0, le=1.0)
    fn_weight: float = Field(0.5, ge=0.0, le=1.0)
    # Check every candidate pair's exact Jaccard (of shingle sets) against threshold before merging.
    verify: bool = False
    keep: KeepRule = KeepRule()

    @model_validator(mode="after")
    def _check_bands(self) -> MinHashConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then they are derived from threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if abs(self.fp_weight + self.fn_weight - 1.0) > 1e-9:
            raise ValueError("fp_weight + fn_weight must be 1")
        return self

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): the configured ones, else datasketch's optimum for threshold and num_perm."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return optimal_param(self.threshold, self.num_perm, self.fp_weight, self.fn_weight)
