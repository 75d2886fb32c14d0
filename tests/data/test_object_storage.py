"""The data pipeline with its output on S3 (moto's server on 127.0.0.1: a real endpoint, real HTTP), and
`aloe train sft` reading that run; checked against a local run of the same config.

Every command runs as a user runs it: `aloe ...` in a subprocess whose environment holds the endpoint,
fake keys and a secret, with its own local Ray (Ray workers take their credentials from their
environment, as on a cluster), under a Ray temp folder of its own so its logs can be searched for the
secret at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from aloe_core import storage
from aloe_core.manifest import ATTEMPT_PREFIX
from aloe_core.shards import resolve_inputs
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline

pytestmark = pytest.mark.slow  # six commands, each with its own local Ray: CI's second step

REPO = Path(__file__).resolve().parents[2]
KILL_AT = Path(__file__).with_name("kill_at.py")
STAGES = ["01-ingest", "02-clean", "03-exact-dedup", "04-fuzzy-dedup", "05-decontaminate"]
# What an entry must agree on between a local and an S3 run (S3 entries add their attempt; timings differ).
SAME = ("stage", "key", "rows_in", "rows_out", "dropped", "counters", "files", "dropped_files", "config")


class Commands:
    """Runs `aloe` subprocesses with the S3 environment, keeping every log for the secret search."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.count = env, logs, 0
        self.outputs: list[Path] = []  # local output folders of the commands, searched for the secret too

    def run(self, args: list[str], *, kill_at: list[str] | None = None) -> tuple[int, str]:
        self.count += 1
        log = self.logs / f"{self.count:02d}-{args[0]}-{args[1]}.log"
        prefix = [str(KILL_AT), *kill_at, "--"] if kill_at else ["-m", "aloe_core.cli"]
        with log.open("w") as handle:
            code = subprocess.run(
                [sys.executable, *prefix, *args], env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                cwd=REPO, timeout=900, check=False,
            ).returncode  # fmt: skip
        return code, log.read_text()


@pytest.fixture(scope="module")
def commands(s3_endpoint, tmp_path_factory) -> Commands:
    # A short temp folder: Ray's socket paths must stay under the 107-byte limit of AF_UNIX.
    ray_tmp = tempfile.mkdtemp(prefix="aloe-s3-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | s3_endpoint | {"RAY_TMPDIR": ray_tmp}
    return Commands(env, tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("s3-pipeline")
    write_sample(directory / "sample", rows=800, seed=5)
    raw = sample_pipeline(directory / "sample", "sft") | {"output": {"shard_rows": 300}}
    path = directory / "pipeline.yaml"
    path.write_text("# object-storage test pipeline\n" + yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def local_run(commands, config_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "run"
    code, log = commands.run(["data", "run", str(config_file), "--out", str(out)])
    assert code == 0, log
    return out


@pytest.fixture(scope="module")
def s3_run(commands, config_file, new_s3_bucket) -> tuple[str, str]:
    out = new_s3_bucket() + "/run"
    code, log = commands.run(["data", "run", str(config_file), "--out", out])
    assert code == 0, log
    return out, log


def manifest(run: str | Path) -> dict:
    return json.loads(storage.read_text(storage.join(run, "manifest.json")))


def objects(run: str) -> dict[str, tuple[str, str]]:
    """Every object under ``run``: key -> (ETag, LastModified)."""
    import boto3

    bucket, _, prefix = run.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return {o["Key"]: (o["ETag"], str(o["LastModified"])) for p in pages for o in p.get("Contents", [])}


def committed(run: str) -> set[str]:
    """The keys a finished run may hold: its manifest, its report, and the files its entries list."""
    _, _, prefix = run.removeprefix("s3://").partition("/")
    keys = {f"{prefix}/{name}" for name in ("manifest.json", "report.json", "report.html")}
    for stage, entry in manifest(run)["stages"].items():
        for name in {**entry["files"], **entry["dropped_files"]}:
            keys.add(f"{prefix}/{stage}/{entry['attempt']}/{name}")
    return keys


def debris(run: str) -> list[str]:
    """Objects under ``run`` its manifest does not account for. pyarrow's empty ``FOLDER/`` marker of a
    folder it deleted from is not debris when that folder still holds committed files."""
    keys, kept = set(objects(run)), committed(run)
    markers = {k for k in keys if k.endswith("/") and any(c.startswith(k) for c in kept)}
    return sorted(keys - kept - markers)


def assert_equals_local(run: str, local: Path) -> None:
    remote, here = manifest(run)["stages"], manifest(local)["stages"]
    assert list(remote) == list(here) == STAGES
    for stage in STAGES:
        assert {k: remote[stage][k] for k in SAME} == {k: here[stage][k] for k in SAME}, stage
        assert remote[stage]["attempt"].startswith(ATTEMPT_PREFIX) and "attempt" not in here[stage]
    assert ids(run) == ids(local) and len(ids(local)) == here[STAGES[-1]]["rows_out"] > 0


def ids(run: str | Path) -> list[str]:
    rows = []
    for file in resolve_inputs(run, kind="sft").files:
        where, fs = storage.for_arrow(file)
        rows += pq.read_table(where, filesystem=fs, columns=["id"]).column("id").to_pylist()
    return rows


def test_the_s3_run_equals_the_local_run(s3_endpoint, s3_run, local_run, monkeypatch):
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    run, _ = s3_run
    assert_equals_local(run, local_run)
    assert set(objects(run)) == committed(run)  # nothing else: no stray attempt, no marker
    assert (
        json.loads(storage.read_text(run + "/report.json"))["rows_out"]
        == manifest(local_run)["stages"][STAGES[-1]]["rows_out"]
    )


def test_a_rerun_does_no_work(commands, s3_endpoint, s3_run, config_file, monkeypatch):
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    run, _ = s3_run
    before, shards = manifest(run), {k: v for k, v in objects(run).items() if k.endswith(".parquet")}
    code, log = commands.run(["data", "run", str(config_file), "--out", run])
    assert code == 0, log
    assert log.count("finished earlier, skipped") == len(STAGES)
    assert manifest(run)["stages"] == before["stages"]
    assert {k: v for k, v in objects(run).items() if k.endswith(".parquet")} == shards  # not rewritten


def test_a_run_killed_mid_stage_resumes_with_no_debris(
    commands, s3_endpoint, config_file, local_run, new_s3_bucket, monkeypatch
):
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    run = new_s3_bucket() + "/run"
    args = ["data", "run", str(config_file), "--out", run]
    # SIGKILL just before the 4th manifest PUT, the one that commits 02-clean: its shards are all
    # written under their attempt prefix, nothing lists them.
    code, log = commands.run(args, kill_at=["put", "manifest.json", "4"])
    assert code == -signal.SIGKILL, log
    assert list(manifest(run)["stages"]) == ["01-ingest"]
    left = [k for k in objects(run) if k.split("/")[1] == "02-clean"]
    assert left and all(k.split("/")[2].startswith(ATTEMPT_PREFIX) for k in left), left
    # A stray attempt of a finished stage too (a zombie task of the killed job finishing its write).
    storage.put_object(f"{run}/01-ingest/{ATTEMPT_PREFIX}zombie/part-00000-0000.parquet", b"stale")

    code, log = commands.run(args)
    assert code == 0, log
    assert log.count("no manifest entry lists it") == 2
    assert log.count("finished earlier, skipped") == 1  # 01-ingest was committed before the kill
    assert_equals_local(run, local_run)
    assert debris(run) == []
    assert committed(run) <= set(objects(run))


def test_sft_trains_on_the_s3_run_and_exports_a_model_that_loads(
    commands, s3_endpoint, s3_run, tiny_model_dir, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM

    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    run, _ = s3_run
    out = tmp_path / "sft"
    settings = [
        f"model.path={tiny_model_dir}", f"data.path={run}", "data.max_length=128", "data.eval_fraction=0",
        "scaling.num_workers=1", "scaling.max_failures=0", "train.max_steps=3", "train.micro_batch_size=2",
    ]  # fmt: skip
    config = str(REPO / "configs" / "train" / "tiny_sft_cpu.yaml")
    code, log = commands.run(["train", "sft", config, "--out", str(out), *(f"--set={s}" for s in settings)])
    commands.outputs.append(out)
    assert code == 0, log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3
    stats = json.loads((out / "data_stats.json").read_text())
    final = manifest(run)["stages"][STAGES[-1]]
    assert stats["source"]["run"] == run and stats["source"]["stage"] == STAGES[-1]
    assert stats["source"]["rows"] == final["rows_out"]
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.num_parameters() > 0


def test_no_secret_in_any_log_output_or_manifest(commands, s3_run, local_run, s3_endpoint, monkeypatch):
    """Runs last (file order): every command above ran with the secret in its environment."""
    secret = s3_endpoint["AWS_SECRET_ACCESS_KEY"].encode()
    run, _ = s3_run
    searched = [
        *commands.logs.glob("*.log"),
        *Path(commands.env["RAY_TMPDIR"]).rglob("*"),
        *local_run.rglob("*"),
        *(p for out in commands.outputs for p in out.rglob("*")),
    ]
    files = [p for p in searched if p.is_file() and not p.is_symlink()]
    assert commands.count >= 5 and len(files) > 20
    leaked = [str(p) for p in files if secret in p.read_bytes()]
    assert leaked == []
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    bucket = run.split("/")[2]
    keys = list(objects(run))
    assert f"{run.split('/', 3)[3]}/manifest.json" in keys
    assert [k for k in keys if secret in storage.read_bytes(f"s3://{bucket}/{k}")] == []
