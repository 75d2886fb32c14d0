"""Throughput of the whole data pipeline (ingest -> clean -> exact dedup) on 1 vs 2 CPUs.

    uv run python benchmarks/pipeline.py --rows 200000

Writes the embedded corpus once, then runs the sample sft pipeline in a fresh process (fresh local Ray)
per CPU count, and prints rows/s (input rows / wall seconds of the run) and the 2-vs-1 CPU ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(sample_dir: Path, out_dir: Path, num_cpus: int) -> None:
    """Child process: one pipeline run on a fresh local Ray with ``num_cpus`` CPUs."""
    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_fixtures.demo import sample_pipeline

    raw = sample_pipeline(sample_dir, "sft") | {"ray_cpus": num_cpus, "output": {"shard_rows": 50_000}}
    manifest = run_pipeline(validate_config(PipelineConfig, raw), out_dir)
    stages = list(manifest.stages.values())
    print(
        json.dumps(
            {
                "rows_in": stages[0]["rows_in"],
                "rows_out": stages[-1]["rows_out"],
                "stage_seconds": {s["stage"]: s["seconds"] for s in stages},
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cpus", default="1,2", help="comma-separated CPU counts to compare")
    parser.add_argument("--child", nargs=3, metavar=("SAMPLE", "OUT", "CPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_once(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    from aloe_fixtures.corpus import write_sample

    work = Path(tempfile.mkdtemp(prefix="aloe-bench-"))
    try:
        started = time.perf_counter()
        write_sample(work / "sample", rows=args.rows, seed=0)
        print(f"corpus: {args.rows} rows written in {time.perf_counter() - started:.1f}s")
        results = {}
        for cpus in [int(c) for c in args.cpus.split(",")]:
            started = time.perf_counter()
            child = [
                sys.executable,
                __file__,
                "--child",
                str(work / "sample"),
                str(work / f"run-{cpus}"),
                str(cpus),
            ]
            output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            seconds = time.perf_counter() - started
            summary = json.loads(output.strip().splitlines()[-1])
            results[cpus] = summary["rows_in"] / seconds
            print(
                f"{cpus} CPU: {summary['rows_in']} rows in -> {summary['rows_out']} out, {seconds:.1f}s, "
                f"{results[cpus]:.0f} rows/s; stages: {summary['stage_seconds']}"
            )
        counts = sorted(results)
        if len(counts) > 1:
            print(f"ratio {counts[-1]} vs {counts[0]} CPU: {results[counts[-1]] / results[counts[0]]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
