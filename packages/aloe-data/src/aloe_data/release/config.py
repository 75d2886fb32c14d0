"""What a dataset release is made with: split, shard size, token unit, licenses, card text, Hub target.

One default per setting, here; ``aloe data release`` takes ``--config FILE`` and ``--set key=value`` over
them. Example YAML (``configs/release/sample-sft.yaml``)::

    validation_fraction: 0.05
    default_license: apache-2.0
    licenses: {medmcqa: mit}
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from aloe_core.config import StrictModel

VERSION = re.compile(r"^\d+\.\d+\.\d+$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class ReleaseConfig(StrictModel):
    """Settings of ``aloe data release`` (name and version are arguments: they differ every time)."""

    validation_fraction: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Share of each (source, task) stratum held out as the validation split (rounded "
        "half up per stratum; a stratum always keeps one train row).",
    )
    seed: int = Field(0, description="Seed of the split: rows are ordered by a hash of (seed, id).")
    shard_bytes: int = Field(
        256 * 2**20,
        ge=2**16,
        description="Arrow bytes per Parquet file at most (~256 MiB in memory is 50-120 MB zstd on disk: "
        "few files for a million rows, each small enough to stream and to re-upload alone).",
    )
    shard_rows: int = Field(500_000, ge=1, description="Rows per Parquet file at most.")
    tokenizer: str | None = Field(
        None,
        description="Hugging Face tokenizer (folder or Hub id) whose tokens the statistics count; "
        "none: whitespace-separated words.",
    )
    licenses: dict[str, str] = Field(
        default_factory=dict,
        description="License id per source name (Hugging Face / SPDX ids, lower case: mit, apache-2.0, "
        "cc-by-4.0, ...). The card lists each; the resulting license is derived from them.",
    )
    default_license: str | None = Field(
        None,
        description="License of every source not in `licenses` (none: `unknown`, and the resulting "
        "license is `unknown` too).",
    )
    pretty_name: str | None = Field(None, description="Card title (default: the release name).")
    description: str | None = Field(None, description="A paragraph for the card's summary.")
    language: list[str] = Field(["en"], description="ISO 639-1 codes of the text.")
    task_categories: list[str] = Field(
        ["question-answering", "text-generation"], description="Hugging Face task categories."
    )
    tags: list[str] = Field(["medical", "healthcare", "aloe"], description="Hub tags of the card.")
    authors: list[str] = Field(default_factory=list, description="Who curated it (card and citation).")
    homepage: str | None = Field(None, description="URL of the dataset or project.")
    hub_repo: str | None = Field(
        None,
        description="Upload the release to this Hugging Face dataset repo (org/name) once written; "
        "needs HF_TOKEN in the environment.",
    )
    hub_private: bool = Field(True, description="Create the Hub repo private (an existing repo is kept).")

    @field_validator("licenses")
    @classmethod
    def _lower(cls, value: dict[str, str]) -> dict[str, str]:
        return {source: license.strip().lower() for source, license in value.items()}

    @field_validator("default_license")
    @classmethod
    def _lower_default(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


def check_name_version(name: str, version: str) -> None:
    """Raise :class:`~aloe_core.errors.InputError` unless ``name`` is a repo-like name and ``version``
    is ``X.Y.Z``."""
    from aloe_core.errors import InputError

    if not NAME.match(name):
        raise InputError(f"--name {name!r}: letters, digits, '.', '_' and '-' only (a Hub repo name)")
    if not VERSION.match(version):
        raise InputError(f"--version {version!r}: must be X.Y.Z (semantic version, e.g. 1.0.0)")
