"""Source readers: raw dataset files -> one annotated Ray Dataset of records, bad rows quarantined.

* :class:`SourceConfig` (config.py): name, format (record layout), path(s), container, task,
  include_explanation.
* :func:`check_sources` (read.py): every path resolved and every format checked against the run's kind,
  raising :class:`~aloe_core.errors.InputError` before any work.
* :func:`read_sources` (read.py): a streaming Ray Dataset in deterministic order with the columns of
  ``annotated_schema(kind)``; rows that cannot be parsed or normalised carry ``drop_reason="malformed"``
  and ``drop_detail="<file>:<row>: <field>: <what is wrong>"``.

Modules: :mod:`aloe_core.containers` (how rows are stored: JSONL, JSON, Parquet, Arrow streams) and
:mod:`aloe_core.layouts` (what a row looks like: MedMCQA, MedQA, PubMedQA, prompt_engine, OpenAI chat,
ShareGPT, Alpaca, preference pairs; both in aloe-core because the eval harness reads benchmarks with them
too), sniff.py (a source's layout guessed from its first rows when no format is given), paths.py
(files, folders, globs, save_to_disk folders), records.py (raw row -> output row),
datasource.py (the Ray Data datasource).
"""

from aloe_core.layouts import LAYOUTS, Parsed, RowError
from aloe_data.sources.config import FORMAT_FAMILY, Container, Format, SourceConfig, kinds_for_format
from aloe_data.sources.read import SourcePlan, check_sources, read_sources
from aloe_data.sources.records import MALFORMED, mcqa_answer_text, mcqa_user_text
from aloe_data.sources.sniff import resolve_formats, sniff_format

__all__ = [
    "FORMAT_FAMILY",
    "LAYOUTS",
    "MALFORMED",
    "Container",
    "Format",
    "Parsed",
    "RowError",
    "SourceConfig",
    "SourcePlan",
    "check_sources",
    "kinds_for_format",
    "mcqa_answer_text",
    "mcqa_user_text",
    "read_sources",
    "resolve_formats",
    "sniff_format",
]
