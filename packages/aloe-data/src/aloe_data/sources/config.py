"""What a pipeline config says about one input source, and which record kinds each layout can produce.

A source is a set of files (``path``: a file, a folder, a glob, or a list of them), stored in one
container (JSONL, JSON, Parquet, a Hugging Face ``save_to_disk`` folder) whose rows follow one record
layout (``format``). Example YAML::

    sources:
      - name: medmcqa
        format: medmcqa
        path: data/medmcqa/*.jsonl
      - name: careqa
        format: prompt_engine_mcqa
        path: data/careqa/careqa_test.json
        include_explanation: false
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from aloe_core.config import StrictModel

Container = Literal["auto", "jsonl", "json", "parquet", "hf_disk"]
Format = Literal[
    "prompt_engine_mcqa",
    "prompt_engine_open",
    "medmcqa",
    "medqa",
    "pubmedqa",
    "openai_chat",
    "sharegpt",
    "alpaca",
    "preference",
]

# What a layout parses a raw row into: a multiple-choice item, a conversation, or a preference pair.
FORMAT_FAMILY: dict[str, str] = {
    "prompt_engine_mcqa": "mcqa",
    "medmcqa": "mcqa",
    "medqa": "mcqa",
    "pubmedqa": "mcqa",
    "prompt_engine_open": "chat",
    "openai_chat": "chat",
    "sharegpt": "chat",
    "alpaca": "chat",
    "preference": "preference",
}
# Record kinds each family can become: an MCQA item is an sft conversation (question -> answer) or, for
# benchmark reference sets, an mcqa record; a conversation is only sft; a pair is only preference.
FAMILY_KINDS: dict[str, tuple[str, ...]] = {
    "mcqa": ("sft", "mcqa"),
    "chat": ("sft",),
    "preference": ("preference",),
}


def kinds_for_format(fmt: str) -> tuple[str, ...]:
    """The record kinds a source of layout ``fmt`` can be read as."""
    return FAMILY_KINDS[FORMAT_FAMILY[fmt]]


class SourceConfig(StrictModel):
    """One input source of a data pipeline run.

    Attributes:
        name: recorded as every row's ``source``; unique within a run.
        format: the record layout of the rows (see :mod:`aloe_core.layouts`); left out, it is
            guessed from the first rows (:mod:`aloe_data.sources.sniff`), and the run says which it chose.
        path: a file, a folder (read recursively; names starting with ``.`` or ``_`` are skipped), a glob
            (``*``, ``?``, ``[..]``, ``**`` for any depth), or a list of them. Local paths or URIs that
            pyarrow understands (``s3://``...); relative paths are taken from the current directory.
        container: how rows are stored; ``auto`` decides per file from its extension (``.jsonl``,
            ``.ndjson``, ``.json``, ``.parquet``, ``.arrow``, optionally ``.gz``/``.bz2``/``.zst``
            compressed for the text ones) or, for a folder, from ``state.json``/``dataset_info.json``/
            ``dataset_dict.json`` (a ``save_to_disk`` folder).
        task: replaces the ``task`` label the layout gives (``mcqa``, ``mcqa_context``, ``chat``,
            ``open_qa``) on sft rows.
        include_explanation: MCQA layouts append the item's explanation to the sft answer text.
    """

    name: str = Field(min_length=1)
    format: Format | None = None
    path: str | list[str]
    container: Container = "auto"
    task: str | None = Field(None, min_length=1)
    include_explanation: bool = True

    @field_validator("name")
    @classmethod
    def _name_is_clean(cls, value: str) -> str:
        if value != value.strip() or "/" in value:
            raise ValueError("must not contain '/' or leading/trailing spaces")
        return value

    @field_validator("path")
    @classmethod
    def _paths_not_empty(cls, value: str | list[str]) -> str | list[str]:
        entries = [value] if isinstance(value, str) else value
        if not entries or any(not entry.strip() for entry in entries):
            raise ValueError("must be a non-empty path or a non-empty list of non-empty paths")
        return value

    @property
    def paths(self) -> list[str]:
        """``path`` as a list."""
        return [self.path] if isinstance(self.path, str) else list(self.path)
