"""Ingest's read plan: the sources' files cut into pieces, packed into read tasks that fill the CPUs.

Why: a read task per file (Ray's ``FileBasedDatasource``) turns a run over one big file, or a few, into
one or a few tasks, however many CPUs there are; and ingest's work is per row (parse, validate, build
the record), so it is CPU-bound and scales only with tasks. The plan aims at ``TASKS_PER_CPU`` tasks per
cluster CPU (the rule :mod:`aloe_data.pipeline.shard_reader` uses for stage inputs), with a piece size of

    target = clamp(total bytes / (cpus x TASKS_PER_CPU), MIN_PIECE_BYTES, MAX_PIECE_BYTES)

* An uncompressed JSONL file larger than 1.5 x target is split at line boundaries into pieces of about
  ``target`` bytes. Rows are located by line number (and ids are built from it), so the driver scans each
  such file once, counting newlines (a sequential read at memory speed; ~0.1 s per 100 MB on a local
  disk), to give every piece its first line number: rows, locators and ids are exactly those of reading
  the file whole.
* An uncompressed JSON document (one top-level object or list: how MedQA, PubMedQA and prompt_engine
  sets ship) larger than 1.5 x target is read in *shares*: it cannot be entered in the middle, but its
  cost is per row (the parse is a few percent of it), so each of ``round(size / target)`` tasks streams
  the document from the start and builds only the rows whose position (bytes read when the row is
  parsed; :func:`aloe_core.containers.iter_json`) falls in its share of the bytes, stopping after it.
  The shares give exactly the rows, locators and ids of one read of the whole file, errors included
  (a syntax error ends the file for every later share too).
* Other files (Parquet, Arrow, compressed files) are one piece each.
* Consecutive whole-file pieces are packed into one task up to ``target`` bytes, so thousands of tiny
  files do not become thousands of tasks. Tasks are listed in file order, then piece order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
from ray.data._internal.util import infer_compression  # what Ray's file read tasks use

from aloe_data.pipeline.shard_reader import TASKS_PER_CPU
from aloe_data.sources.paths import FileUnit

MIN_PIECE_BYTES = 4 << 20  # below this a task's fixed cost (~10-50 ms) outweighs its work
MAX_PIECE_BYTES = 64 << 20  # memory of a task's blocks stays far below Ray's 128 MiB block target
_SCAN_CHUNK = 8 << 20


@dataclass(frozen=True)
class Piece:
    """Bytes ``start`` .. ``end`` (None: to the end) of one file, whose first line is ``first_line``; or,
    for a JSON document, the share of its rows with positions in ``after`` < p <= ``upto``."""

    unit: FileUnit
    start: int = 0
    end: int | None = None
    first_line: int = 1
    size: int = 0  # bytes (for packing and Ray's size estimate)
    after: int = -1
    upto: int | None = None

    @property
    def byte_range(self) -> bool:
        """Whether this is a part of the file's bytes (opened as a window onto them)."""
        return self.start != 0 or self.end is not None

    @property
    def whole(self) -> bool:
        return not self.byte_range and self.after < 0 and self.upto is None


def target_piece_bytes(total: int, cpus: int) -> int:
    """The piece size for ``total`` bytes on ``cpus`` CPUs (module docstring)."""
    return max(MIN_PIECE_BYTES, min(MAX_PIECE_BYTES, math.ceil(total / max(1, cpus * TASKS_PER_CPU))))


def splittable(unit: FileUnit) -> bool:
    """Whether a file can be read in several pieces: plain (uncompressed) JSONL or JSON."""
    return unit.container in ("jsonl", "json") and infer_compression(unit.path) is None


def share_json(unit: FileUnit, size: int, parts: int) -> list[Piece]:
    """``unit`` (a JSON document of ``size`` bytes) as ``parts`` shares of its rows by position."""
    bounds = [size * i // parts for i in range(1, parts)]
    afters, uptos = [-1, *bounds], [*bounds, None]
    return [
        Piece(unit, size=(upto if upto is not None else size) - max(after, 0), after=after, upto=upto)
        for after, upto in zip(afters, uptos, strict=True)
    ]


def split_jsonl(filesystem: pafs.FileSystem, unit: FileUnit, size: int, parts: int) -> list[Piece]:
    """``unit`` cut after the first newline at or past each ``size * i / parts``, with line numbers."""
    targets = [size * i // parts for i in range(1, parts)]
    bounds = [(0, 0)]  # (byte offset of a piece, newlines before it)
    pos = lines = 0
    with filesystem.open_input_stream(unit.path) as stream:
        while targets:
            data = stream.read(_SCAN_CHUNK)
            if not data:
                break
            cursor = 0  # newlines before `cursor` in `data` are counted in `lines`
            while targets and targets[0] < pos + len(data):
                newline = data.find(b"\n", max(targets[0] - pos, cursor))
                if newline == -1:  # the line goes on into the next chunk
                    break
                lines += data.count(b"\n", cursor, newline + 1)
                cursor = newline + 1
                targets.pop(0)
                if pos + cursor < size and pos + cursor > bounds[-1][0]:
                    bounds.append((pos + cursor, lines))
            lines += data.count(b"\n", cursor)
            pos += len(data)
    ends = [start for start, _ in bounds[1:]] + [None]
    return [
        Piece(unit, start, end, before + 1, (end if end is not None else size) - start)
        for (start, before), end in zip(bounds, ends, strict=True)
    ]


def plan_tasks(units: list[FileUnit], filesystem: pafs.FileSystem, cpus: int) -> list[list[Piece]]:
    """The read tasks of ``units`` on ``cpus`` CPUs: lists of pieces, in reading order."""
    sizes = [info.size or 0 for info in filesystem.get_file_info([u.path for u in units])]
    target = target_piece_bytes(sum(sizes), cpus)
    tasks: list[list[Piece]] = []
    packed: list[Piece] = []  # whole files collected into the current task
    for unit, size in zip(units, sizes, strict=True):
        if splittable(unit) and size > 1.5 * target and unit.container == "jsonl":
            pieces = split_jsonl(filesystem, unit, size, round(size / target))
        elif splittable(unit) and size > 1.5 * target:
            pieces = share_json(unit, size, round(size / target))
        else:
            pieces = [Piece(unit, size=size)]
        for piece in pieces:
            if not piece.whole:
                tasks += [packed] if packed else []
                tasks.append([piece])
                packed = []
                continue
            if packed and sum(p.size for p in packed) + piece.size > target:
                tasks.append(packed)
                packed = []
            packed.append(piece)
    return tasks + ([packed] if packed else [])


class _Window:
    """Bytes ``start`` .. ``end`` of a random-access file, read like a stream."""

    def __init__(self, file: Any, start: int, end: int | None) -> None:
        file.seek(start)
        self._file = file
        self._left = None if end is None else end - start

    def read(self, size: int = -1) -> bytes:
        if self._left is not None:
            size = self._left if size < 0 else min(size, self._left)
            self._left -= size
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_piece(filesystem: pafs.FileSystem, piece: Piece) -> Any:
    """An open file for reading ``piece``: random access for Parquet, else a stream (decompressed
    by the file name's suffix, like Ray's file reads), limited to the piece's bytes when it is a part."""
    path = piece.unit.path
    if piece.unit.container == "parquet":
        return filesystem.open_input_file(path)
    if piece.byte_range:
        return _Window(filesystem.open_input_file(path), piece.start, piece.end)
    return filesystem.open_input_stream(path, compression=infer_compression(path))
