"""Tiny inputs skip Ray (aloe_data.pipeline.local): same files as the Ray path, and Ray never starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aloe_core.config import validate_config
from aloe_data.pipeline.config import InProcessConfig, OutputConfig, PipelineConfig
from aloe_data.pipeline.local import runs_in_process
from aloe_data.pipeline.runner import run_pipeline
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.stages.clean import CleanConfig, CleanStage
from aloe_data.stages.exact_dedup import ExactDedupConfig, ExactDedupStage
from aloe_fixtures.demo import sample_pipeline

ON_RAY = {"max_rows": 0}  # in_process settings that send every stage to Ray


def files_of(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def ingest_config(sample: Path, in_process: dict | None = None) -> PipelineConfig:
    raw = sample_pipeline(sample, "sft", stages=[{"type": "clean"}]) | {"report": False}
    return validate_config(PipelineConfig, raw | ({"in_process": in_process} if in_process else {}))


def test_the_rule_names_row_local_stages_and_tiny_inputs_only(monkeypatch):
    limits, output = InProcessConfig(), OutputConfig(shard_rows=500)
    clean, dedup = CleanStage(CleanConfig()), ExactDedupStage(ExactDedupConfig())
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert runs_in_process(clean, 500, None, limits, output)
    assert not runs_in_process(clean, 501, None, limits, output)  # two shards: Ray's write tasks name them
    assert not runs_in_process(dedup, 10, None, limits, output)  # an exchange across the cluster
    assert not runs_in_process(clean, 10, None, InProcessConfig(max_rows=0), output)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert not runs_in_process(clean, 10, None, limits, output)  # on a cluster, work goes to the cluster


def test_tiny_run_writes_the_same_files_in_process_as_on_ray(ray_session, tiny_sample, tmp_path):
    on_ray = run_pipeline(ingest_config(tiny_sample, ON_RAY), tmp_path / "ray")
    here = run_pipeline(ingest_config(tiny_sample), tmp_path / "here")
    assert files_of(tmp_path / "here") == files_of(tmp_path / "ray")
    strip = ("seconds", "config", "config_hash")
    for name, entry in on_ray.stages.items():
        assert {k: v for k, v in here.stages[name].items() if k not in strip} == {
            k: v for k, v in entry.items() if k not in strip
        }
    assert here.stages["01-ingest"]["dropped"]["malformed"] > 0  # the defects were really read
    assert here.stages["02-clean"]["counters"]  # and PII masked

    # A single-stage command too (clean over the ingest output).
    ray_entry = run_stage_on_files(
        CleanStage(CleanConfig()), tmp_path / "ray" / "01-ingest", tmp_path / "clean-ray",
        in_process=InProcessConfig(max_rows=0),
    )  # fmt: skip
    here_entry = run_stage_on_files(CleanStage(CleanConfig()), tmp_path / "ray" / "01-ingest", tmp_path / "c")
    assert files_of(tmp_path / "c") == files_of(tmp_path / "clean-ray")
    assert here_entry["files"] == ray_entry["files"] and here_entry["dropped"] == ray_entry["dropped"]


def test_aloe_data_ingest_of_a_small_file_never_starts_ray(tiny_sample, tmp_path):
    code = (
        "import sys, ray\nfrom aloe_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "print('ray started:', ray.is_initialized())"
    )
    source = tiny_sample / "chat" / "openai.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    args = ["data", "ingest", "--input", str(source), "--out", str(tmp_path / "out")]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ray started: False"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["stages"]["01-ingest"]
    assert entry["rows_in"] == sum(1 for _ in source.open()) and entry["rows_out"] > 0
