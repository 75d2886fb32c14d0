"""Finished generation results, keyed by row id, so a killed job resumes without regenerating.

Layout: ``<root>/<generation key>/chunk-<hash of the chunk's row ids>.parquet``, each file holding
``id`` and ``result`` (the row's result as JSON) for one actor call, plus the writing worker
(``host:pid``) in the file's metadata. The generation key (:meth:`CotConfig.generation_key`) covers
everything that decides a result, so results of another model, prompt or sampling are never reused;
:func:`prepare` deletes other keys' folders under ``root`` when a stage starts. ``root`` is a local (or
NFS) folder or an ``s3://`` / ``gs://`` URI (:mod:`aloe_core.storage`).

Writes are atomic (:func:`aloe_core.atomic.atomic_write_bytes`: locally a temporary file renamed into
place, on object storage one whole-object PUT), so a reader never sees half a chunk; the file name
depends only on the row ids, so a batch that Ray retries after an actor died rewrites the same file
instead of adding a duplicate. Readers re-list the folder before every lookup, so a chunk written by
another actor (e.g. the first attempt of a retried batch) is found too. One rule says which chunks are
trusted, wherever they are: a chunk counts only if it parses and its ``id`` column hashes to its name
(:func:`chunk_name`: the same rows, none missing or extra); any other is skipped with a warning and its
rows are generated again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aloe_core import storage
from aloe_core.atomic import atomic_write_bytes
from aloe_core.schemas import stable_id

logger = logging.getLogger(__name__)

WORKER_KEY = b"aloe.worker"


def prepare(root: str | Path, key: str) -> str | Path:
    """Create ``root/key`` and remove other keys' folders under ``root`` (results of an old config);
    returns ``root/key`` (a Path locally, the URI otherwise)."""
    storage.makedirs(root)
    for path in storage.list_folders(root):
        if storage.name_of(path) != key:
            logger.info("removing generation chunks of another config: %s", path)
            storage.remove(path)
    target = storage.join(root, key)
    storage.makedirs(target)
    return storage.location(target)


def chunk_name(ids: Iterable[str]) -> str:
    """The file name of the chunk holding exactly the rows ``ids``."""
    return f"chunk-{stable_id(*sorted(ids))}.parquet"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ChunkStore:
    """Read and write one generation key's chunk folder (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = storage.location(directory)
        storage.makedirs(self.directory)
        self._where: dict[str, str] = {}  # row id -> chunk file name
        self._seen: set[str] = set()

    def _read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        path, filesystem = storage.for_arrow(storage.join(self.directory, name))
        return pq.read_table(path, columns=columns, filesystem=filesystem)

    def refresh(self) -> None:
        """Index chunk files written since the last call (only the valid ones: see the module docstring)."""
        for path in storage.list_files(self.directory, "chunk-*.parquet"):
            name = storage.name_of(path)
            if name in self._seen:
                continue
            self._seen.add(name)
            try:
                ids = self._read(name, ["id"]).column("id").to_pylist()
            except (OSError, pa.ArrowException) as exc:
                logger.warning("%s: unreadable chunk skipped (its rows will be regenerated): %s", path, exc)
                continue
            if len(set(ids)) != len(ids) or chunk_name(ids) != name:
                logger.warning("%s: chunk skipped, its rows are not the ones its name records", path)
                continue
            for row_id in ids:
                self._where.setdefault(row_id, name)

    def __len__(self) -> int:
        return len(self._where)

    def get(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored results of those ``ids`` that have one."""
        self.refresh()
        by_file: dict[str, list[str]] = defaultdict(list)
        for row_id in ids:
            if row_id in self._where:
                by_file[self._where[row_id]].append(row_id)
        found: dict[str, dict[str, Any]] = {}
        for name, wanted in by_file.items():
            try:
                table = self._read(name)
            except (OSError, pa.ArrowException) as exc:
                logger.warning("%s: unreadable chunk skipped: %s", storage.join(self.directory, name), exc)
                continue
            table = table.filter(pc.is_in(table.column("id"), pa.array(wanted, pa.string())))
            for row_id, result in zip(
                table.column("id").to_pylist(), table.column("result").to_pylist(), strict=True
            ):
                found[row_id] = json.loads(result)
        return found

    def put(self, results: Mapping[str, Mapping[str, Any]]) -> str | Path | None:
        """Write ``results`` (row id -> JSON-able result) as one chunk, atomically; returns its path."""
        if not results:
            return None
        ids = sorted(results)
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "result": pa.array([json.dumps(results[i], sort_keys=True, ensure_ascii=False) for i in ids]),
            }
        ).replace_schema_metadata({WORKER_KEY: worker_name().encode()})
        name = chunk_name(ids)
        sink = pa.BufferOutputStream()  # a chunk is one batch's results: small enough to build in memory
        pq.write_table(table, sink, compression="zstd")
        path = storage.join(self.directory, name)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        for row_id in ids:
            self._where[row_id] = name
        self._seen.add(name)
        return storage.location(path)


def chunk_worker(path: str | Path) -> str:
    """The ``host:pid`` that wrote a chunk file."""
    with storage.open_input(path) as handle:
        metadata = pq.read_schema(handle).metadata or {}
    return metadata.get(WORKER_KEY, b"").decode()
