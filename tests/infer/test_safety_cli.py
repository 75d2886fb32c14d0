"""`aloe eval safety` as a user runs it (a subprocess, in-process models): the run folder, the garbage
judge falling back to the classifier, and no answer ever reaching stdout or stderr."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aloe_infer.safety.report import read_predictions


def aloe(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": ""}
    return subprocess.run(
        [sys.executable, "-m", "aloe_core.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def safety_args(model: Path, out: str) -> list[str]:
    return [
        "eval", "safety", "--model", str(model), "--judge", str(model), "--local", "--held-out", "distractor",
        "--set", "prompts.requests_per_topic=1", "--set", "prompts.styles=[direct, distractor]",
        "--set", "generation.max_tokens=24", "--set", "judge.max_tokens=24", "--out", out,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def safety_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run = tmp_path_factory.mktemp("safety") / "run"
    done = aloe(*safety_args(tiny_model_dir, str(run)))
    assert done.returncode == 0, done.stderr[-3000:]
    return run, done


def test_run_folder_holds_report_heatmap_and_private_results(safety_run):
    run, _ = safety_run
    report: dict[str, Any] = json.loads((run / "results.json").read_text())
    assert report["prompts"]["n"] == 12 * 2
    assert set(report["asr"]["by_style"]) == {"direct", "distractor"}
    assert len(report["asr"]["by_topic"]) == 12
    assert (run / "heatmap.png").read_bytes().startswith(b"\x89PNG")
    assert "| topic | ASR" in (run / "results.md").read_text()
    assert stat.S_IMODE((run / "predictions.jsonl").stat().st_mode) == 0o600
    # The tiny model is a garbage judge: every output unparsed, every verdict the classifier's.
    assert report["judge"]["unparsed"] + report["judge"]["parsed"] + report["judge"]["errors"] == 24
    assert report["verdicts"]["by_classifier"] == report["judge"]["unparsed"] + report["judge"]["errors"]
    records = read_predictions(run)
    assert all(r["held_out"] == (r["style"] == "distractor") for r in records)
    assert all(r["classifier"]["label"] for r in records)


def test_answers_never_reach_stdout_or_stderr(safety_run):
    run, done = safety_run
    printed = done.stdout + done.stderr
    assert "ASR " in done.stdout  # the summary is printed
    texts = [r["answer"] for r in read_predictions(run)] + [
        r["judge"]["output"] for r in read_predictions(run)
    ]
    pieces = [t.strip()[:30] for t in texts if t and len(t.strip()) >= 12]
    assert pieces, "the tiny model wrote answers to look for"
    leaked = [p for p in pieces if p in printed]
    assert not leaked, f"answers printed: {leaked[:3]}"


def test_compare_and_pairs_from_the_run(safety_run, tmp_path):
    run, _ = safety_run
    done = aloe("eval", "safety-compare", str(run), str(run), "--out", str(tmp_path / "cmp"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert (result["paired"], result["difference"], result["fixed"], result["regressed"]) == (24, 0.0, 0, 0)
    assert (tmp_path / "cmp" / "compare.png").is_file()
    done = aloe("data", "redteam-pairs", "--eval-run", str(run), "--set", "rejected=not_refused",
                "--out", str(tmp_path / "pairs"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    entry = json.loads((tmp_path / "pairs" / "manifest.json").read_text())["stages"]["redteam-pairs"]
    assert entry["rows_in"] == 24 and entry["dropped"].get("held_out_styles") == 12
    assert entry["rows_out"] + sum(entry["dropped"].values()) == 24
    leaked = [
        r["answer"].strip()[:30] for r in read_predictions(run) if r["answer"] and r["answer"].strip()[:30]
    ]
    assert not [p for p in leaked if len(p) >= 12 and p in done.stdout + done.stderr]


def test_a_run_into_s3_equals_the_local_run_and_compares_there(safety_run, tiny_model_dir, s3_bucket):
    """``--out s3://...`` (moto's server on 127.0.0.1; this process's environment, which s3_bucket set,
    reaches the subprocess): the same files and verdicts as the local run, and safety-compare between a
    local and an S3 run writing its comparison to S3."""
    from aloe_core import storage

    run, _ = safety_run
    out = s3_bucket + "/safety/run"
    done = aloe(*safety_args(tiny_model_dir, out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"report: {out}/results.json" in done.stdout
    names = {"config.json", "predictions.jsonl", "results.json", "results.md", "heatmap.png"}
    assert {storage.name_of(i.path) for i in storage.list_tree(out)} == names
    remote = json.loads(storage.read_text(out + "/results.json"))
    here = json.loads((run / "results.json").read_text())
    assert {k: v for k, v in remote.items() if k != "seconds"} == {
        k: v for k, v in here.items() if k != "seconds"
    }
    assert read_predictions(out) == read_predictions(run)

    done = aloe("eval", "safety-compare", str(run), out, "--out", s3_bucket + "/safety/cmp")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(storage.read_text(s3_bucket + "/safety/cmp/compare.json"))
    assert (result["paired"], result["difference"], result["after"]) == (24, 0.0, out)
    assert storage.read_bytes(s3_bucket + "/safety/cmp/compare.png").startswith(b"\x89PNG")


def test_missing_out_is_a_one_line_error(tiny_model_dir):
    done = aloe("eval", "safety", "--model", str(tiny_model_dir))
    assert done.returncode == 2 and done.stderr.strip() == "aloe: error: --out: required (the run folder)"
