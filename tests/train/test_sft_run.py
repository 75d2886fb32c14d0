"""SFT end to end: 2 CPU workers (Ray Train V2 + FSDP2/gloo) on the embedded corpus.

One data run (the corpus through the pipeline's ingest stage) and one reference training run serve
most tests; the fault-tolerance test adds a second run that kills a worker mid-way (``slow``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from aloe_core.config import validate_config
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.runner import run_pipeline
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline
from aloe_train.metrics import read_metrics
from aloe_train.sft.config import SFTConfig
from aloe_train.sft.data import IGNORE_INDEX, truncate_conversation
from aloe_train.sft.recipe import run_sft

MAX_LENGTH = 256
KILL_AFTER_STEP = 5  # checkpoints every 3 steps: the restarted run resumes from step 3


@pytest.fixture(scope="module")
def data_run(ray_session, tmp_path_factory) -> Path:
    """The embedded corpus as an sft pipeline run (ingest stage only: realistic rows, defects included)."""
    root = tmp_path_factory.mktemp("sft-data")
    write_sample(root / "sample", rows=240, seed=1)
    config = validate_config(PipelineConfig, sample_pipeline(root / "sample", "sft", stages=[]))
    run_pipeline(config, root / "run")
    return root / "run"


def sft_config(model: Path, data: Path, out: Path, **extra: Any) -> SFTConfig:
    return validate_config(
        SFTConfig,
        {
            "model": {"path": str(model)},
            "output_dir": str(out),
            "data": {"path": str(data), "max_length": MAX_LENGTH, "eval_fraction": 0.1},
            "optim": {"lr": 1e-2, "warmup_ratio": 0.1, "weight_decay": 0.01},
            "train": {
                "micro_batch_size": 2,
                "grad_accum_steps": 2,
                "eval_every": 4,
                "save_every": 3,
                "log_sample_ids": True,
            },
            "scaling": {"num_workers": 2, "max_failures": 1},
            **extra,
        },
    )


@pytest.fixture(scope="module")
def reference(tiny_model_dir, data_run, tmp_path_factory) -> tuple[SFTConfig, dict[str, Any]]:
    config = sft_config(tiny_model_dir, data_run, tmp_path_factory.mktemp("sft-reference"))
    return config, run_sft(config)


def train_records(out: str) -> list[dict[str, Any]]:
    return [r for r in read_metrics(Path(out) / "metrics.jsonl") if "loss" in r]


@pytest.mark.slow  # a two-worker SFT run (module fixture): CI's second step
def test_two_workers_loss_falls_and_the_export_generates(reference, tiny_model_dir):
    config, summary = reference
    records = train_records(config.output_dir)
    assert summary["steps"] == summary["planned_steps"] == len(records) >= 10
    losses = [r["loss"] for r in records]
    assert sum(losses[-3:]) / 3 < losses[0] - 1.0, losses
    assert summary["eval_loss"] is not None and summary["eval_loss"] < losses[0]
    export = Path(summary["model"])
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForCausalLM.from_pretrained(export)
    assert model.config.architectures == ["LlamaForCausalLM"] and model.config.use_cache
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the antidote for heparin?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    base = load_file(tiny_model_dir / "model.safetensors")
    trained = load_file(export / "model.safetensors")
    assert trained.keys() == base.keys()
    assert all(not torch.equal(trained[k], base[k]) for k in trained)
    card = (export / "README.md").read_text()
    assert str(config.data.path) in card and "base_model: " + str(tiny_model_dir) in card


@pytest.mark.slow  # a two-worker SFT run (module fixture): CI's second step
def test_the_export_card_has_the_hyperparameters_and_takes_the_eval_table(reference, shared_mcqa, tmp_path):
    from aloe_infer.engine import EngineConfig
    from aloe_infer.eval.config import EvalConfig
    from aloe_infer.eval.run import run_eval
    from aloe_train.cards import write_model_card

    _, summary = reference
    export = Path(summary["model"])
    card = (export / "README.md").read_text()
    for row in ("| learning rate | `0.01` |", "| weight decay | `0.01` |", "| global batch (rows) | `8` |",
                "| max length (tokens) | `256` |", "| workers | `2` |", "| epochs | `1` |"):  # fmt: skip
        assert row in card, row
    assert "## Bias, risks and limitations" in card and "Not evaluated yet." in card
    config = EvalConfig.model_validate({"engine": EngineConfig(model=str(export), dtype="float32"),
                                        "benchmarks": str(shared_mcqa), "names": ["medqa", "pubmedqa"],
                                        "limit": 4, "actors": {"mode": "local"}})  # fmt: skip
    results = run_eval(config, tmp_path / "eval")
    write_model_card(export, kind="sft", eval_results=[tmp_path / "eval" / "results.json"])
    card = (export / "README.md").read_text()
    for name in ("medqa", "pubmedqa"):
        score = results["benchmarks"][name]
        low, high = score["ci95"]
        assert f"| `{name}` | {score['accuracy']:.3f} [{low:.3f}, {high:.3f}] (n=4) |" in card
    assert f"| **multimedqa** | {results['aggregates']['multimedqa']['accuracy']:.3f} |" in card
    assert "Not evaluated yet." not in card and "| learning rate | `0.01` |" in card


@pytest.mark.slow  # a two-worker SFT run (module fixture): CI's second step
def test_the_export_equals_the_final_sharded_checkpoint(reference, tmp_path):
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    _, summary = reference
    dcp_to_torch_save(summary["checkpoint"], tmp_path / "full.pt")
    state = torch.load(tmp_path / "full.pt", weights_only=False)["model"]
    exported = load_file(Path(summary["model"]) / "model.safetensors")
    assert exported.keys() == state.keys()
    assert all(torch.equal(exported[k], state[k]) for k in exported)


@pytest.mark.slow  # a two-worker SFT run (module fixture): CI's second step
def test_every_train_sample_is_trained_exactly_once(reference):
    """Every kept train sample is trained once per epoch: nothing lost at the end of a shard or in the
    padding, nothing doubled (shards of different lengths are covered by test_sft_batching.py)."""
    config, _ = reference
    stats = json.loads((Path(config.output_dir) / "data_stats.json").read_text())
    plan, records = stats["plan"], train_records(config.output_dir)
    ids = [i for r in records for row in r["sample_ids"] for i in row]
    kept = sum(stats["rows"]["train"].get(k, 0) for k in ("ok", "truncated_turns", "truncated_prompt"))
    assert len(ids) == len(set(ids)) == kept
    assert sum(r["trained_tokens"] for r in records) == stats["train_packing"]["trained_tokens"]
    assert sum(r["rows"] for r in records) == plan["rows"] + plan["padding_rows"]
    assert sum(r["tokens"] for r in records) == stats["train_packing"]["tokens"]
    truncated = stats["rows"]["train"].get("truncated_prompt", 0) + stats["rows"]["train"].get(
        "truncated_turns", 0
    )
    assert truncated > 0  # the corpus's over-long rows were truncated, not dropped


def oracle_losses(model, tokenizer, rows: list[list[dict]]) -> tuple[float, float, int]:
    """(packed loss sum, unpacked loss sum, trained tokens) of packed rows given as lists of conversations.

    Packed: one plain transformers forward per row with position ids restarting per sample. Unpacked:
    one forward per sample. Masking: next-token targets inside the template's assistant mask.
    """
    packed_sum = unpacked_sum = 0.0
    count = 0
    for conversations in rows:
        ids, labels, positions = [], [], []
        for messages in conversations:
            enc = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
            tokens, mask, _ = truncate_conversation(
                enc["input_ids"], enc["assistant_masks"], MAX_LENGTH, tokenizer.bos_token_id
            )
            target = [t if m else IGNORE_INDEX for t, m in zip(tokens[1:], mask[1:], strict=True)] + [
                IGNORE_INDEX
            ]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0]
            unpacked_sum += float(
                torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction="sum")
            )
            count += sum(t != IGNORE_INDEX for t in target)
            ids, labels, positions = ids + tokens, labels + target, positions + list(range(len(tokens)))
        with torch.no_grad():
            logits = model(
                input_ids=torch.tensor([ids]), position_ids=torch.tensor([positions]), use_cache=False
            ).logits[0]
        packed_sum += float(torch.nn.functional.cross_entropy(logits, torch.tensor(labels), reduction="sum"))
    return packed_sum, unpacked_sum, count


@pytest.mark.slow  # a two-worker SFT run (module fixture): CI's second step
def test_first_step_loss_equals_a_plain_transformers_forward(reference, tiny_model_dir, data_run):
    """Step 1's loss (FSDP, 2 ranks, 2 micro-batches each, global token normalisation) equals the loss of a
    single-process transformers forward over the same packed rows: |diff| <= 1e-5 in fp32."""
    config, _ = reference
    first = train_records(config.output_dir)[0]
    by_id = {
        r["id"]: r["messages"]
        for f in sorted((data_run / "01-ingest").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    }
    rows = [[by_id[i] for i in packed_row] for packed_row in first["sample_ids"]]
    model = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa"
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    packed_sum, unpacked_sum, count = oracle_losses(model.eval(), tokenizer, rows)
    assert count == first["trained_tokens"]
    assert first["loss"] == pytest.approx(packed_sum / count, abs=1e-5)
    assert first["loss"] == pytest.approx(unpacked_sum / count, abs=1e-5)


@pytest.mark.slow
def test_a_killed_worker_resumes_to_the_same_weights(reference, tiny_model_dir, data_run, tmp_path_factory):
    """SIGKILL rank 1 after step 5; Ray Train restarts the group from checkpoint 3; the final weights equal
    the uninterrupted run's within 1e-6 (they are in fact bit-identical on CPU)."""
    config, summary = reference
    out = tmp_path_factory.mktemp("sft-killed")
    killed = sft_config(tiny_model_dir, data_run, out, fault_injection={"step": KILL_AFTER_STEP, "rank": 1})
    resumed = run_sft(killed)
    assert (out / f".fault-injected-step-{KILL_AFTER_STEP}").is_file()  # the kill really happened
    records = train_records(str(out))
    assert [r["step"] for r in records] == list(range(1, summary["steps"] + 1))
    assert [r["loss"] for r in records] == pytest.approx(
        [r["loss"] for r in train_records(config.output_dir)], rel=1e-6
    )
    a = load_file(Path(summary["model"]) / "model.safetensors")
    b = load_file(Path(resumed["model"]) / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6


@pytest.mark.slow
def test_resume_from_another_runs_checkpoint_continues_it_exactly(
    reference, tiny_model_dir, data_run, tmp_path_factory
):
    """``resume_from`` a kept checkpoint of the reference run, into a new output folder: the remaining
    steps are the reference's steps (same losses) and the final weights are the same."""
    config, summary = reference
    checkpoints = sorted((Path(config.output_dir) / "checkpoints").glob("checkpoint-*"))
    start = checkpoints[0]
    step = int(start.name.split("-")[1])
    assert 0 < step < summary["steps"]
    out = tmp_path_factory.mktemp("sft-resume-from")
    resumed = run_sft(sft_config(tiny_model_dir, data_run, out, resume_from=str(start)))
    records = train_records(str(out))
    assert [r["step"] for r in records] == list(range(step + 1, summary["steps"] + 1))
    reference_losses = {r["step"]: r["loss"] for r in train_records(config.output_dir)}
    assert [r["loss"] for r in records] == pytest.approx(
        [reference_losses[r["step"]] for r in records], rel=1e-6
    )
    a = load_file(Path(summary["model"]) / "model.safetensors")
    b = load_file(Path(resumed["model"]) / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
