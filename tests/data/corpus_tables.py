"""The embedded corpus as annotated Arrow tables, read in this process (no Ray): what the ingest stage
gives the stages after it, for tests and single-core benchmarks of one stage."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from aloe_core.containers import READERS
from aloe_data.pipeline.annotations import annotated_schema
from aloe_data.sources.config import SourceConfig, kinds_for_format
from aloe_data.sources.paths import resolve_entry
from aloe_data.sources.records import to_row
from aloe_data.sources.sniff import resolve_formats
from aloe_fixtures.corpus import FILE_SHARES, write_sample


def _source_rows(source: SourceConfig, kind: str) -> list[dict]:
    """Every row of ``source`` as ingest makes it (malformed rows included, marked)."""
    rows = []
    for entry in source.paths:
        fs, units = resolve_entry(source, 0, entry)
        for unit in units:
            with fs.open_input_stream(unit.path) as handle:
                rows += [to_row(raw, unit.rel, source, kind) for raw in READERS[unit.container](handle)]
    return rows


def corpus_tables(rows: int, seed: int = 0) -> dict[str, pa.Table]:
    """The sample corpus of ``rows`` rows (``write_sample``) as one ``sft`` and one ``preference`` table
    with ingest's annotated schema, files in :data:`FILE_SHARES` order."""
    out: dict[str, list[dict]] = {"sft": [], "preference": []}
    with tempfile.TemporaryDirectory() as folder:
        write_sample(Path(folder), rows, seed=seed)
        sources = [
            SourceConfig(name=path.split("/")[0], path=str(Path(folder) / path)) for path in FILE_SHARES
        ]
        for source in resolve_formats(sources):
            kind = kinds_for_format(source.format)[0]
            out[kind] += _source_rows(source, kind)
    return {kind: pa.Table.from_pylist(rows, schema=annotated_schema(kind)) for kind, rows in out.items()}
