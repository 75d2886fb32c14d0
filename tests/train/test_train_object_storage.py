"""`aloe train sft|dpo` with ``output_dir`` (and a model) on S3: moto's server on 127.0.0.1, a real
endpoint over real HTTP, no AWS.

Every command runs as a user runs it: ``aloe ...`` in a subprocess whose environment holds the endpoint
and fake keys, with its own local Ray (workers take their credentials from their environment, as on a
cluster). The SFT run on the bucket is compared with the same run into a local folder: same steps, same
losses, bit-identical exported weights. Its rerun resumes from the checkpoint on the bucket and trains
no step; ``resume_from`` its step-2 checkpoint on the bucket continues it to the same weights. DPO then
starts from the SFT model on the bucket (``model.path: s3://...``), writes both stages there (the second
starting from the first's export on the bucket), and a rerun skips both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from aloe_core import storage
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline
from aloe_train.metrics import read_metrics

pytestmark = pytest.mark.slow  # eight commands, each with its own local Ray: CI's second step

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "train"
SFT_STEPS = 3
# A tiny run: 3 steps on 2 workers, a checkpoint at step 2 and the final one (2 kept), no eval.
SFT_SETTINGS = [
    "data.max_length=128", "data.eval_fraction=0", "scaling.num_workers=2", "scaling.max_failures=0",
    f"train.max_steps={SFT_STEPS}", "train.micro_batch_size=2", "train.save_every=2", "train.eval_every=null",
    "export.dtype=float32",
]  # fmt: skip
# Each DPO stage: 2 steps, no eval.
DPO_SETTINGS = [
    f"stages.{stage}.{key}"
    for stage in ("general", "safety")
    for key in (
        "train.max_steps=2",
        "train.micro_batch_size=2",
        "data.eval_fraction=0",
        "train.eval_every=null",
    )
] + ["scaling.max_failures=0", "reference.batch_size=4", "export.dtype=float32"]
VOLATILE = ("tokens_per_s", "step_time_s", "time")  # metrics that measure the machine, not the run


class Commands:
    """Runs ``aloe`` subprocesses with the S3 environment; keeps every log."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.count = env, logs, 0

    def run(self, *args: str) -> str:
        self.count += 1
        log = self.logs / f"{self.count:02d}-{args[0]}-{args[1]}.log"
        with log.open("w") as handle:
            code = subprocess.run(
                [sys.executable, "-m", "aloe_core.cli", *args], env=self.env, stdout=handle,
                stderr=subprocess.STDOUT, cwd=REPO, timeout=900, check=False,
            ).returncode  # fmt: skip
        text = log.read_text()
        assert code == 0, text[-6000:]
        return text


@pytest.fixture(scope="module")
def commands(s3_endpoint, tmp_path_factory) -> Commands:
    # A short Ray temp folder: Ray's socket paths must stay under the 107-byte limit of AF_UNIX.
    ray_tmp = tempfile.mkdtemp(prefix="aloe-s3t-", dir="/tmp")
    cache = tmp_path_factory.mktemp("cache")  # local copies of models on the bucket (ALOE_CACHE_DIR)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | s3_endpoint
    return Commands(
        env | {"RAY_TMPDIR": ray_tmp, "ALOE_CACHE_DIR": str(cache)}, tmp_path_factory.mktemp("logs")
    )


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> None:
    """This process pointed at the endpoint too (to read what the commands wrote)."""
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def data_runs(commands, tmp_path_factory) -> dict[str, Path]:
    """The embedded corpus as an sft and a preference pipeline run (ingest only), local."""
    root = tmp_path_factory.mktemp("train-s3-data")
    write_sample(root / "sample", rows=300, seed=4)
    runs = {}
    for kind in ("sft", "preference"):
        config = root / f"{kind}.yaml"
        config.write_text(yaml.safe_dump(sample_pipeline(root / "sample", kind, stages=[])))
        commands.run("data", "run", str(config), "--out", str(root / kind))
        runs[kind] = root / kind
    return runs


def sft(commands: Commands, model: Path, data: Path, out: str) -> str:
    settings = [f"model.path={model}", f"data.path={data}", *SFT_SETTINGS]
    return commands.run("train", "sft", str(CONFIGS / "tiny_sft_cpu.yaml"), "--out", out,
                        *(f"--set={s}" for s in settings))  # fmt: skip


@pytest.fixture(scope="module")
def sft_local(commands, tiny_model_dir, data_runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sft-local") / "run"
    sft(commands, tiny_model_dir, data_runs["sft"], str(out))
    return out


@pytest.fixture(scope="module")
def sft_s3(commands, tiny_model_dir, data_runs, new_s3_bucket) -> str:
    out = new_s3_bucket() + "/runs/sft"
    sft(commands, tiny_model_dir, data_runs["sft"], out)
    return out


def objects(root: str) -> dict[str, tuple[int, int]]:
    """Every object under ``root``: relative key -> (size, modification time in ns)."""
    _, inner = storage.resolve(root)
    return {i.path.removeprefix(inner + "/"): (i.size, i.mtime_ns) for i in storage.list_tree(root)}


def train_records(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_metrics(path) if "loss" in r]


def test_sft_on_s3_writes_every_file_and_the_local_runs_weights(s3_env, sft_s3, sft_local, tmp_path):
    keys = objects(sft_s3)
    for name in ("config.yaml", "data_stats.json", "metrics.jsonl", "loss_curve.png", "summary.json",
                 "model/config.json", "model/model.safetensors", "model/tokenizer.json", "model/README.md",
                 "checkpoints/checkpoint-000003/trainer_state.json",
                 "checkpoints/checkpoint-000003/worker-00001.json"):  # fmt: skip
        assert name in keys, sorted(keys)
    assert {k.split("/")[1] for k in keys if k.startswith("checkpoints/checkpoint-")} == {
        "checkpoint-000002",
        "checkpoint-000003",
    }
    summary = json.loads(storage.read_text(sft_s3 + "/summary.json"))
    local = json.loads((sft_local / "summary.json").read_text())
    assert summary["steps"] == local["steps"] == SFT_STEPS
    assert summary["model"] == sft_s3 + "/model"
    assert summary["checkpoint"] == sft_s3 + "/checkpoints/checkpoint-000003"
    assert summary["loss_curve"] == sft_s3 + "/loss_curve.png"
    assert (summary["first_loss"], summary["final_loss"]) == (local["first_loss"], local["final_loss"])
    storage.download_file(sft_s3 + "/metrics.jsonl", tmp_path / "metrics.jsonl")
    assert train_records(tmp_path / "metrics.jsonl") == train_records(sft_local / "metrics.jsonl")
    assert json.loads(storage.read_text(sft_s3 + "/data_stats.json")) == json.loads(
        (sft_local / "data_stats.json").read_text()
    )

    storage.download_folder(sft_s3 + "/model", tmp_path / "model")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert model.config.architectures == ["LlamaForCausalLM"]
    remote = load_file(tmp_path / "model" / "model.safetensors")
    here = load_file(sft_local / "model" / "model.safetensors")
    assert remote.keys() == here.keys() and all(torch.equal(remote[k], here[k]) for k in here)
    assert not (REPO / "s3:").exists()  # nothing took the URI for a local path


def test_a_rerun_on_s3_resumes_its_last_checkpoint_and_trains_no_step(
    s3_env, commands, sft_s3, tiny_model_dir, data_runs, tmp_path
):
    before, first = objects(sft_s3), json.loads(storage.read_text(sft_s3 + "/summary.json"))
    log = sft(commands, tiny_model_dir, data_runs["sft"], sft_s3)
    after = objects(sft_s3)
    summary = json.loads(storage.read_text(sft_s3 + "/summary.json"))
    assert summary["steps"] == SFT_STEPS and f"sft: {SFT_STEPS} steps" in log
    assert "resumed from" in log and f"at step {SFT_STEPS}" in log
    same = [k for k in first if k != "tokens_per_s"]  # no step timed this time
    assert {k: summary[k] for k in same} == {k: first[k] for k in same}
    checkpoints = {k: v for k, v in before.items() if k.startswith("checkpoints/checkpoint-")}
    assert {k: after[k] for k in checkpoints} == checkpoints  # no checkpoint written again
    assert not any(k.startswith("checkpoints/checkpoint-") and k not in before for k in after)
    storage.download_file(sft_s3 + "/metrics.jsonl", tmp_path / "metrics.jsonl")
    assert [r["step"] for r in train_records(tmp_path / "metrics.jsonl")] == list(range(1, SFT_STEPS + 1))


def test_resume_from_a_checkpoint_on_s3_continues_it_to_the_same_weights(
    s3_env, commands, sft_s3, tiny_model_dir, data_runs, new_s3_bucket, tmp_path
):
    """``resume_from`` the bucket run's step-2 checkpoint, into another bucket: only step 3 is trained,
    with the same loss, and the export equals the uninterrupted run's bit for bit."""
    out = new_s3_bucket() + "/runs/sft-resumed"
    settings = [
        f"model.path={tiny_model_dir}", f"data.path={data_runs['sft']}", *SFT_SETTINGS,
        f"resume_from={sft_s3}/checkpoints/checkpoint-000002",
    ]  # fmt: skip
    commands.run("train", "sft", str(CONFIGS / "tiny_sft_cpu.yaml"), "--out", out,
                 *(f"--set={s}" for s in settings))  # fmt: skip
    for run, name in ((out, "resumed"), (sft_s3, "reference")):
        storage.download_file(run + "/metrics.jsonl", tmp_path / name / "metrics.jsonl")
        storage.download_file(run + "/model/model.safetensors", tmp_path / name / "model.safetensors")
    resumed, reference = (train_records(tmp_path / n / "metrics.jsonl") for n in ("resumed", "reference"))
    assert resumed == [r for r in reference if r["step"] == SFT_STEPS]
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("resumed", "reference"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def dpo_out(new_s3_bucket) -> str:
    return new_s3_bucket() + "/runs/dpo"


def test_dpo_from_a_model_on_s3_into_s3_runs_both_stages_and_a_rerun_skips_them(
    s3_env, commands, sft_s3, data_runs, dpo_out, tmp_path
):
    out = dpo_out
    settings = [f"model.path={sft_s3}/model", *DPO_SETTINGS] + [
        f"stages.{stage}.data.path={data_runs['preference']}" for stage in ("general", "safety")
    ]
    args = [
        "train",
        "dpo",
        str(CONFIGS / "tiny_dpo_cpu.yaml"),
        "--out",
        out,
        *(f"--set={s}" for s in settings),
    ]
    commands.run(*args)
    summary = json.loads(storage.read_text(out + "/summary.json"))
    assert [s["stage"] for s in summary["stages"]] == ["general", "safety"]
    assert [s["model"] for s in summary["stages"]] == [f"{out}/general/model", f"{out}/safety/model"]
    assert summary["model"] == f"{out}/safety/model" and all(s["steps"] == 2 for s in summary["stages"])
    # Stage 2 started from stage 1's export on the bucket, stage 1 from the SFT export on the other one.
    general = yaml.safe_load(storage.read_text(out + "/general/config.yaml"))
    safety = yaml.safe_load(storage.read_text(out + "/safety/config.yaml"))
    assert general["model"]["path"] == f"{sft_s3}/model"
    assert safety["model"]["path"] == f"{out}/general/model"
    assert f"base_model: {out}/general/model" in storage.read_text(out + "/safety/model/README.md")
    storage.download_folder(out + "/safety/model", tmp_path / "safety")
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "safety").num_parameters() > 0

    before = objects(out)
    log = commands.run(*args)
    assert log.count("finished earlier: skipped") == 2
    rewritten = ("config.yaml", "summary.json")  # the command's own files, written on every run
    after = objects(out)
    assert {k: v for k, v in after.items() if k not in rewritten} == {
        k: v for k, v in before.items() if k not in rewritten
    }


def test_no_secret_in_any_log_or_object(s3_env, s3_endpoint, commands, sft_s3, dpo_out):
    """Runs last (file order): every command above ran with the secret in its environment, and pickled
    filesystems went to Ray's controller and workers."""
    secret = s3_endpoint["AWS_SECRET_ACCESS_KEY"].encode()
    searched = [*commands.logs.glob("*.log"), *Path(commands.env["RAY_TMPDIR"]).rglob("*")]
    files = [p for p in searched if p.is_file() and not p.is_symlink()]
    assert commands.count >= 8 and len(files) > 20
    assert [str(p) for p in files if secret in p.read_bytes()] == []
    keys = [f"{root}/{key}" for root in (sft_s3, dpo_out) for key in objects(root)]
    assert len(keys) > 40 and [k for k in keys if secret in storage.read_bytes(k)] == []
