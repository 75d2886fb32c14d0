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

    # The default is where the deita_score stage writes its score, so a pipeline that scores before fuzzy
    # dedup keeps the best-scored copy.
    score_key: str | None = Field(
        "deita.score",
        description="Quality score of a row: a float column of this name, else this dotted path of its "
        "meta; the best-scored row of a cluster is kept. Null: ignore scores.",
    )
    prefer_longer_answer: bool = Field(True, description="Then keep the row with the longest answer.")


class MinHashConfig(StrictModel):
    """MinHash signatures, LSH banding and cluster resolution for :func:`aloe_data.dedup.fuzzy_dedup`."""

    # datasketch.MinHash defaults (num_perm=128, seed=1) so signatures can be checked against datasketch.
    num_perm: int = Field(128, ge=1, le=4096, description="MinHash permutations (signature length).")
    seed: int = Field(1, ge=0, lt=2**32, description="Permutation seed (datasketch's default is 1).")
    scheme: Literal["affine32", "legacy"] = Field(
        "affine32",
        description="Hash scheme: affine32 (datasketch >= 2.0's default) or legacy (datasketch < 2.0).",
    )
    # 5-word shingles: datatrove MinhashConfig.n_grams=5 and the GPT-3 / FineWeb fuzzy-dedup setting.
    # For shingle="char" pick a larger n (NeMo Curator uses 24-character shingles).
    ngram: int = Field(5, ge=1, le=1000, description="Shingle size: words (or characters with shingle char).")
    shingle: Literal["word", "char"] = Field(
        "word", description="word or char n-grams of the normalised text."
    )
    # NeMo Curator's and the common fuzzy-dedup default (datasketch MinHashLSH: 0.9).
    threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Jaccard similarity above which rows are near-duplicates (0-1]."
    )
    # Leave both unset to derive them with datasketch's optimiser (threshold 0.8, num_perm 128 -> 9 x 13).
    bands: int | None = Field(
        None, ge=1, description="LSH bands (with rows; default: datasketch's optimum for threshold)."
    )
    rows: int | None = Field(None, ge=1, description="Signature slots per LSH band (with bands).")
    fp_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="False-positive weight of the band optimiser (datasketch's 0.5)."
    )
    fn_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="False-negative weight of the band optimiser (datasketch's 0.5)."
    )
    verify: bool = Field(False, description="Check each candidate pair's exact Jaccard before merging.")
    keep: KeepRule = Field(KeepRule(), description="Which row of a cluster is kept (score_key, ...).")

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
