"""Running a pipeline: each stage in order, written atomically, skipped on rerun when unchanged.

Every stage, ingest included (:class:`~aloe_data.stages.ingest.IngestStage`, the first), runs the same
way. Resume rule: stage *i* is skipped when the manifest holds an entry for its directory whose ``key``
equals hash(stage *i*'s config and fingerprint, stage *i-1*'s key (for ingest: the run's kind),
aloe-data's version) and its files exist. Changing one stage's
config therefore reruns that stage and every later one; a run killed mid-way restarts at the first stage
without a finished entry. A stage writes into ``.<dir>.tmp`` and is renamed into place before its manifest
entry is recorded.

``out_dir`` may be an object-store URI (``s3://bucket/run``, :mod:`aloe_core.storage`). There is no
rename there: a stage writes into a fresh ``<dir>/attempt-<random>/`` prefix, its entry (naming the
attempt) is recorded last, and a run that finished deletes the attempt prefixes the manifest does not
list (the rule in :mod:`aloe_core.atomic`), so a killed stage leaves no debris once the run resumed.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray.data

from aloe_core import storage
from aloe_core.atomic import remove_debris
from aloe_core.config import config_hash
from aloe_core.manifest import Manifest, entry_files, new_attempt
from aloe_core.ray_session import ensure_ray
from aloe_data import __version__
from aloe_data.pipeline.config import InProcessConfig, OutputConfig, PipelineConfig
from aloe_data.pipeline.local import read_tables, run_in_process, runs_in_process, write_in_process
from aloe_data.pipeline.shard_reader import read_record_shards
from aloe_data.pipeline.stage import Stage, StageContext
from aloe_data.pipeline.writer import StageSink, merge_results
from aloe_data.sources import check_sources
from aloe_data.stages import build_stage
from aloe_data.stages.ingest import IngestConfig, IngestStage

logger = logging.getLogger("aloe.data")


class InvariantError(RuntimeError):
    """A stage lost or invented rows: rows_in != rows_out + dropped. Always a bug, never user error."""


def stage_output_files(out_dir: str | Path, stage_dir: str, entry: dict[str, Any]) -> list[str]:
    """The kept-row shards of a finished stage, in file-name order (the order they were written)."""
    return entry_files(out_dir, stage_dir, entry, nested=True)


def start_ray(ray_cpus: int | None) -> int:
    """Ray for the stages that need it (started on first use, see :mod:`aloe_data.pipeline.local`);
    returns the cluster's CPUs."""
    resources = ensure_ray(ray_cpus)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    return int(resources.get("CPU", 1))


@contextmanager
def resource_reservation(enabled: bool) -> Iterator[None]:
    """Ray Data's per-operator resource reservation on or off for the Datasets created inside.

    Why off for task-only stages: in Ray 2.60 the reservation's budget is the share of the cluster that
    Ray Data's autoscaling coordinator actor has reserved for the execution, fetched asynchronously.
    On a fixed cluster that share reads as 0 CPUs for much of a short execution, and the allocator
    then lets one task run at a time: the exact-dedup key pass over 168k rows ran its 13 tasks one
    after another on 2 CPUs (1.6-1.9 s, vs 0.9 s with the reservation off). A task-only stage's plan
    reads its input through :func:`~aloe_data.pipeline.shard_reader.read_record_shards` (or ingest's
    datasource) and fuses into one operator (read -> maps -> write), so there is no downstream
    operator whose share the reservation would protect. Plans with an operator of their own after the
    read need it: stages with actor pools keep it (read tasks blocked on backpressure could otherwise
    hold the CPUs the actors wait for), and so does anything read another way (exact dedup over Ray's
    ``read_parquet``, whose read did not fuse with the map, took 51 s on 1 CPU without it, 2.7 s here).

    Reads copy the current DataContext when they are created, so the setting follows each Dataset
    built in the block and nothing else.
    """
    context = ray.data.DataContext.get_current()
    before = context.op_resource_reservation_enabled
    context.op_resource_reservation_enabled = enabled
    try:
        yield
    finally:
        context.op_resource_reservation_enabled = before


def execute_stage(
    stage: Stage,
    input_files: list[str],
    rows_in: int | None,
    target: str | Path,
    kind: str,
    output: OutputConfig,
    limits: InProcessConfig,
    ray_cpus: int | None = None,
    *,
    source_bytes: int | None = None,
) -> dict[str, Any]:
    """Run ``stage`` over the shards ``input_files`` (none for ingest) and write its output into ``target``
    (built in a temp sibling, then renamed; on object storage: in a new attempt prefix of ``target``,
    named by the result's ``attempt``); returns the merged per-file results.

    It runs in this process when the input is tiny (:func:`~aloe_data.pipeline.local.runs_in_process`),
    otherwise on Ray: read tasks sized for the cluster, the stage's Dataset, the shard sink.
    """
    attempt = new_attempt() if storage.is_uri(target) else None
    if attempt is not None:
        tmp: str | Path = storage.join(target, attempt)
        parent: str | Path = storage.parent_of(target)
    else:
        target = Path(target)
        tmp, parent = target.parent / f".{target.name}.tmp", target.parent
        shutil.rmtree(tmp, ignore_errors=True)
    name = storage.name_of(target)
    tables = None
    if runs_in_process(stage, rows_in, source_bytes, limits, output):
        ctx = StageContext(kind, parent, name, cluster_cpus=1)
        tables = run_in_process(stage, read_tables(input_files), ctx, limits, output)
    if tables is not None:
        logger.info("%s: %d rows, run in this process (tiny input)", name, sum(len(t) for t in tables))
        result = write_in_process(tables, tmp, kind, output)
    else:
        cpus = start_ray(ray_cpus)
        ctx = StageContext(kind, parent, name, cpus)
        with resource_reservation(stage.uses_actor_pool):
            ds = None if stage.reads_sources else read_record_shards(input_files, cpus)
            sink = StageSink(tmp, kind, output.shard_rows, output.shard_bytes)
            stage.apply(ds, ctx).write_datasink(sink)
        result = merge_results(sink.results)
    if attempt is not None:
        return {**result, "attempt": attempt}  # committed by the manifest entry that names it
    shutil.rmtree(target, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    return result


def pipeline_stages(config: PipelineConfig) -> list[Stage]:
    """The run's stages in order: ingest of the sources, then the configured stages."""
    return [IngestStage(IngestConfig(sources=config.sources)), *(build_stage(s) for s in config.stages)]


def stage_key(stage: Stage, upstream: str) -> str:
    """The resume key of ``stage`` after a stage keyed ``upstream`` (see the module docstring)."""
    stage_inputs = {"stage": stage.config.model_dump(mode="json"), "inputs": stage.fingerprint()}
    return config_hash({**stage_inputs, "upstream": upstream, "v": __version__})


def run_pipeline(
    config: PipelineConfig,
    out_dir: str | Path,
    *,
    config_source: str = "",
    after_stage: Callable[[str, dict[str, Any]], None] | None = None,
) -> Manifest:
    """Run (or resume) the pipeline into ``out_dir`` (a folder or an object-store URI) and return its
    manifest.

    ``after_stage(stage_dir, entry)`` is called after each stage's entry is recorded (progress display).
    """
    stages = pipeline_stages(config)  # guesses missing source formats, loads templates...
    plan = check_sources(stages[0].config.sources, config.kind)  # every path and format, before any work
    out_dir = storage.location(out_dir)
    for path in remove_debris(out_dir):  # what a killed run left: temp files, half-written stages
        logger.info("removed %s, left by an interrupted run", path)
    storage.makedirs(out_dir)
    manifest = Manifest.load(out_dir)
    manifest.data.update(
        {"kind": config.kind, "config": config.model_dump(mode="json"), "config_source": config_source}
    )
    stage_dirs = config.stage_dirs()
    key = config_hash({"kind": config.kind, "v": __version__})
    rows_in: int | None = None
    input_files: list[str] = []
    for stage, stage_dir in zip(stages, stage_dirs, strict=True):
        key = stage_key(stage, key)
        entry = manifest.finished(stage_dir, key)
        if entry is not None:
            logger.info("%s: finished earlier, skipped (%d rows)", stage_dir, entry["rows_out"])
        else:
            manifest.forget_from(stage_dir)
            manifest.save()
            started = time.perf_counter()
            source_bytes = plan.total_bytes() if stage.reads_sources else None
            target = storage.join(out_dir, stage_dir) if storage.is_uri(out_dir) else out_dir / stage_dir
            result = execute_stage(
                stage, input_files, rows_in, target, config.kind, config.output, config.in_process,
                config.ray_cpus, source_bytes=source_bytes,
            )  # fmt: skip
            entry = stage_entry(
                stage_dir,
                key,
                None if stage.reads_sources else rows_in,
                result,
                stage.config.model_dump(mode="json"),
                time.perf_counter() - started,
            )
            manifest.record(stage_dir, entry)
            _log_entry(entry)
        if after_stage is not None:
            after_stage(stage_dir, entry)
        rows_in = entry["rows_out"]
        input_files = stage_output_files(out_dir, stage_dir, entry)
    _remove_stale(out_dir, stage_dirs, manifest)
    manifest.save()
    return manifest


def stage_entry(
    stage_dir: str, key: str, rows_in: int | None, result: dict[str, Any], stage_config: dict, seconds: float
) -> dict[str, Any]:
    dropped_total = sum(result["dropped"].values())
    if rows_in is None:  # a stage reading sources (ingest): every row read is kept or quarantined
        rows_in = result["rows_out"] + dropped_total
    if rows_in != result["rows_out"] + dropped_total:
        raise InvariantError(
            f"{stage_dir}: rows_in {rows_in} != rows_out {result['rows_out']} + dropped {dropped_total}"
        )
    attempt = {"attempt": result["attempt"]} if result.get("attempt") else {}  # object storage only
    return {
        "stage": stage_dir,
        "key": key,
        **attempt,
        "rows_in": rows_in,
        "rows_out": result["rows_out"],
        "dropped": result["dropped"],
        "counters": result.get("counters", {}),
        "files": result["files"],
        "dropped_files": result["dropped_files"],
        "config": stage_config,
        "config_hash": config_hash(stage_config),
        "code_version": __version__,
        "seconds": round(seconds, 3),
    }


def _log_entry(entry: dict[str, Any]) -> None:
    logger.info("%s", describe_entry(entry))


def describe_entry(entry: dict[str, Any]) -> str:
    """One line about a finished stage: rows, drop reasons, counters, files and time."""
    dropped = ", ".join(f"{k}={v}" for k, v in entry["dropped"].items()) or "none"
    counters = ", ".join(f"{k}={v}" for k, v in (entry.get("counters") or {}).items())
    return (
        f"{entry['stage']}: {entry['rows_in']} in -> {entry['rows_out']} out; dropped: {dropped}; "
        + (f"counters: {counters}; " if counters else "")
        + f"{len(entry['files'])} files; {entry['seconds']:.1f}s"
    )


def _remove_stale(out_dir: str | Path, stage_dirs: list[str], manifest: Manifest) -> None:
    """Stages no longer in the config leave no files behind (debris went at the start of the run), nor
    do attempts this run replaced (object storage)."""
    for name in list(manifest.stages):
        if name not in stage_dirs:
            del manifest.stages[name]
    if storage.is_uri(out_dir):
        manifest.save()  # the commit first: deleting what it no longer lists is then safe
        for folder in storage.list_folders(out_dir):
            if storage.name_of(folder)[:2].isdigit() and storage.name_of(folder) not in stage_dirs:
                storage.remove(folder)
        for path in manifest.remove_unlisted_attempts():
            logger.info("removed %s: no manifest entry lists it (an interrupted or replaced attempt)", path)
        return
    for path in Path(out_dir).iterdir():
        if path.is_dir() and path.name[:2].isdigit() and path.name not in stage_dirs:
            shutil.rmtree(path, ignore_errors=True)
