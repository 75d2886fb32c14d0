"""Single-core throughput of the ``clean`` stage: the batched stage vs the per-row one it replaced.

    uv run python benchmarks/clean.py --rows 30000

Rows are the embedded corpus (``aloe_fixtures.corpus.write_sample``, read in-process the way the ingest
stage reads it, malformed and non-English rows included): ``--rows`` corpus rows give ~85% sft rows, and
``--kind preference`` benchmarks the preference pairs instead. Both implementations run in this process
on the same batches of ``--batch`` rows (Ray's batch size for the stage), with ``CleanConfig()`` unless
``--set key=value`` (JSON values) changes it; the process is pinned to one core and timed in CPU time
(``time.process_time``), so other load on a shared machine inflates the figures less than wall time would
(the load average is printed). Every batch's output tables are asserted equal. The batched stage is timed
best of ``--repeats`` passes after a warm-up batch (numba compilation, model loading); the reference once.
``--profile`` prints the batched stage's top functions (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))  # the per-row reference and the corpus reader


def _timed(process, batches: list, kind: str) -> tuple[float, list]:
    """CPU seconds to process every batch, and the outputs."""
    start = time.process_time()
    outputs = [process(batch, kind) for batch in batches]
    return time.process_time() - start, outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=30_000, help="corpus rows to generate (all kinds)")
    parser.add_argument("--kind", choices=("sft", "preference"), default="sft")
    parser.add_argument("--batch", type=int, help="rows per process() call (default: the stage's batch size)")
    parser.add_argument("--repeats", type=int, default=3, help="passes of the batched stage (best is kept)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a CleanConfig field")
    parser.add_argument("--profile", action="store_true", help="cProfile one pass of the batched stage")
    args = parser.parse_args()

    from clean_reference import ReferenceClean
    from corpus_tables import corpus_tables

    from aloe_data.stages.clean import CleanConfig, CleanStage

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    config = CleanConfig(**{k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)})
    table = corpus_tables(args.rows)[args.kind]
    args.batch = args.batch or CleanStage.batch_size
    batches = [table.slice(start, args.batch) for start in range(0, table.num_rows, args.batch)]
    settings = config.model_dump(exclude={"type", "name"})
    print(f"{table.num_rows} {args.kind} rows in {len(batches)} batches; config {settings}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)", flush=True)

    fast, reference = CleanStage(config), ReferenceClean(config)
    fast.process(batches[0], args.kind)  # warm-up: numba kernels, langid model, character classes
    fast_seconds = min(_timed(fast.process, batches, args.kind)[0] for _ in range(args.repeats))
    _, fast_outputs = _timed(fast.process, batches, args.kind)
    reference_seconds, reference_outputs = _timed(reference.process, batches, args.kind)
    for i, (got, want) in enumerate(zip(fast_outputs, reference_outputs, strict=True)):
        assert got.equals(want) and got.schema == want.schema, f"batch {i}: outputs differ"

    rows = table.num_rows
    print(f"per-row reference: {rows / reference_seconds:9.0f} rows/s ({reference_seconds:.2f} s CPU)")
    best = f"{fast_seconds:.2f} s CPU, best of {args.repeats}"
    print(f"batched stage:     {rows / fast_seconds:9.0f} rows/s ({best})")
    print(f"speed-up: {reference_seconds / fast_seconds:.1f}x; outputs equal on all {len(batches)} batches")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(_timed, fast.process, batches, args.kind)
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
