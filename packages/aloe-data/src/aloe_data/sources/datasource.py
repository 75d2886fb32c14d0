"""A Ray Data datasource over every file of every source of a run, read and normalised in the read tasks.

One datasource (not one per source joined with ``union``) because Ray's ordered ``union`` interleaves
its inputs block by block; a single file list in run order, split into contiguous read tasks, gives
rows in exactly the order sources, files and lines are listed when ``preserve_order`` is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import ray
from ray.data._internal.util import infer_compression  # what the Ray read tasks use
from ray.data.datasource import FileBasedDatasource

from aloe_core.containers import READERS
from aloe_data.pipeline.annotations import annotated_schema
from aloe_data.sources.config import SourceConfig
from aloe_data.sources.paths import FileUnit
from aloe_data.sources.records import to_row

ROWS_PER_BLOCK = 2000


class SourcesDatasource(FileBasedDatasource):
    """Reads :class:`FileUnit` s (files of configured sources) into annotated rows of ``kind``.

    Each yielded block holds at most :data:`ROWS_PER_BLOCK` rows of one file, with the schema
    :func:`~aloe_data.pipeline.annotations.annotated_schema` of ``kind``.
    """

    def __init__(
        self,
        units: list[FileUnit],
        sources: list[SourceConfig],
        kind: str,
        filesystem: pafs.FileSystem,
    ) -> None:
        super().__init__([u.path for u in units], filesystem=filesystem)
        self._sources = list(sources)
        self._kind = kind
        # The unit table goes to the object store once, instead of inside every serialised read task.
        self._units_ref = ray.put({u.path: u for u in units})
        self._units: dict[str, FileUnit] | None = None

    def get_name(self) -> str:
        return "AloeSources"

    def _unit(self, path: str) -> FileUnit:
        if self._units is None:
            self._units = ray.get(self._units_ref)
        return self._units[path]

    def _open_input_source(self, filesystem: Any, path: str, **open_args: Any) -> pa.NativeFile:
        # Parquet needs random access (footer first); the other containers are read as streams, with
        # compression (.gz, .bz2, .zst) inferred from the file name by the base class.
        if self._unit(path).container == "parquet":
            return filesystem.open_input_file(path)
        return super()._open_input_source(filesystem, path, **open_args)

    def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        unit = self._unit(path)
        yield from read_unit(f, unit, self._sources[unit.source_index], self._kind)


def read_unit(f: pa.NativeFile, unit: FileUnit, source: SourceConfig, kind: str) -> Iterator[pa.Table]:
    """The annotated rows of one opened file, in blocks of at most :data:`ROWS_PER_BLOCK` rows."""
    schema = annotated_schema(kind)
    rows: list[dict[str, Any]] = []
    emitted = False
    for raw in READERS[unit.container](f):
        rows.append(to_row(raw, unit.rel, source, kind))
        if len(rows) >= ROWS_PER_BLOCK:
            yield pa.Table.from_pylist(rows, schema=schema)
            rows, emitted = [], True
    if rows or not emitted:
        # An empty file still yields an empty block, so the Dataset always knows its schema.
        yield pa.Table.from_pylist(rows, schema=schema)


def read_units_in_process(
    units: list[FileUnit], sources: list[SourceConfig], kind: str, filesystem: pafs.FileSystem
) -> Iterator[pa.Table]:
    """Every file's blocks, in order, read in this process (tiny inputs, :mod:`aloe_data.pipeline.local`):
    the rows :class:`SourcesDatasource` gives, without Ray (constructing the datasource starts Ray)."""
    for unit in units:
        if unit.container == "parquet":
            handle = filesystem.open_input_file(unit.path)
        else:
            handle = filesystem.open_input_stream(unit.path, compression=infer_compression(unit.path))
        with handle:
            yield from read_unit(handle, unit, sources[unit.source_index], kind)
