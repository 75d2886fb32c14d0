"""aloe as users run it on a cluster: `infra/local-cluster.sh` starts a head and two worker nodes (separate
`ray start` process groups), `infra/submit.sh` submits commands as Ray jobs (`--working-dir` + `uv run`).

* the data pipeline on the embedded corpus, submitted as a job, equals a local run: the same ids, rows and
  drop counts per stage;
* SFT with 2 Ray Train workers, submitted as a job, completes and exports a model that loads;
* DPO (two stages) submitted as a job exports both stage models, the second started from the first;
* `aloe eval run` submitted as a job, its model passes in Ray Data actors on the cluster, gives exactly the
  predictions of an in-process run;
* a worker node SIGKILLed mid-job (every process of it): the job completes with exact accounting, or fails
  with a clear message and completes on resubmission with the same output (runs last: the cluster is
  one node short afterwards).

One cluster for the module; it is stopped (only its own processes) even when a test fails.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from local_cluster import LocalCluster
from transformers import AutoModelForCausalLM, AutoTokenizer

from aloe_core.atomic import is_debris
from aloe_core.config import validate_config
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.runner import run_pipeline
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline

pytestmark = pytest.mark.slow  # a 3-node cluster and six jobs: CI's second step

STAGES = ["01-ingest", "02-clean", "03-exact-dedup", "04-fuzzy-dedup", "05-decontaminate"]
SFT_STEPS = 4


@pytest.fixture(scope="module")
def cluster():
    cluster = LocalCluster(workers=2, worker_cpus=1)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory) -> Path:
    """The sft pipeline (every stage) over a 1,000-row embedded corpus, with small shards (several files
    per stage, so the stages run as several tasks spread over both worker nodes)."""
    directory = tmp_path_factory.mktemp("cluster-data")
    write_sample(directory / "sample", rows=1000, seed=3)
    raw = sample_pipeline(directory / "sample", "sft") | {"output": {"shard_rows": 250}, "report": False}
    path = directory / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def local_run(ray_session, pipeline_file, tmp_path_factory) -> Path:
    """The same pipeline run here, on the embedded local Ray: the oracle for every cluster run."""
    out = tmp_path_factory.mktemp("local") / "run"
    config = validate_config(PipelineConfig, yaml.safe_load(pipeline_file.read_text()))
    run_pipeline(config, out)
    return out


@pytest.fixture(scope="module")
def cluster_run(cluster, pipeline_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cluster") / "run"
    done = cluster.submit("aloe", "data", "run", str(pipeline_file), "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def accounting(out: Path) -> dict[str, dict]:
    """Per stage: the manifest's counts, the sorted kept ids and the (id, reason) pairs it dropped."""
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    result = {}
    for name, entry in stages.items():
        kept = [
            i for f in sorted(entry["files"]) for i in pq.read_table(out / name / f, columns=["id"])["id"]
        ]
        dropped = [
            (row["id"], row["drop_reason"])
            for f in sorted(entry["dropped_files"])
            for row in pq.read_table(out / name / f, columns=["id", "drop_reason"]).to_pylist()
        ]
        assert len(kept) == entry["rows_out"] and len(set(kept)) == len(kept), f"{name}: kept ids"
        assert Counter(r for _, r in dropped) == Counter(entry["dropped"]), f"{name}: dropped rows"
        assert entry["rows_in"] == entry["rows_out"] + sum(entry["dropped"].values()), name
        assert sorted(p.name for p in (out / name).glob("*.parquet")) == sorted(entry["files"]), name
        result[name] = {
            "rows_in": entry["rows_in"],
            "rows_out": entry["rows_out"],
            "dropped": entry["dropped"],
            "kept_ids": sorted(str(i) for i in kept),
            "dropped_ids": sorted((str(i), r) for i, r in dropped),
        }
    return result


def assert_same_output(run: Path, reference: Path) -> None:
    assert list(accounting(run)) == STAGES
    assert accounting(run) == accounting(reference)
    assert [p.name for p in run.parent.rglob("*") if is_debris(p.name)] == []


def test_data_pipeline_job_equals_a_local_run(cluster_run, local_run):
    assert_same_output(cluster_run, local_run)
    kept = accounting(local_run)["05-decontaminate"]["rows_out"]
    assert 0 < kept < accounting(local_run)["01-ingest"]["rows_in"]  # every stage had work to do


def test_sft_job_with_two_workers_exports_a_model_that_loads(cluster, cluster_run, tiny_model_dir, tmp_path):
    config = {
        "model": {"path": str(tiny_model_dir)},
        "output_dir": str(tmp_path / "sft"),
        "data": {"path": str(cluster_run), "max_length": 256, "eval_fraction": 0.1},
        "optim": {"lr": 1e-2, "warmup_ratio": 0.1},
        "train": {"micro_batch_size": 2, "max_steps": SFT_STEPS},  # eval + checkpoint at the end
        "scaling": {"num_workers": 2, "cpus_per_worker": 1, "use_gpu": False},
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(config))
    done = cluster.submit("aloe", "train", "sft", str(path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "sft" / "summary.json").read_text())
    assert summary["steps"] == SFT_STEPS
    export = Path(summary["model"])
    model = AutoModelForCausalLM.from_pretrained(export)
    tokenizer = AutoTokenizer.from_pretrained(export)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the antidote for heparin?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


def test_two_stage_dpo_job_exports_both_stages(cluster, ray_session, tiny_model_dir, tmp_path):
    write_sample(tmp_path / "sample", rows=700, seed=2)
    raw = sample_pipeline(tmp_path / "sample", "preference", stages=[])
    preference = validate_config(PipelineConfig, raw)
    run_pipeline(preference, tmp_path / "preference")
    data = {"path": str(tmp_path / "preference"), "max_length": 256, "max_prompt_length": 128}
    stages = [
        {"name": name, "data": data | {"where": {"category": categories}}, "optim": {"lr": 5e-3},
         "train": {"micro_batch_size": 2, "max_steps": 2}}
        for name, categories in (("general", ["factual", "unhelpful"]), ("safety", ["safety_refusal"]))
    ]  # fmt: skip
    config = {
        "model": {"path": str(tiny_model_dir)},
        "output_dir": str(tmp_path / "dpo"),
        "stages": stages,
        "scaling": {"num_workers": 2, "cpus_per_worker": 1, "use_gpu": False},
    }
    path = tmp_path / "dpo.yaml"
    path.write_text(yaml.safe_dump(config))
    done = cluster.submit("aloe", "train", "dpo", str(path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "dpo" / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == ["general", "safety"]
    assert [s["steps"] for s in summary["stages"]] == [2, 2]
    facts = json.loads((tmp_path / "dpo" / "safety" / "model" / "aloe_card.json").read_text())
    assert facts["base_model"] == str(tmp_path / "dpo" / "general" / "model")
    AutoModelForCausalLM.from_pretrained(summary["model"])


def test_eval_job_with_actors_on_the_cluster_equals_an_in_process_run(cluster, tiny_model_dir, tmp_path):
    from aloe_infer.eval.config import EvalConfig
    from aloe_infer.eval.run import run_eval

    write_sample(tmp_path / "sample", rows=600, seed=4)
    config = {
        "engine": {"type": "hf", "model": str(tiny_model_dir), "dtype": "float32"},
        "benchmarks": str(tmp_path / "sample" / "benchmarks"),
        "strategy": "zero-shot",
        # One whole-CPU actor: two half-CPU actors, one per 1-CPU worker node, would leave no node a whole
        # CPU for Ray Data's 1-CPU tasks that feed them (the pass then waits forever).
        "actors": {"mode": "ray", "batch_size": 4, "concurrency": 1, "cpus_per_actor": 1},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    done = cluster.submit("aloe", "eval", "run", str(path), "--out", str(tmp_path / "job"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    local = EvalConfig.model_validate(config | {"actors": {"mode": "local", "batch_size": 4}})
    expected = run_eval(local, tmp_path / "local")
    got = json.loads((tmp_path / "job" / "results.json").read_text())
    assert got["benchmarks"]["aloebench"]["n"] == expected["benchmarks"]["aloebench"]["n"] > 10
    assert got["benchmarks"]["aloebench"]["correct"] == expected["benchmarks"]["aloebench"]["correct"]

    def answers(run: Path) -> dict[str, str]:
        rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        return {r["id"]: r["prediction"] for r in rows}

    assert answers(tmp_path / "job") == answers(tmp_path / "local")


def test_a_worker_node_killed_mid_job_loses_nothing(cluster, pipeline_file, local_run, tmp_path):
    out = tmp_path / "run"
    args = ("aloe", "data", "run", str(pipeline_file), "--out", str(out))
    submitted = cluster.submit(*args, options="--no-wait --submission-id node-loss")
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    deadline = time.monotonic() + 300
    # Kill once the first stage is recorded: the second one is then running on both worker nodes.
    while not (out / "manifest.json").is_file():
        assert cluster.job("node-loss")["status"] in {"PENDING", "RUNNING"}, cluster.job("node-loss")
        assert time.monotonic() < deadline, "the job never finished its first stage"
        time.sleep(0.5)
    cluster.kill_node("worker2")
    finished = list(json.loads((out / "manifest.json").read_text())["stages"])
    assert len(finished) < len(STAGES), f"the job was past its last stage when the node died: {finished}"
    record = cluster.wait("node-loss")
    if record["status"] != "SUCCEEDED":
        # Allowed: a clear failure, then a resubmission that resumes from the run's manifest.
        assert record["status"] == "FAILED" and record["message"], record
        done = cluster.submit(*args)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"node loss: first submission {record['status']}")
    assert_same_output(out, local_run)
