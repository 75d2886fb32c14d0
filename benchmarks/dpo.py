"""DPO pairs/s: aloe (Ray Train + FSDP2, precomputed reference log-probs) vs TRL's DPOTrainer, on CPU;
then peak RSS of merging three models vs their size (``benchmarks/merge.py``).

    uv run python benchmarks/dpo.py --rows 3000 --steps 20 --workers 2

Same tiny model, same preference pairs (the embedded corpus through the pipeline's ingest stage), same
max_length, per-process batch, process count, optimizer steps and loss (sigmoid DPO, beta 0.1). Both
precompute the reference log-probs before training (TRL: ``precompute_ref_log_probs=True``), so the
timed loop is the policy's forward/backward and optimizer step in both. TRL runs under torchrun (DDP
over gloo, one thread per process, as Ray gives each 1-CPU worker).

pairs/s: pairs trained per second of wall clock from the end of step 1 to the end of the last step
(step 1 pays for startup in both); aloe's from metrics.jsonl timestamps, TRL's from a step callback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_PROMPT = 128


def prepare(work: Path, rows: int) -> tuple[Path, Path]:
    """The tiny model and a preference pipeline run (ingest stage) of the embedded corpus."""
    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_fixtures.corpus import write_sample
    from aloe_fixtures.demo import sample_pipeline
    from aloe_fixtures.tiny_model import build_tiny_model

    model = build_tiny_model(work / "model")
    write_sample(work / "sample", rows=rows, seed=0)
    config = sample_pipeline(work / "sample", "preference", stages=[])
    run_pipeline(validate_config(PipelineConfig, config), work / "run")
    return model, work / "run"


def run_aloe(model: Path, data: Path, out: Path, args: argparse.Namespace) -> dict:
    from aloe_core.config import validate_config
    from aloe_train.dpo.config import DPOConfig
    from aloe_train.dpo.recipe import run_dpo
    from aloe_train.metrics import read_metrics

    stage = {
        "name": "bench",
        "data": {"path": str(data), "max_length": args.max_length, "max_prompt_length": MAX_PROMPT},
        "loss": {"type": "sigmoid", "beta": 0.1},
        "optim": {"lr": 1e-3},
        "train": {"micro_batch_size": args.batch_size, "max_steps": args.steps, "epochs": 50},
    }
    config = validate_config(
        DPOConfig,
        {
            "model": {"path": str(model)},
            "output_dir": str(out),
            "stages": [stage],
            "scaling": {"num_workers": args.workers, "max_failures": 0},
            "export": {"enabled": True},
        },
    )
    run_dpo(config)
    records = [r for r in read_metrics(out / "bench" / "metrics.jsonl") if "loss" in r]
    stats = json.loads((out / "bench" / "data_stats.json").read_text())
    return {
        "steps": len(records),
        "pairs_per_s": sum(r["rows"] for r in records[1:]) / (records[-1]["time"] - records[0]["time"]),
        "pairs": stats["train_pairs"]["pairs"],
        "final_loss": records[-1]["loss"],
        "final_accuracy": records[-1]["rewards/accuracies"],
    }


def trl_child(model: str, data: str, out: str, max_length: int, batch: int, steps: int) -> None:
    """One torchrun process of the TRL run; rank 0 writes the result JSON to ``out``."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append(time.time())

    # File-backed (saved by the parent): TRL caches the precomputed reference log-probs next to the
    # dataset files, and every rank must find rank 0's cache; an in-memory dataset caches per process.
    dataset = load_from_disk(data)
    config = DPOConfig(
        output_dir=out + ".trl",
        max_length=max_length,
        loss_type=["sigmoid"],
        beta=0.1,
        precompute_ref_log_probs=True,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=1e-3,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=steps,
        dataloader_num_workers=0,
        seed=0,
    )
    clock = Clock()
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32, attn_implementation="sdpa"),
        args=config,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(model),
        callbacks=[clock],
    )
    result = trainer.train()
    if trainer.accelerator.is_main_process:
        world = trainer.accelerator.num_processes
        summary = {
            "steps": len(clock.marks),
            "pairs_per_s": (len(clock.marks) - 1) * batch * world / (clock.marks[-1] - clock.marks[0]),
            "pairs": len(dataset),
            "final_loss": result.training_loss,
            "final_accuracy": float("nan"),
        }
        Path(out).write_text(json.dumps(summary))


def trl_dataset(data: Path, out: Path) -> Path:
    """The same pairs in TRL's conversational format, saved to disk for the torchrun children."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    files = sorted(str(p) for p in data.glob("*/*.parquet") if "_dropped" not in p.parts)
    rows = pq.read_table(files, columns=["prompt", "chosen", "rejected"]).to_pylist()
    Dataset.from_list(
        [
            {
                "prompt": r["prompt"],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in rows
        ]
    ).save_to_disk(str(out))
    return out


def run_trl(model: Path, data: Path, out: Path, args: argparse.Namespace) -> dict:
    data = trl_dataset(data, out.with_suffix(".data"))
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.workers}", __file__,
        "--trl-child", str(model), str(data), str(out), str(args.max_length), str(args.batch_size),
        str(args.steps),
    ]  # fmt: skip
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3000, help="rows of embedded corpus to generate")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per process per step")
    parser.add_argument("--skip-merge", action="store_true", help="only the DPO comparison")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (model, data, runs)")
    parser.add_argument("--trl-child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trl_child:
        model, data, out, max_length, batch, steps = args.trl_child
        trl_child(model, data, out, int(max_length), int(batch), int(steps))
        return
    import ray

    work = Path(tempfile.mkdtemp(prefix="aloe-dpo-bench-"))
    try:
        started = time.perf_counter()
        model, data = prepare(work, args.rows)
        print(f"prepared model and {args.rows}-row corpus in {time.perf_counter() - started:.0f}s ({work})")
        aloe = run_aloe(model, data, work / "aloe", args)
        ray.shutdown()  # free the CPUs for the TRL processes
        trl = run_trl(model, data, work / "trl.json", args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nDPO: {args.workers} processes, max_length {args.max_length}, "
        f"{args.batch_size} pairs per process per step, {args.steps} steps, CPU"
    )
    print(f"{'':6}{'pairs/s':>9}{'pairs':>7}{'final loss':>12}")
    for name, r in (("aloe", aloe), ("TRL", trl)):
        print(f"{name:6}{r['pairs_per_s']:>9.2f}{r['pairs']:>7}{r['final_loss']:>12.3f}")
    print(f"throughput aloe / TRL: {aloe['pairs_per_s'] / trl['pairs_per_s']:.2f}x")
    merge = Path(__file__).with_name("merge.py")
    if not args.skip_merge and merge.is_file():
        print("\nMerging (benchmarks/merge.py):", flush=True)
        subprocess.run([sys.executable, str(merge)], check=True)


if __name__ == "__main__":
    main()
