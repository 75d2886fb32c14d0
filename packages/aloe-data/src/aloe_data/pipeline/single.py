"""Running one stage on its own (``aloe data clean --input ... --output ...``), like a datatrove block.

The input is a folder (or glob, or list) of Parquet record shards, e.g. a previous stage's directory;
only top-level ``*.parquet`` files are read, never ``_dropped/``. The output folder gets the same layout
as a stage inside a run: ``part-*.parquet``, ``_dropped/`` and a ``manifest.json`` with the one entry.
"""

from __future__ import annotations

import glob
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import ray.data

from aloe_core.config import config_hash
from aloe_core.errors import InputError
from aloe_core.ray_session import ensure_ray
from aloe_data.pipeline.config import OutputConfig
from aloe_data.pipeline.manifest import Manifest
from aloe_data.pipeline.runner import stage_entry, write_stage
from aloe_data.pipeline.stage import Stage, StageContext


def parquet_inputs(path: str | Path) -> list[str]:
    """The Parquet files named by ``path`` (file, folder or glob), sorted; raises InputError if none."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text))
    elif Path(text).is_dir():
        files = sorted(str(p) for p in Path(text).glob("*.parquet"))
    elif Path(text).is_file():
        files = [text]
    else:
        raise InputError(f"{text}: no such file or folder")
    if not files:
        raise InputError(f"{text}: no Parquet files found")
    return files


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
