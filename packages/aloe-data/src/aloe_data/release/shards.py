"""Parquet files of one split, named as the Hub names them (``data/train-00000-of-00003.parquet``).

Rows arrive input file by input file; a file is cut whenever the buffered rows reach ``shard_bytes``
(Arrow bytes) or ``shard_rows``, so memory stays near one shard whatever the release's size. The total
in the name is known only at the end, so files are written under a provisional name and renamed once
the split is complete (all inside the release's staging folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from aloe_data.pipeline.writer import split_for_shards, write_parquet

DATA_DIR = "data"


def shard_name(split: str, index: int, total: int) -> str:
    return f"{DATA_DIR}/{split}-{index:05d}-of-{total:05d}.parquet"


def split_glob(split: str) -> str:
    """The ``data_files`` pattern of a split in the card and the Croissant file."""
    return f"{DATA_DIR}/{split}-*.parquet"


class SplitWriter:
    """Writes one split's rows into ``root/data`` in files of bounded size."""

    def __init__(self, root: Path, split: str, schema: pa.Schema, shard_bytes: int, shard_rows: int) -> None:
        self.root, self.split, self.schema = root, split, schema
        self.shard_bytes, self.shard_rows = shard_bytes, shard_rows
        self._buffer: list[pa.Table] = []
        self._written: list[tuple[Path, dict[str, Any]]] = []

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._buffer.append(table.select(self.schema.names).cast(self.schema))
        if sum(t.nbytes for t in self._buffer) >= self.shard_bytes or self._rows() >= self.shard_rows:
            self._flush(final=False)

    def _rows(self) -> int:
        return sum(t.num_rows for t in self._buffer)

    def _flush(self, final: bool) -> None:
        if not self._buffer:
            return
        pieces = split_for_shards(pa.concat_tables(self._buffer), self.shard_rows, self.shard_bytes)
        # Keep the last, possibly small, piece buffered unless this is the end of the split.
        keep = [] if final or (len(pieces) == 1 and self._is_full(pieces[0])) else pieces[-1:]
        for piece in pieces[: len(pieces) - len(keep)]:
            path = self.root / DATA_DIR / f".{self.split}-{len(self._written):05d}.pending"
            self._written.append((path, write_parquet(piece, path)))
        self._buffer = keep

    def _is_full(self, table: pa.Table) -> bool:
        return table.nbytes >= self.shard_bytes or table.num_rows >= self.shard_rows

    def close(self) -> dict[str, dict[str, Any]]:
        """Write what is buffered, give the files their final names; {relative name: rows, sha256, bytes}."""
        self._flush(final=True)
        files: dict[str, dict[str, Any]] = {}
        for index, (path, info) in enumerate(self._written):
            name = shard_name(self.split, index, len(self._written))
            path.rename(self.root / name)
            files[name] = info
        return files
