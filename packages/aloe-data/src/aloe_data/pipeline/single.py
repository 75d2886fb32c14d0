"""Running one stage on its own (``aloe data clean --input ... --out ...``), like a datatrove block.

The input is a pipeline run, a previous stage's or command's output folder, a folder, a file or a glob
of Parquet record shards (:func:`aloe_core.shards.resolve_inputs`); only top-level ``*.parquet`` files
are read, never ``_dropped/``. The output folder gets the same layout as a stage inside a run:
``part-*.parquet``, ``_dropped/`` and a ``manifest.json`` with the one entry.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from aloe_core import storage
from aloe_core.atomic import remove_debris
from aloe_core.config import config_hash
from aloe_core.manifest import Manifest
from aloe_core.shards import detect_kind, resolve_inputs
from aloe_data.pipeline.config import InProcessConfig, OutputConfig
from aloe_data.pipeline.runner import execute_stage, stage_entry
from aloe_data.pipeline.stage import Stage


def run_stage_on_files(
    stage: Stage,
    input_path: str | Path,
    output: str | Path,
    output_config: OutputConfig | None = None,
    ray_cpus: int | None = None,
    in_process: InProcessConfig | None = None,
) -> dict[str, Any]:
    """Apply ``stage`` to the Parquet records at ``input_path`` and write the result into ``output``.

    ``ray_cpus`` sizes the local Ray started when none is running and RAY_ADDRESS is not set; a tiny
    input of a row-local stage runs without Ray (:mod:`aloe_data.pipeline.local`).
    """
    files = [str(f) for f in resolve_inputs(input_path).files]
    kind = detect_kind(files)
    output = storage.location(output)
    remove_debris(output)  # what a killed earlier run of this command left
    storage.makedirs(storage.parent_of(output))
    rows_in = sum(_rows(f) for f in files)
    started = time.perf_counter()
    result = execute_stage(
        stage, files, rows_in, output, kind, output_config or OutputConfig(), in_process or InProcessConfig(),
        ray_cpus,
    )  # fmt: skip
    dump = stage.config.model_dump(mode="json")
    name = storage.name_of(output)
    entry = stage_entry(name, config_hash(dump), rows_in, result, dump, time.perf_counter() - started)
    manifest = Manifest(output)
    manifest.data.update({"kind": kind, "input": files})
    manifest.record(name, entry)
    manifest.remove_unlisted_attempts()  # object storage: earlier runs' attempts, now replaced
    return entry


def _rows(file: str) -> int:
    where, fs = storage.for_arrow(file)
    return pq.ParquetFile(where, filesystem=fs).metadata.num_rows
