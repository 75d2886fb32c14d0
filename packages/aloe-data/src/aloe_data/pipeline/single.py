"""Running one stage on its own (``aloe data clean --input ... --output ...``), like a datatrove block.

The input is a pipeline run, a previous stage's or command's output folder, a folder, a file or a glob
of Parquet record shards (:func:`resolve_inputs`); only top-level ``*.parquet`` files are read, never
``_dropped/``. The output folder gets the same layout
as a stage inside a run: ``part-*.parquet``, ``_dropped/`` and a ``manifest.json`` with the one entry.
"""

from __future__ import annotations

import glob
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import ray.data

from aloe_core.config import config_hash
from aloe_core.errors import InputError
from aloe_core.ray_session import ensure_ray
from aloe_data.pipeline.config import OutputConfig
from aloe_data.pipeline.manifest import MANIFEST, Manifest
from aloe_data.pipeline.runner import stage_entry, write_stage
from aloe_data.pipeline.stage import Stage, StageContext


@dataclass(frozen=True)
class ShardSource:
    """Parquet record files to read and where they came from (recorded in reports and model cards)."""

    files: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None  # ``sft`` / ``preference`` when a manifest says so


def resolve_inputs(path: str | Path) -> ShardSource:
    """The Parquet record files named by ``path``: the one resolver of every command that reads shards.

    ``path`` may be
    * a pipeline run folder (``manifest.json`` beside stage folders): its last finished stage;
    * a single-stage output (``aloe data clean|dedup|... --output``: ``manifest.json`` beside the
      shards): those shards;
    * any other folder: its top-level ``*.parquet`` (never ``_dropped/``);
    * a file or a glob.

    Raises InputError naming ``path`` when nothing is found or a run has no finished stage.
    """
    text = str(path)
    root = Path(text)
    manifest = root / MANIFEST
    if any(ch in text for ch in "*?["):
        files, provenance, kind = sorted(glob.glob(text)), {"glob": text}, None
    elif root.is_file():
        files, provenance, kind = [text], {"file": text}, None
    elif manifest.is_file():
        files, provenance, kind = _manifest_files(root, manifest)
    elif root.is_dir():
        files, provenance, kind = sorted(str(p) for p in root.glob("*.parquet")), {"folder": text}, None
    else:
        raise InputError(f"{text}: no such file or folder")
    if not files:
        raise InputError(f"{text}: no Parquet files found (expected a pipeline run, a folder or a glob)")
    return ShardSource(files, {**provenance, "files": len(files)}, kind)


def _manifest_files(root: Path, manifest: Path) -> tuple[list[str], dict[str, Any], str | None]:
    data = json.loads(manifest.read_text(encoding="utf-8"))
    stages = data.get("stages") or {}
    if not stages:
        raise InputError(f"{manifest}: no finished stage; run the pipeline to completion first")
    stage, entry = list(stages.items())[-1]
    names = sorted(entry.get("files", []))
    # A run keeps each stage in its own folder; a single-stage output keeps the shards beside the manifest.
    folder = root / stage if (root / stage).is_dir() else root
    provenance = {
        "run": str(root),
        "stage": stage,
        "stage_key": entry.get("key"),
        "rows": entry.get("rows_out"),
    }
    return [str(folder / name) for name in names], provenance, data.get("kind")


def parquet_inputs(path: str | Path) -> list[str]:
    """The Parquet files named by ``path`` (see :func:`resolve_inputs`); raises InputError if none."""
    return resolve_inputs(path).files


def detect_kind(files: list[str]) -> str:
    """``sft`` or ``preference`` from the columns of the first shard."""
    names = set(pq.read_schema(files[0]).names)
    if {"messages", "task"} <= names:
        return "sft"
    if {"prompt", "chosen", "rejected"} <= names:
        return "preference"
    raise InputError(f"{files[0]}: not an aloe sft or preference shard (columns: {sorted(names)})")


def run_stage_on_files(
    stage: Stage,
    input_path: str | Path,
    output: Path,
    output_config: OutputConfig | None = None,
    num_cpus: int | None = None,
) -> dict[str, Any]:
    """Apply ``stage`` to the Parquet records at ``input_path`` and write the result into ``output``."""
    files = parquet_inputs(input_path)
    kind = detect_kind(files)
    resources = ensure_ray(num_cpus)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    ds = ray.data.read_parquet(files, shuffle=None)
    rows_in = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    ctx = StageContext(kind, output.parent, output.name, int(resources.get("CPU", 1)))
    started = time.perf_counter()
    result = write_stage(stage.apply(ds, ctx), output, kind, output_config or OutputConfig())
    dump = stage.config.model_dump(mode="json")
    entry = stage_entry(output.name, config_hash(dump), rows_in, result, dump, time.perf_counter() - started)
    manifest = Manifest(output)
    manifest.data.update({"kind": kind, "input": [str(f) for f in files]})
    manifest.record(output.name, entry)
    return entry
