"""Finished generation results on disk, keyed by row id, so a killed job resumes without regenerating.

Layout: ``<root>/<generation key>/chunk-<hash of the chunk's row ids>.parquet``, each file holding
``id`` and ``result`` (the row's result as JSON) for one actor call, plus the writing worker
(``host:pid``) in the file's metadata. The generation key (:meth:`CotConfig.generation_key`) covers
everything that decides a result, so results of another model, prompt or sampling are never reused;
:func:`prepare` deletes other keys' folders under ``root`` when a stage starts.

Writes are atomic (a temporary file renamed into place), so a reader never sees half a chunk; the file
name depends only on the row ids, so a batch that Ray retries after an actor died rewrites the same
file instead of adding a duplicate. Readers re-list the folder before every lookup, so a chunk written
by another actor (e.g. the first attempt of a retried batch) is found too. A chunk that cannot be read
is skipped with a warning: its rows are generated again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aloe_core.schemas import stable_id

logger = logging.getLogger(__name__)

WORKER_KEY = b"aloe.worker"


def prepare(root: str | Path, key: str) -> Path:
    """Create ``root/key`` and remove other keys' folders under ``root`` (results of an old config)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for path in root.iterdir():
        if path.is_dir() and path.name != key:
            logger.info("removing generation chunks of another config: %s", path)
            shutil.rmtree(path, ignore_errors=True)
    target = root / key
    target.mkdir(exist_ok=True)
    return target


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ChunkStore:
    """Read and write one generation key's chunk folder (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._where: dict[str, str] = {}  # row id -> chunk file name
        self._seen: set[str] = set()

    def refresh(self) -> None:
        """Index chunk files written since the last call."""
        for path in sorted(self.directory.glob("chunk-*.parquet")):
            if path.name in self._seen:
                continue
            try:
                ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
            except (OSError, pa.ArrowException) as exc:
                logger.warning("%s: unreadable chunk skipped (its rows will be regenerated): %s", path, exc)
                self._seen.add(path.name)
                continue
            self._seen.add(path.name)
            for row_id in ids:
                self._where.setdefault(row_id, path.name)

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
                table = pq.read_table(self.directory / name)
            except (OSError, pa.ArrowException) as exc:
                logger.warning("%s: unreadable chunk skipped: %s", self.directory / name, exc)
                continue
            table = table.filter(pc.is_in(table.column("id"), pa.array(wanted, pa.string())))
            for row_id, result in zip(
                table.column("id").to_pylist(), table.column("result").to_pylist(), strict=True
            ):
                found[row_id] = json.loads(result)
        return found

    def put(self, results: Mapping[str, Mapping[str, Any]]) -> Path | None:
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
        path = self.directory / f"chunk-{stable_id(*ids)}.parquet"
        tmp = self.directory / f".{path.name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        for row_id in ids:
            self._where[row_id] = path.name
        self._seen.add(path.name)
        return path


def chunk_worker(path: str | Path) -> str:
    """The ``host:pid`` that wrote a chunk file."""
    metadata = pq.read_schema(path).metadata or {}
    return metadata.get(WORKER_KEY, b"").decode()
