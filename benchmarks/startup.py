"""Start-up: wall time of `aloe data ingest` on a 40-row file, as a new user runs it (median of N runs).

    uv run python benchmarks/startup.py --repeats 5

Each run is a fresh process (`python -m aloe_core.cli data ingest ...`, what the `aloe` script runs) into
a fresh output folder, timed from spawn to exit. Three variants on the same file:

* ``in process``: the default; a 40-row file is a tiny input, so ingest runs without Ray
  (:mod:`aloe_data.pipeline.local` states the rule);
* ``on Ray``: the same command with tiny-input handling off (``in_process.max_rows: 0``), so it starts
  the embedded local Ray and runs the stage as Ray Data tasks, as any larger input does;
* ``ray.init + shutdown``: Ray's own floor, with aloe's embedded-Ray settings (``ensure_ray``).

Prints the median and spread of each, and the goal (<= 8 s for the default).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 8.0

RAY_ONLY = (
    "import ray\nfrom aloe_core.ray_session import ensure_ray\n"
    "ensure_ray(log_to_driver=False)\nray.shutdown()"
)
# `aloe data ingest` has no --set; the on-Ray variant runs the same ingest as a one-source pipeline config.
ON_RAY = """
import sys
from pathlib import Path
from aloe_core.config import validate_config
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.runner import run_pipeline
source, out = sys.argv[1], Path(sys.argv[2])
config = {"sources": [{"name": "openai_chat", "format": "openai_chat", "path": source}], "report": False,
          "in_process": {"max_rows": 0}}
run_pipeline(validate_config(PipelineConfig, config), out)
"""


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def write_input(directory: Path, rows: int) -> Path:
    from aloe_fixtures.corpus import write_sample

    write_sample(directory / "sample", rows=max(400, rows * 10), seed=0)
    lines = (directory / "sample" / "chat" / "openai.jsonl").read_text().splitlines()[:rows]
    path = directory / f"chat-{rows}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aloe-startup-") as tmp:
        work = Path(tmp)
        source = write_input(work, args.rows)
        variants = {
            "in process (default)": lambda i: [
                sys.executable, "-m", "aloe_core.cli", "data", "ingest", "--input", str(source),
                "--format", "openai_chat", "--out", str(work / f"default-{i}"),
            ],
            "on Ray (in_process.max_rows=0)": lambda i: [
                sys.executable, "-c", ON_RAY, str(source), str(work / f"ray-{i}")
            ],
            "ray.init + shutdown": lambda i: [sys.executable, "-c", RAY_ONLY],
        }  # fmt: skip
        results = {}
        for name, command in variants.items():
            seconds = [timed(command(i)) for i in range(args.repeats)]
            results[name] = seconds
            print(
                f"{name:34s} median {statistics.median(seconds):5.2f} s  "
                f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {args.repeats} runs)",
                flush=True,
            )
        manifest = json.loads((work / "default-0" / "manifest.json").read_text())
        entry = manifest["stages"]["01-ingest"]
        print(f"rows: {entry['rows_in']} in -> {entry['rows_out']} out")
        median = statistics.median(results["in process (default)"])
        verdict = "met" if median <= GOAL_SECONDS else "NOT met"
        print(f"goal: <= {GOAL_SECONDS:.0f} s: {verdict} ({median:.2f} s)")


if __name__ == "__main__":
    main()
