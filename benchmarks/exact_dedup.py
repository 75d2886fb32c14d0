"""Throughput of exact dedup: the per-row key computation, and the stage end to end on 1 vs 2 CPUs.

    uv run python benchmarks/exact_dedup.py --rows 200000 [--work DIR] [--legacy-stage]

Writes the embedded corpus (``write_sample(dir, rows, seed=0)``) and ingests its sft sources (a
pipeline with no stages after ingest, in a child process), then measures:

* keys per core, in this process: ``content_keys`` (vectorised normalised matching texts, blake2b-128,
  answer lengths) over every ingested row in batches of the stage's size, vs the per-row code it
  replaced (``to_pylist``, ``sha256(normalize_for_matching(matching_text(row)))``, ``answer_length``;
  kept below as ``legacy_keys``) over the first ``--legacy-rows`` rows. CPU time
  (``time.process_time``), so other load on the machine inflates it less than wall time would; the
  one-off per-process start (numba kernel load, separator table) is printed apart;
* the ``exact_dedup`` stage end to end (Parquet read, keys, hash exchange, marking every row in input
  order, output consumed) on a fresh local Ray per CPU count (a child process each, pinned to that many
  cores), after a warm-up run on a slice; best of ``--repeats`` wall times, and the CPU seconds the
  whole process tree (driver, Ray's daemons and workers) spent, as rows per CPU second: a figure other
  tenants of a shared machine inflate much less than wall time. ``--legacy-stage`` also times the
  replaced stage (per-row keys and Ray Data ``groupby().map_groups()``) the same way.

Checks on the way: the new and legacy keys give the same dropped rows on the measured prefix, and every
run drops the same number of rows. ``--work DIR`` keeps the corpus and ingest there and reuses them
(writing 200k rows takes a few minutes on 2 cores); by default a temp folder is used and removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def legacy_keys(batch):
    """The replaced map step: one Python dict per row, sha256 hex of the normalised matching text."""
    import pyarrow as pa

    from aloe_core.text import matching_text, normalize_for_matching
    from aloe_data.stages.exact_dedup import ANSWER_LEN, KEY, answer_length

    rows = batch.to_pylist()
    digest = [hashlib.sha256(normalize_for_matching(matching_text(r)).encode()).hexdigest() for r in rows]
    return pa.table(
        {
            "id": batch["id"],
            KEY: pa.array(digest, pa.string()),
            ANSWER_LEN: pa.array([answer_length(r) for r in rows], pa.int64()),
        }
    )


def legacy_group(group):
    """The replaced reduce step: the kept row of one group by a Python ``min``."""
    import pyarrow as pa

    from aloe_data.stages.exact_dedup import ANSWER_LEN, DUPLICATE_OF

    ids, lengths = group["id"].to_pylist(), group[ANSWER_LEN].to_pylist()
    keep = min(range(len(ids)), key=lambda i: (-lengths[i], ids[i]))
    dropped = [ids[i] for i in range(len(ids)) if i != keep]
    return pa.table(
        {"id": pa.array(dropped, pa.string()), DUPLICATE_OF: pa.array([ids[keep]] * len(dropped))}
    )


def legacy_stage(ds, cpus: int):
    """The replaced stage: per-row keys, Ray Data groupby on the hex digest, the same marking pass."""
    import pyarrow as pa
    import ray

    from aloe_data.pipeline.broadcast import mark_by_id
    from aloe_data.stages.exact_dedup import DECISIONS_SCHEMA, KEY, mark_exact_duplicates

    keys = ds.map_batches(legacy_keys, batch_format="pyarrow")
    groups = keys.groupby(KEY, num_partitions=max(2, cpus)).map_groups(legacy_group, batch_format="pyarrow")
    tables = [t for t in ray.get(groups.to_arrow_refs()) if t.num_rows]
    decisions = pa.concat_tables(tables).cast(DECISIONS_SCHEMA) if tables else DECISIONS_SCHEMA.empty_table()
    return mark_by_id(ds, decisions.sort_by("id"), mark_exact_duplicates)


def shards(ingest_dir: Path) -> list[str]:
    return [str(p) for p in sorted(ingest_dir.glob("part-*.parquet"))]


def prepare(work: Path, rows: int) -> Path:
    """The corpus and its sft ingest under ``work`` (reused when already there); the ingest folder."""
    ingest_dir = work / "run" / "01-ingest"
    if not (work / "sample" / "ground_truth.json").is_file():
        started = time.perf_counter()
        from aloe_fixtures.corpus import write_sample

        write_sample(work / "sample", rows=rows, seed=0)
        print(f"corpus: {rows} rows written in {time.perf_counter() - started:.1f}s")
    if not shards(ingest_dir):
        started = time.perf_counter()
        child = [sys.executable, __file__, "--ingest", str(work)]
        subprocess.run(child, check=True, capture_output=True, text=True, cwd=ROOT)
        print(f"ingest: {time.perf_counter() - started:.1f}s")
    return ingest_dir


def ingest(work: Path) -> None:
    """Child process: the sample's sft sources through ingest only (a fresh local Ray on 2 CPUs)."""
    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_fixtures.demo import sample_pipeline

    raw = sample_pipeline(work / "sample", "sft", stages=[]) | {
        "ray_cpus": 2,
        "output": {"shard_rows": 50_000},
    }
    run_pipeline(validate_config(PipelineConfig, raw), work / "run")


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def bench_keys(ingest_dir: Path, legacy_rows: int) -> None:
    """Keys per core, new vs legacy, and a check that both give the same dropped rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aloe_data.stages.exact_dedup import BATCH_ROWS, KEY, content_keys, duplicates_in_partition

    table = pa.concat_tables([pq.read_table(f) for f in shards(ingest_dir)]).combine_chunks()
    batches = [table.slice(lo, BATCH_ROWS) for lo in range(0, table.num_rows, BATCH_ROWS)]
    start = cpu_seconds(lambda: content_keys(table.slice(0, 16)))
    new = min(cpu_seconds(lambda: [content_keys(b) for b in batches]) for _ in range(2))
    prefix = table.slice(0, legacy_rows)
    legacy_batches = [prefix.slice(lo, BATCH_ROWS) for lo in range(0, prefix.num_rows, BATCH_ROWS)]
    old = cpu_seconds(lambda: [legacy_keys(b) for b in legacy_batches])
    new_rate, old_rate = table.num_rows / new, prefix.num_rows / old
    start_note = f"per-process start {start:.2f} s"
    print(f"keys per core: new {new_rate:,.0f} rows/s ({table.num_rows} rows, {new:.2f} s CPU; {start_note})")
    print(f"keys per core: legacy {old_rate:,.0f} rows/s ({prefix.num_rows} rows, {old:.2f} s CPU)")
    print(f"keys per core: new / legacy {new_rate / old_rate:.1f}x")
    new_dropped = duplicates_in_partition(pa.concat_tables([content_keys(b) for b in legacy_batches]))
    got = set(zip(new_dropped["id"].to_pylist(), new_dropped["duplicate_of"].to_pylist(), strict=True))
    groups: dict[str, list[dict]] = {}
    for row in pa.concat_tables([legacy_keys(b) for b in legacy_batches]).to_pylist():
        groups.setdefault(row[KEY], []).append(row)
    expected = set()
    for rows in (g for g in groups.values() if len(g) > 1):
        dropped = legacy_group(pa.Table.from_pylist(rows))
        expected |= set(zip(dropped["id"].to_pylist(), dropped["duplicate_of"].to_pylist(), strict=True))
    assert got == expected, "new and legacy keys disagree"
    print(f"keys: same {len(got)} dropped rows as legacy on the first {prefix.num_rows} rows")


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and every live descendant (Ray's daemons and workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def stage_worker(ingest_dir: Path, cpus: int, repeats: int, legacy: bool) -> None:
    """Child process: the stage on a fresh local Ray with ``cpus`` CPUs, this process and everything it
    starts pinned to ``cpus`` cores; prints JSON (wall seconds, and CPU seconds of the whole process
    tree, which other load on the machine does not inflate)."""
    os.sched_setaffinity(0, set(range(cpus)))
    # On a busy machine, one pinned core can take longer than the raylet's default 30 s wait for its
    # agents (the run then fails with "timed out waiting for file .../metrics_agent_port").
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    import pyarrow.compute as pc
    import ray

    from aloe_core.ray_session import ensure_ray
    from aloe_data.pipeline.runner import resource_reservation
    from aloe_data.pipeline.shard_reader import read_record_shards
    from aloe_data.pipeline.stage import StageContext
    from aloe_data.stages.exact_dedup import ExactDedupConfig, ExactDedupStage

    ensure_ray(cpus, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True  # as the pipeline runs stages
    stage = ExactDedupStage(ExactDedupConfig())
    stage_context = StageContext("sft", ingest_dir, "bench", cpus)

    def run(files: list[str]) -> tuple[int, int]:
        if legacy:  # the replaced stage as it ran: Ray's Parquet read and groupby, reservation on
            tables = ray.get(legacy_stage(ray.data.read_parquet(files, shuffle=None), cpus).to_arrow_refs())
        else:  # as the pipeline runner runs it: its shard reader, reservation per the runner's rule
            with resource_reservation(stage.uses_actor_pool):
                ds = read_record_shards(files, cpus)
                tables = ray.get(stage.apply(ds, stage_context).to_arrow_refs())
        return sum(t.num_rows for t in tables), sum(
            int(pc.sum(pc.is_valid(t["drop_reason"])).as_py() or 0) for t in tables
        )

    run(shards(ingest_dir)[:1])  # warm-up: worker processes and their imports
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), tree_cpu_seconds()
        rows, dropped = run(shards(ingest_dir))
        times.append(time.perf_counter() - start)
        cpu.append(tree_cpu_seconds() - start_cpu)
    result = {"seconds": min(times), "all": times, "cpu_seconds": min(cpu), "rows": rows, "dropped": dropped}
    print(json.dumps(result))
    ray.shutdown()


def bench_stage(ingest_dir: Path, cpus: int, repeats: int, legacy: bool) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--stage-worker",
        str(ingest_dir),
        "--cpus",
        str(cpus),
        "--repeats",
        str(repeats),
    ]
    cmd += ["--legacy-stage"] if legacy else []
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"stage run on {cpus} CPU failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_stage(ingest_dir: Path, cpu_counts: list[int], repeats: int, legacy: bool) -> None:
    name = "legacy stage" if legacy else "stage"
    rates = {}
    for cpus in cpu_counts:
        result = bench_stage(ingest_dir, cpus, repeats, legacy)
        rates[cpus] = result["rows"] / result["seconds"]
        runs = ", ".join(f"{s:.2f}" for s in result["all"])
        rows = f"{result['rows']} rows, {result['dropped']} dropped"
        timing = f"best {result['seconds']:.2f} s (runs {runs})"
        print(f"{name}, {cpus} CPU: {rows}, {timing}: {rates[cpus]:,.0f} rows/s")
        per_cpu_second = result["rows"] / result["cpu_seconds"]
        print(f"{name}, {cpus} CPU: {result['cpu_seconds']:.1f} CPU s, {per_cpu_second:,.0f} rows/CPU-s")
    if len(rates) > 1:
        low, high = min(rates), max(rates)
        print(f"{name}: {high} vs {low} CPU {rates[high] / rates[low]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows of embedded corpus to write")
    parser.add_argument("--work", type=Path, help="folder for the corpus and ingest, kept and reused")
    parser.add_argument("--cpus", default="1,2", help="comma-separated CPU counts for the stage runs")
    parser.add_argument("--repeats", type=int, default=2, help="timed stage runs per CPU count (best kept)")
    parser.add_argument("--legacy-rows", type=int, default=20_000, help="rows for the legacy key timing")
    parser.add_argument("--legacy-stage", action="store_true", help="also time the replaced stage")
    parser.add_argument("--skip-stage", action="store_true", help="only the in-process key timing")
    parser.add_argument("--ingest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest:
        ingest(args.ingest)
        return
    if args.stage_worker:
        stage_worker(args.stage_worker, int(args.cpus), args.repeats, args.legacy_stage)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="aloe-exact-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    try:
        ingest_dir = prepare(work, args.rows)
        bench_keys(ingest_dir, args.legacy_rows)
        if not args.skip_stage:
            cpu_counts = [int(c) for c in args.cpus.split(",")]
            report_stage(ingest_dir, cpu_counts, args.repeats, legacy=False)
            if args.legacy_stage:
                report_stage(ingest_dir, cpu_counts, args.repeats, legacy=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
