"""A Ray Data datasource over every file of every source of a run, read and normalised in the read tasks.

One datasource (not one per source joined with ``union``) because Ray's ordered ``union`` interleaves
its inputs block by block; a single list of read tasks in run order (:mod:`aloe_data.sources.pieces`:
files cut into pieces, packed into tasks that fill the cluster's CPUs) gives rows in exactly the order
sources, files and lines are listed when ``preserve_order`` is on. The driver reads tiny inputs with the
same functions, without Ray (:func:`read_units_in_process`), so both give the same rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from aloe_core import collector
from aloe_core.containers import READERS, iter_json, iter_jsonl
from aloe_core.schemas import table_from_rows
from aloe_data.pipeline.annotations import annotated_schema
from aloe_data.sources.config import SourceConfig
from aloe_data.sources.paths import FileUnit
from aloe_data.sources.pieces import Piece, open_piece, plan_tasks
from aloe_data.sources.records import to_row

ROWS_PER_BLOCK = 2000


class SourcesDatasource(Datasource):
    """Reads the pieces of :class:`FileUnit` s (files of configured sources) into annotated rows of
    ``kind``, in the read tasks :func:`~aloe_data.sources.pieces.plan_tasks` plans for ``cpus`` CPUs.

    Each yielded block holds at most :data:`ROWS_PER_BLOCK` rows of one file, with the schema
    :func:`~aloe_data.pipeline.annotations.annotated_schema` of ``kind``.
    """

    def __init__(
        self,
        units: list[FileUnit],
        sources: list[SourceConfig],
        kind: str,
        filesystem: pafs.FileSystem,
        cpus: int,
    ) -> None:
        super().__init__()
        self._tasks = plan_tasks(units, filesystem, cpus)
        self._sources = list(sources)
        self._kind = kind
        self._filesystem = filesystem

    @property
    def num_tasks(self) -> int:
        return len(self._tasks)

    def get_name(self) -> str:
        return "AloeSources"

    def estimate_inmemory_data_size(self) -> int:
        return sum(piece.size for task in self._tasks for piece in task)

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
        # The planned tasks whatever `parallelism` says (the plan already sized them for the cluster).
        schema = annotated_schema(self._kind)
        return [
            ReadTask(
                _reader(pieces, self._sources, self._kind, self._filesystem),
                BlockMetadata(
                    num_rows=None,
                    size_bytes=sum(p.size for p in pieces),
                    exec_stats=None,
                    input_files=tuple(dict.fromkeys(p.unit.path for p in pieces)),
                ),
                schema=schema,
                per_task_row_limit=per_task_row_limit,
            )
            for pieces in self._tasks
        ]


def _reader(pieces: list[Piece], sources: list[SourceConfig], kind: str, filesystem: pafs.FileSystem):
    def read() -> Iterator[pa.Table]:
        yield from read_pieces(pieces, sources, kind, filesystem)

    return read


def read_pieces(
    pieces: list[Piece], sources: list[SourceConfig], kind: str, filesystem: pafs.FileSystem
) -> Iterator[pa.Table]:
    """The annotated rows of ``pieces``, in order, in blocks of at most :data:`ROWS_PER_BLOCK` rows."""
    for piece in pieces:
        with open_piece(filesystem, piece) as handle:
            yield from read_unit(handle, piece, sources[piece.unit.source_index], kind)


def read_unit(f: Any, piece: Piece, source: SourceConfig, kind: str) -> Iterator[pa.Table]:
    """The annotated rows of one opened piece, in blocks of at most :data:`ROWS_PER_BLOCK` rows."""
    unit = piece.unit
    schema = annotated_schema(kind)
    if unit.container == "jsonl":
        raws = iter_jsonl(f, first_line=piece.first_line)
    elif unit.container == "json":
        raws = iter_json(f, after=piece.after, upto=piece.upto)
    else:
        raws = READERS[unit.container](f)
    records = (to_row(raw, unit.rel, source, kind) for raw in raws)
    first = True
    while True:
        # The collector is off while a block's rows are built (aloe_core.collector): in a 1-CPU pipeline
        # worker, collections during ingest took 1.7 s of its 20 s (16 full ones of ~0.1 s, each walking
        # every object the worker holds) and 0.18 s with the pause, found with gc.callbacks.
        with collector.paused():
            block = table_from_rows(list(itertools.islice(records, ROWS_PER_BLOCK)), schema)
        if block.num_rows or first:  # an empty file still yields an empty block: the Dataset's schema
            yield block
        if block.num_rows < ROWS_PER_BLOCK:
            return
        first = False


def read_units_in_process(
    units: list[FileUnit], sources: list[SourceConfig], kind: str, filesystem: pafs.FileSystem
) -> Iterator[pa.Table]:
    """Every file's blocks, in order, read in this process (tiny inputs, :mod:`aloe_data.pipeline.local`):
    the rows :class:`SourcesDatasource` gives, without Ray."""
    sizes = [info.size or 0 for info in filesystem.get_file_info([u.path for u in units])]
    yield from read_pieces(
        [Piece(u, size=s) for u, s in zip(units, sizes, strict=True)], sources, kind, filesystem
    )
