"""`aloe eval run --out s3://...` as a user runs it (a subprocess, in-process models) against a real S3
endpoint on 127.0.0.1 (moto's server mode): the run on the bucket holds the files a local run holds,
with the same results; an engine model on the bucket gives the predictions of the same model on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aloe_core import storage
from aloe_core.atomic import upload_dir

STRATEGIES = ("zero-shot", "cot")
FILES = {"results.json", "results.md", "predictions.jsonl", "accuracy.png"}
COMPARISON = {"comparison.json", "comparison.md", "accuracy.png"}
TIMINGS = ("seconds", "questions_per_second")  # the machine's, not the run's


def aloe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aloe_core.cli", *args], capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | env,
    )  # fmt: skip


def eval_args(
    model: str | Path, benchmarks: Path, out: str, strategies: tuple[str, ...] = STRATEGIES
) -> list[str]:
    return [
        "eval", "run", "--model", str(model), "--benchmarks", str(benchmarks), "--limit", "2",
        "--strategy", ",".join(strategies), "--set", "names=[medqa, pubmedqa]", "--set", "actors.mode=local",
        "--set", "generation.max_tokens=12", "--out", out,
    ]  # fmt: skip


def files_under(root: str) -> set[str]:
    _, inner = storage.resolve(root)
    return {i.path.removeprefix(inner + "/") for i in storage.list_tree(root)}


def without_timings(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in TIMINGS}


def test_eval_run_into_s3_writes_the_files_and_results_of_a_local_run(
    s3_endpoint, s3_bucket, tiny_model_dir, shared_mcqa, tmp_path
):
    local = tmp_path / "local"
    done = aloe(s3_endpoint, *eval_args(tiny_model_dir, shared_mcqa, str(local)))
    assert done.returncode == 0, done.stderr[-3000:]
    out = s3_bucket + "/evals/tiny"
    done = aloe(s3_endpoint, *eval_args(tiny_model_dir, shared_mcqa, out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"results: {out}/comparison.md" in done.stdout

    expected = COMPARISON | {f"{s}/{name}" for s in STRATEGIES for name in FILES}
    assert files_under(out) == files_under(str(local)) == expected
    assert not (Path.cwd() / "s3:").exists()  # nothing took the URI for a local path
    for strategy in STRATEGIES:
        remote = json.loads(storage.read_text(f"{out}/{strategy}/results.json"))
        here = json.loads((local / strategy / "results.json").read_text())
        assert without_timings(remote) == without_timings(here)
        assert remote["questions"] == 4 and set(remote["benchmarks"]) == {"medqa", "pubmedqa"}
        for name in ("predictions.jsonl", "results.md"):
            assert storage.read_text(f"{out}/{strategy}/{name}") == (local / strategy / name).read_text()
        assert storage.read_bytes(f"{out}/{strategy}/accuracy.png").startswith(b"\x89PNG")
    comparison = json.loads(storage.read_text(out + "/comparison.json"))
    assert comparison["runs"] == [f"{out}/{s}" for s in STRATEGIES]
    here = json.loads((local / "comparison.json").read_text())
    assert {k: v for k, v in comparison.items() if k != "runs"} == {
        k: v for k, v in here.items() if k != "runs"
    }

    # `aloe eval compare` reads runs on the bucket too and writes its comparison there.
    done = aloe(s3_endpoint, "eval", "compare", *(f"{out}/{s}" for s in STRATEGIES), "--out", out + "/again")
    assert done.returncode == 0, done.stderr[-3000:]
    assert storage.read_text(out + "/again/comparison.md") == storage.read_text(out + "/comparison.md")


@pytest.mark.slow  # two eval subprocesses (~40 s on 2 cores)
def test_an_engine_model_on_the_bucket_gives_the_predictions_of_the_local_model(
    s3_endpoint, s3_bucket, tiny_model_dir, shared_mcqa, tmp_path
):
    model = upload_dir(tiny_model_dir, s3_bucket + "/models/tiny", last="config.json")
    env = s3_endpoint | {"ALOE_CACHE_DIR": str(tmp_path / "cache")}
    done = aloe(env, *eval_args(tiny_model_dir, shared_mcqa, str(tmp_path / "local"), ("zero-shot",)))
    assert done.returncode == 0, done.stderr[-3000:]
    done = aloe(env, *eval_args(model, shared_mcqa, str(tmp_path / "remote"), ("zero-shot",)))
    assert done.returncode == 0, done.stderr[-3000:]

    local, remote = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("local", "remote"))
    assert remote["model"] == model and remote["config"]["engine"]["model"] == model
    ignore = {*TIMINGS, "model", "config"}
    assert {k: v for k, v in remote.items() if k not in ignore} == {
        k: v for k, v in local.items() if k not in ignore
    }
    predictions = (tmp_path / "remote" / "predictions.jsonl").read_text()
    assert predictions == (tmp_path / "local" / "predictions.jsonl").read_text() and predictions
    # The driver tokenized from a copy without weights; the engine loaded a whole copy, in this cache.
    copies = sorted((tmp_path / "cache" / "uri").iterdir())
    assert [sorted(p.name for p in c.iterdir() if p.suffix == ".safetensors") for c in copies] in (
        [[], ["model.safetensors"]],
        [["model.safetensors"], []],
    )
    assert not any(c.name.startswith(".") for c in copies)  # no staging folder left


def test_an_engine_model_uri_without_a_model_is_a_one_line_error(
    s3_endpoint, s3_bucket, shared_mcqa, tmp_path
):
    model = s3_bucket + "/models/none"
    done = aloe(s3_endpoint, *eval_args(model, shared_mcqa, str(tmp_path / "x")))
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"aloe: error: {model}: not a Hugging Face model folder (no config.json under this URI)"
    )


def test_a_benchmark_folder_on_the_bucket_loads_the_items_of_the_local_folder(
    s3_bucket, shared_mcqa, tmp_path, monkeypatch
):
    """`--benchmarks s3://...`: the same benchmarks, items and skipped items as the folder on disk."""
    from aloe_core.errors import InputError
    from aloe_infer.eval.benchmarks import load_benchmarks

    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    local = tmp_path / "bench"
    local.mkdir()
    for name in (
        "medqa_4opt/medqa_4opt_test.json",
        "pubmedqa/pubmedqa_test.json",
        "medmcqa/medmcqa_val.json",
    ):
        (local / name).parent.mkdir(exist_ok=True)
        (local / name).write_bytes((shared_mcqa / name).read_bytes())
    uri = s3_bucket + "/benchmarks"
    upload_dir(local, uri, last="pubmedqa/pubmedqa_test.json")

    remote, remote_excluded = load_benchmarks(uri, limit=5)
    here, here_excluded = load_benchmarks(local, limit=5)
    assert [b.name for b in remote] == [b.name for b in here] == ["medqa", "pubmedqa"]
    assert [b.items for b in remote] == [b.items for b in here]
    assert remote_excluded == here_excluded
    assert [b.name for b in load_benchmarks(uri, split="val")[0]] == ["medmcqa"]
    with pytest.raises(InputError, match=r"^s3://.*/nothing-here: benchmark folder not found"):
        load_benchmarks(s3_bucket + "/nothing-here")
