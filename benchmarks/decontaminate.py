"""Throughput of benchmark decontamination: index build, in-process matching, and the Ray stage.

    uv run python benchmarks/decontaminate.py --rows 50000

Training rows are the embedded corpus's sft rows (ingested once with the pipeline's reader). The index is
built from every ``*test*`` file of the real medical test sets in ../shared/data/medical-mcqa (about 15k
items) when present, else from the corpus's own benchmark. Prints the index size and build time, the
single-process matching rate of :func:`match_rows` (one core, no Ray), and the rate of the whole stage
(read Parquet, match, write shards) through :func:`run_stage_on_files` on a local Ray.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medical-mcqa"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000, help="rows of corpus to generate and check")
    parser.add_argument("--num-cpus", type=int, default=None, help="local Ray size for the stage run")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from aloe_core.config import validate_config
    from aloe_data.benchmarks import build_index, load_benchmarks
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_data.pipeline.single import run_stage_on_files
    from aloe_data.stages.decontaminate import (
        DecontaminateConfig,
        DecontaminateStage,
        match_rows,
        row_texts,
    )
    from aloe_fixtures.corpus import write_sample
    from aloe_fixtures.demo import sample_pipeline

    work = Path(tempfile.mkdtemp(prefix="aloe-decont-"))
    try:
        write_sample(work / "sample", rows=args.rows, seed=0)
        raw = sample_pipeline(work / "sample", stages=[]) | {"report": False, "ray_cpus": args.num_cpus}
        run_pipeline(validate_config(PipelineConfig, raw), work / "run")
        ingested = work / "run" / "01-ingest"
        benchmarks = [str(SHARED)] if SHARED.is_dir() else [str(work / "sample" / "benchmarks")]

        started = time.perf_counter()
        items = load_benchmarks(benchmarks)
        index = build_index(items)
        print(
            f"index: {len(items)} items, {len(index.hashes)} shingles, {index.nbytes / 1e6:.1f} MB, "
            f"built in {time.perf_counter() - started:.1f}s from {benchmarks[0]}"
        )

        table = pq.read_table(sorted(ingested.glob("*.parquet")))
        rows = table.select(["messages", "mcqa"]).to_pylist()
        texts = [row_texts(r, "sft", ("system", "user", "assistant")) for r in rows]
        started = time.perf_counter()
        matched = sum(
            m is not None for i in range(0, len(texts), 1024) for m in match_rows(index, texts[i : i + 1024])
        )
        seconds = time.perf_counter() - started
        print(
            f"match_rows (1 core): {len(rows)} rows in {seconds:.1f}s = {len(rows) / seconds:.0f} rows/s; "
            f"{matched} matched"
        )

        started = time.perf_counter()
        stage = DecontaminateStage(DecontaminateConfig(benchmarks=benchmarks))
        entry = run_stage_on_files(stage, ingested, work / "out", ray_cpus=args.num_cpus)
        seconds = time.perf_counter() - started
        print(
            f"stage on Ray: {entry['rows_in']} rows in {seconds:.1f}s = {entry['rows_in'] / seconds:.0f} "
            f"rows/s (index build included); dropped {entry['dropped']}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
