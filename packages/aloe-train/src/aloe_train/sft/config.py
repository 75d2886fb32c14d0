"""The SFT recipe's config: the shared recipe blocks plus what SFT reads and how it packs."""

from __future__ import annotations

from pydantic import Field, model_validator

from aloe_core.config import StrictModel
from aloe_train.config import RecipeConfig


class SFTDataConfig(StrictModel):
    """Where the SFT rows come from and how they become packed training rows.

    ``path`` is a pipeline run folder (its manifest names the last stage), a folder of Parquet shards,
    or a glob. Rows need a ``messages`` column (list of {role, content}, aloe's sft schema); ``id`` is
    used when present (held-out split, logging).
    """

    path: str
    eval_path: str | None = None  # separate held-out shards; otherwise eval_fraction of ``path``
    eval_fraction: float = Field(0.0, ge=0, lt=1)  # by a stable hash of the row id, so runs agree
    max_length: int = Field(2048, ge=16)  # tokens per packed row
    pack_window: int = Field(20_000, ge=1)  # rows packed together by best-fit-decreasing
    shuffle: bool = True  # seeded shuffle of rows before packing and of packed rows in later epochs

    @model_validator(mode="after")
    def _one_eval_source(self) -> SFTDataConfig:
        if self.eval_path is not None and self.eval_fraction > 0:
            raise ValueError("set either data.eval_path or data.eval_fraction, not both")
        return self


class SFTConfig(RecipeConfig):
    """``aloe train sft CONFIG``: supervised fine-tuning on chat rows with an assistant-only loss."""

    data: SFTDataConfig
