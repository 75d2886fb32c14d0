"""Throughput of the whole data pipeline on 1 vs 2 pinned CPUs, and datatrove on the same rows.

    uv run python benchmarks/pipeline.py --rows 200000

1. Writes the embedded corpus once (``--rows`` rows across every layout; the sft run gets 85% of them),
   and runs the pipeline once, untimed, on a small corpus: on a fresh checkout that first use compiles
   the numba kernels (~19 s for MinHash's alone on one core), which would otherwise land in whichever
   timed run came first.
2. Runs the sample sft pipeline as a user does, ``configs/data/sample-sft.yaml`` unchanged from a folder
   whose ``runs/sample`` is the corpus (ingest, clean, exact dedup, fuzzy dedup, decontaminate), in a fresh
   process per CPU count, **pinned**: the child sets its CPU affinity to the first N cores before it
   starts Ray, so Ray's GCS, raylet and every worker inherit it and "1 vs 2 CPUs" compares machines of
   1 and 2 cores (not just Ray's logical CPU count). Ray is started before the first stage, and its
   worker processes are waited for (:func:`wait_for_workers`), so stage seconds are the stages' own;
   the wall time includes Ray's start. Prints rows/s per stage and in
   total, and the 2-vs-1 ratio. ``--repeat N`` runs the CPU counts in turn N times (1, 2, 1, 2, ...:
   a shared machine's slow spell then lands on both) and compares the median runs (by stage time;
   single runs on this 2-core machine vary by up to 15%). Each run also prints, from Ray's timeline,
   the seconds spent inside Ray tasks (the work itself, whatever the CPU count) and the core-seconds in
   which a core ran no task (:func:`idle_core_seconds`: what the run leaves on the table).
3. datatrove 0.10.1 (not a dependency of aloe: installed by ``uv run --with`` into a throwaway
   environment, like ``benchmarks/minhash.py`` does) runs the steps both have, on the ingested sft rows
   written as JSONL (``{"id", "text"}``, text = the messages joined, in as many files as CPUs x 4 so its
   file-sharded tasks can all work), with ``LocalPipelineExecutor(tasks=N, workers=N)`` pinned to the
   same N cores:

   * its ``JsonlReader`` alone, against our ingest stage (which also parses 7 layouts, validates each
     row and writes Parquet);
   * ``JsonlReader`` + ``PIIFormatter`` (emails and IPs), against our clean stage (which also normalises
     Unicode and whitespace, masks emails, URLs and phones, identifies the language and applies the
     length and repetition rules);
   * its exact dedup (``ExactDedupSignature``, ``ExactFindDedups``, ``ExactDedupFilter``: three passes,
     two reads), against our exact dedup stage.

   datatrove runs right after each of our runs, on as many CPUs, so every repeat gives a pair per step;
   the script prints the median of the pairs' ratios (a shared machine's speed drifts from minute to
   minute, so one datatrove run at the end says as much about that minute as about either side). datatrove
   gets no writer (it would only add time to its side). MinHash is compared in ``benchmarks/minhash.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exact_dedup import tree_cpu_seconds  # a sibling script (sys.path[0] is this folder)

# xxhash: see benchmarks/minhash.py; tokenizers (datatrove.pipeline.dedup) and orjson (JsonlReader) are
# imports datatrove needs but does not declare.
DATATROVE = [
    "--with",
    "datatrove==0.10.1",
    "--with",
    "xxhash<3.5",
    "--with",
    "tokenizers",
    "--with",
    "orjson",
]
# Rows of the untimed first run: every stage runs (small stages in the driver, the rest on Ray; both paths
# call the same kernels), so each numba kernel the timed runs use is compiled and cached on disk first.
WARM_UP_ROWS = 5_000
# The pipeline a user runs on the sample corpus (its output settings included: 50,000-row shards).
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "data" / "sample-sft.yaml"
STEPS = {  # our stage -> the datatrove step it is compared with
    "01-ingest": "read",
    "02-clean": "pii",
    "03-exact-dedup": "exact_dedup",
}


def pin(cpus: int) -> None:
    """Restrict this process (and everything it starts from now on) to the first ``cpus`` cores."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < cpus:
        raise SystemExit(f"{cpus} CPUs asked, {len(available)} available")
    os.sched_setaffinity(0, set(available[:cpus]))


def user_folder(sample_dir: Path) -> Path:
    """A folder laid out as :data:`CONFIG`'s comments say a user's is (``runs/sample`` holds ``aloe data
    sample``'s output, here ``sample_dir``), to run the config from unchanged."""
    folder = sample_dir.parent / f"{sample_dir.name}-as-user"
    link = folder / "runs" / "sample"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(sample_dir.resolve(), target_is_directory=True)
    return folder


def run_once(sample_dir: Path, out_dir: Path, num_cpus: int) -> None:
    """Child process: one pinned pipeline run on a fresh local Ray with ``num_cpus`` CPUs."""
    pin(num_cpus)
    os.chdir(user_folder(sample_dir))
    from aloe_core.config import load_config
    from aloe_core.ray_session import ensure_ray
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline

    started = time.perf_counter()
    ensure_ray(num_cpus, log_to_driver=False)
    wait_for_workers(num_cpus)
    ray_seconds = time.perf_counter() - started
    config = load_config(PipelineConfig, CONFIG, [f"ray_cpus={num_cpus}", "report=false"])
    cpu = {"start": tree_cpu_seconds()}

    def after_stage(stage_dir: str, entry: dict) -> None:
        cpu[stage_dir] = tree_cpu_seconds()

    pipeline_started = time.time()  # Ray's timeline is in epoch time
    manifest = run_pipeline(config, out_dir, after_stage=after_stage)
    pipeline_ended = time.time()
    spans = task_spans()
    stages = list(manifest.stages.values())
    marks = list(cpu.values())
    summary = {
        "rows_in": stages[0]["rows_in"],
        "rows_out": stages[-1]["rows_out"],
        "ray_start": ray_seconds,
        "task_seconds": task_seconds(spans),
        "idle_core_seconds": idle_core_seconds(spans, pipeline_started, pipeline_ended, num_cpus),
        "stages": {
            s["stage"]: {
                "seconds": s["seconds"],
                "cpu_seconds": after - before,
                "rows_in": s["rows_in"],
                "rows_out": s["rows_out"],
                "dropped": s["dropped"],
            }
            for s, before, after in zip(stages, marks[:-1], marks[1:], strict=True)
        },
    }
    print(json.dumps(summary))


def worker_pid() -> int:
    """The probe task of :func:`wait_for_workers` (its time is left out of :func:`task_seconds`)."""
    time.sleep(0.05)  # held long enough that the tasks of one round run in different workers
    return os.getpid()


def wait_for_workers(cpus: int) -> None:
    """Return once ``cpus`` Ray worker processes are up (each has run a task at the same time as the
    others).

    Why: ``ray.init`` returns while the workers it prestarts are still starting (importing Ray and the
    preloaded modules: ~0.5 s on this machine), so the first stage's first task used to wait for one,
    and that wait was counted as ingest's time (its first task started 0.45-0.6 s after the stage did;
    0.13 s when the run slept 3 s after ``ray.init``). It is part of Ray's start.
    """
    import ray

    probe = ray.remote(num_cpus=1)(worker_pid)
    for _ in range(100):
        if len(set(ray.get([probe.remote() for _ in range(cpus)]))) == cpus:
            return
    raise RuntimeError(f"Ray did not bring up {cpus} worker processes")


def task_spans() -> list[tuple[float, float]]:
    """(start, end) in epoch seconds of every Ray task of the run but the probe, from Ray's own timeline
    (task events are on by default)."""
    import ray

    events = [e for e in ray.timeline() if e.get("ph") == "X" and e["cat"].startswith("task::")]
    probe = f"task::{worker_pid.__name__}"
    return [(e["ts"] / 1e6, (e["ts"] + e["dur"]) / 1e6) for e in events if e["cat"] != probe]


def task_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds spent inside Ray tasks over the whole run: the work itself, as opposed to what happens
    between tasks. Equal on 1 and 2 CPUs means the second CPU got the same work done; the stage-time
    ratio then says what the part outside tasks and each worker's first-use costs take from it."""
    return sum(end - start for start, end in spans)


def idle_core_seconds(spans: list[tuple[float, float]], started: float, ended: float, cpus: int) -> float:
    """Core-seconds between ``started`` and ``ended`` in which a core ran no Ray task: the integral of
    (cpus - tasks running) where that is positive. What the stages leave on the table, task by task: the
    driver's work before and between tasks, and a stage's last tasks running while other cores wait
    (on 1 CPU only the former). Unlike a wall-time ratio it barely moves with the host's speed."""
    edges = sorted(
        [(max(s, started), 1) for s, e in spans if e > started]
        + [(min(e, ended), -1) for s, e in spans if e > started]
    )
    idle, running, last = 0.0, 0, started
    for at, step in edges:
        at = min(max(at, started), ended)
        idle += max(0, cpus - running) * (at - last)
        running, last = running + step, at
    return idle + max(0, cpus - running) * (ended - last)


def run_child(sample_dir: Path, out_dir: Path, cpus: int) -> tuple[dict, float]:
    """One pinned pipeline run in a fresh process: its summary and its wall seconds (spawn to exit)."""
    started = time.perf_counter()
    child = [sys.executable, __file__, "--child", str(sample_dir), str(out_dir), str(cpus)]
    output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1]), time.perf_counter() - started


def export_for_datatrove(stage_dir: Path, out: Path, files: int) -> int:
    """The kept rows of our ingest as datatrove JSONL documents, split into ``files`` files."""
    import pyarrow.parquet as pq

    rows = [r for f in sorted(stage_dir.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    out.mkdir(parents=True, exist_ok=True)
    handles = [(out / f"part-{i:03d}.jsonl").open("w", encoding="utf-8") for i in range(files)]
    for i, row in enumerate(rows):
        text = "\n".join(m["content"] for m in row["messages"])
        handles[i * files // len(rows)].write(json.dumps({"id": row["id"], "text": text}) + "\n")
    for handle in handles:
        handle.close()
    return len(rows)


def datatrove_worker(folder: Path, work: Path, cpus: int) -> None:
    """Runs inside the throwaway datatrove environment, pinned; prints JSON {step: seconds}."""
    pin(cpus)
    import resource

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader

    def cpu_now() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    cpu: dict[str, float] = {}

    def run(name: str, pipeline: list, tasks: int = cpus) -> float:
        started, started_cpu = time.perf_counter(), cpu_now()
        # fork, not datatrove's default forkserver: forked workers are this process's children, so
        # RUSAGE_CHILDREN counts their CPU once they are reaped (forkserver's are not ours: 0.1 s seen).
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=tasks,
            logging_dir=str(work / "logs" / name),
            start_method="fork",
        ).run()
        cpu[name] = cpu_now() - started_cpu  # its worker processes are reaped when run() returns
        return time.perf_counter() - started

    def reader() -> JsonlReader:
        return JsonlReader(str(folder))

    config = ExactDedupConfig(content_getter=lambda doc: doc.text)
    seconds = {
        "read": run("read", [reader()]),
        "pii": run("pii", [reader(), PIIFormatter()]),
        "exact_dedup": run("signature", [reader(), ExactDedupSignature(str(work / "sigs"), config=config)])
        + run("find", [ExactFindDedups(str(work / "sigs"), str(work / "dups"), config=config)], tasks=1)
        + run("filter", [reader(), ExactDedupFilter(str(work / "dups"), config=config)]),
    }
    cpu_seconds = {
        "read": cpu["read"],
        "pii": cpu["pii"],
        "exact_dedup": cpu["signature"] + cpu["find"] + cpu["filter"],
    }
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}))


def bench_datatrove(folder: Path, work: Path, cpus: int) -> dict[str, dict[str, float]]:
    """datatrove's ``{"seconds": {step: s}, "cpu_seconds": {step: s}}`` on ``cpus`` pinned cores."""
    cmd = [
        "uv", "run", "--no-project", "--quiet", *DATATROVE, "python", str(Path(__file__).resolve()),
        "--datatrove-worker", str(folder), str(work), str(cpus),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp")
    if done.returncode != 0:  # say why: its own log goes to stderr
        raise RuntimeError(f"datatrove on {cpus} CPU failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    """The 1-minute load average and the machine's cores, printed beside every figure."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def stage_seconds(summary: dict) -> float:
    return sum(s["seconds"] for s in summary["stages"].values())


def median_run(summaries: list[dict]) -> dict:
    """The run with the median stage time (the lower middle one of an even count)."""
    return sorted(summaries, key=stage_seconds)[(len(summaries) - 1) // 2]


def print_run(cpus: int, summary: dict, which: str = "") -> None:
    """One pinned run: totals, then per stage wall seconds, rows/s, CPU seconds and drops."""
    stages = summary["stages"].values()
    cpu_seconds = sum(s["cpu_seconds"] for s in stages)
    rows = summary["rows_in"]
    print(
        f"{which}{cpus} CPU (pinned, {summary['load']}): {rows} rows in -> {summary['rows_out']} out; "
        f"wall {summary['wall']:.1f}s incl. process and Ray start ({summary['ray_start']:.1f}s): "
        f"{rows / summary['wall']:,.0f} rows/s; stages alone {stage_seconds(summary):.1f}s: "
        f"{rows / stage_seconds(summary):,.0f} rows/s; stage CPU {cpu_seconds:.1f}s (all processes); "
        f"inside Ray tasks {summary['task_seconds']:.1f}s; "
        f"cores without a task {summary['idle_core_seconds']:.1f}s",
        flush=True,
    )
    for name, s in summary["stages"].items():
        dropped = ", ".join(f"{k}={v}" for k, v in s["dropped"].items()) or "none"
        print(
            f"  {name[3:]:14s} {s['seconds']:6.1f}s {s['rows_in'] / max(s['seconds'], 1e-9):8,.0f} rows/s"
            f"   CPU {s['cpu_seconds']:6.1f}s {s['rows_in'] / max(s['cpu_seconds'], 1e-9):8,.0f} rows/CPU-s"
            f"   {s['rows_in']} in -> {s['rows_out']} out, dropped {dropped}",
            flush=True,
        )


def print_pairs(lows: list[dict], highs: list[dict], lo: int, hi: int) -> None:
    """The ratio of each pair of runs taken one after the other, and of their time inside Ray tasks.

    Why: on a shared machine a slow spell lands on some pairs and not others. When the seconds inside
    tasks (the same work on both counts) grow on the 2-CPU run of a pair, other tenants took the cores
    it counted on, and that pair's ratio says more about them than about the pipeline.
    """
    pairs = list(zip(lows, highs, strict=True))  # the counts run in turn, so each has as many runs
    print(
        f"run by run, {hi} vs {lo} CPU: stages "
        + ", ".join(f"{stage_seconds(a) / stage_seconds(b):.2f}x" for a, b in pairs)
        + f"; seconds inside Ray tasks {hi} CPU / {lo} CPU: "
        + ", ".join(f"{b['task_seconds'] / a['task_seconds']:.2f}" for a, b in pairs)
    )


def print_datatrove(cpus: int, ours: list[dict], theirs: list[dict]) -> None:
    """Each comparable step: datatrove's and our median seconds, CPU seconds and throughput, and the
    median of our ratio over the pairs of runs (datatrove's run i came right after our run i, so a slow
    spell of a shared machine lands on both sides of a pair, not on one side's run alone)."""
    docs = ours[0]["stages"]["02-clean"]["rows_in"]  # the documents datatrove gets: ingest's kept rows
    print(f"datatrove 0.10.1 vs aloe, {cpus} CPU (pinned, {load()}), {docs} documents, {len(ours)} pairs:")
    for stage, step in STEPS.items():
        rows = ours[0]["stages"][stage]["rows_in"]
        walls = [run["stages"][stage]["seconds"] for run in ours]
        cpus_used = [run["stages"][stage]["cpu_seconds"] for run in ours]
        dt_walls = [run["seconds"][step] for run in theirs]
        dt_cpus = [run["cpu_seconds"][step] for run in theirs]
        by_wall = [d / w * rows / docs for d, w in zip(dt_walls, walls, strict=True)]
        by_cpu = [d / c * rows / docs for d, c in zip(dt_cpus, cpus_used, strict=True)]
        wall, dt_wall = statistics.median(walls), statistics.median(dt_walls)
        cpu, dt_cpu = statistics.median(cpus_used), statistics.median(dt_cpus)
        pairs = ", ".join(f"{r:.2f}" for r in by_wall)
        print(
            f"  {step:12s} datatrove {dt_wall:6.1f}s ({docs / dt_wall:8,.0f} docs/s, CPU {dt_cpu:5.1f}s)"
            f"   aloe {stage[3:]} {wall:6.1f}s ({rows / wall:8,.0f} rows/s, CPU {cpu:5.1f}s)"
            f"   aloe {statistics.median(by_wall):.2f}x by wall (pairs {pairs}), "
            f"{statistics.median(by_cpu):.2f}x by CPU"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cpus", default="1,2", help="comma-separated CPU counts to compare")
    parser.add_argument("--repeat", type=int, default=3, help="runs per CPU count (the median is compared)")
    parser.add_argument("--skip-datatrove", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("SAMPLE", "OUT", "CPUS"), help=argparse.SUPPRESS)
    parser.add_argument("--datatrove-worker", nargs=3, metavar=("IN", "WORK", "CPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_once(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    if args.datatrove_worker:
        datatrove_worker(
            Path(args.datatrove_worker[0]), Path(args.datatrove_worker[1]), int(args.datatrove_worker[2])
        )
        return
    from aloe_fixtures.corpus import write_sample

    work = Path(tempfile.mkdtemp(prefix="aloe-bench-"))
    try:
        started = time.perf_counter()
        write_sample(work / "sample", rows=args.rows, seed=0)
        print(f"corpus: {args.rows} rows written in {time.perf_counter() - started:.1f}s", flush=True)
        write_sample(work / "warm-up", rows=WARM_UP_ROWS, seed=1)
        seconds = run_child(work / "warm-up", work / "run-warm-up", 1)[1]
        print(
            f"warm-up: the pipeline on {WARM_UP_ROWS} rows, 1 CPU, {seconds:.1f}s (first use on a checkout "
            "compiles the numba kernels into __pycache__; the timed runs below then load them)",
            flush=True,
        )
        runs: dict[int, list[dict]] = {}
        theirs: dict[int, list[dict]] = {}  # datatrove's runs, each right after one of ours
        for repeat in range(args.repeat):
            for cpus in [int(c) for c in args.cpus.split(",")]:
                out = work / f"run-{cpus}"
                shutil.rmtree(out, ignore_errors=True)
                summary, wall = run_child(work / "sample", out, cpus)
                summary["wall"] = wall
                summary["load"] = load()
                runs.setdefault(cpus, []).append(summary)
                print_run(cpus, summary, f"run {repeat + 1}/{args.repeat}, ")
                if not args.skip_datatrove:
                    documents = work / f"dt-in-{cpus}"
                    if not documents.exists():  # every run ingests the same rows: export them once
                        export_for_datatrove(out / "01-ingest", documents, files=4 * cpus)
                    shutil.rmtree(work / "dt-work", ignore_errors=True)
                    theirs.setdefault(cpus, []).append(bench_datatrove(documents, work / "dt-work", cpus))
        results = {cpus: median_run(summaries) for cpus, summaries in runs.items()}
        if args.repeat > 1:
            for cpus, summary in results.items():
                print_run(cpus, summary, f"median of {args.repeat} runs, ")
        counts = sorted(results)
        if len(counts) > 1:
            lo, hi = results[counts[0]], results[counts[-1]]
            stage_sum = {c: stage_seconds(results[c]) for c in counts}
            print(
                f"ratio {counts[-1]} vs {counts[0]} CPU: wall {lo['wall'] / hi['wall']:.2f}x, "
                f"stages alone {stage_sum[counts[0]] / stage_sum[counts[-1]]:.2f}x; per stage: "
                + ", ".join(
                    f"{name[3:]} {lo['stages'][name]['seconds'] / max(s['seconds'], 1e-9):.2f}x"
                    for name, s in hi["stages"].items()
                )
            )
            if args.repeat > 1:
                print_pairs(runs[counts[0]], runs[counts[-1]], counts[0], counts[-1])
        for cpus, their_runs in theirs.items():
            print_datatrove(cpus, runs[cpus], their_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
