"""Eval harness throughput: zero-shot questions/s, ours vs lm-evaluation-harness, and Medprompt with and
without vLLM prefix caching.

On the same model and the same questions (the first ``--limit`` test questions of each benchmark in
``--benchmarks``, the real files in ../shared by default), in one run:

* **ours, hf**: ``aloe eval run`` zero-shot on the transformers engine (one prefill-only forward per
  question, only the last position's logits, prompts grouped by length under a token budget), in
  process (``actors.mode: local``), after a warm-up run so model loading is not timed;
* **lm-eval, HF**: ``HFLM.loglikelihood`` on the same (prompt, " X") requests, one per option letter
  (what an lm-eval multiple-choice task sends), model loaded before timing, ``--lm-eval-batch`` batch;
* **ours, vLLM** (when ``--vllm-python`` points at a Python with vLLM, e.g. ``.venv-vllm/bin/python``):
  zero-shot through ``VllmNextTokenScorer``; and Medprompt questions/s with ``enable_prefix_caching``
  on and off (few-shot prompts share long prefixes across the ensemble members of a question).

The model is the project's tiny Llama built at ``--hidden``/``--layers``/``--vocab``: bigger than the
test model, so that model work, not Python overhead, dominates, with Llama 3's vocabulary-to-width ratio
(128,256 / 4,096 = 31; 16,384 / 512 here), since what a scorer does with the output layer is part of the
cost being compared. Prints questions/s and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "medical-mcqa"


def build_model(folder: Path, hidden: int, layers: int, vocab: int) -> Path:
    from aloe_fixtures.tiny_model import TinyModelConfig, build_tiny_model

    shape = TinyModelConfig(hidden=hidden, layers=layers, heads=max(2, hidden // 64), vocab_size=vocab)
    return build_tiny_model(folder, shape)


def eval_config(model: Path, benchmarks: str, limit: int, engine: str, **fields):
    from aloe_infer.eval.config import EvalConfig

    data = {
        "engine": {"type": engine, "model": str(model), "dtype": "float32"}
        | ({"max_model_len": 2048, "gpu_memory_utilization": 0.1} if engine == "vllm" else {}),
        "benchmarks": benchmarks,
        "limit": limit,
        "actors": {"mode": "local", "batch_size": 256},
    }
    return EvalConfig.model_validate(data | fields)


def ours_zero_shot(model: Path, benchmarks: str, limit: int, work: Path, engine: str, engines=None) -> dict:
    from aloe_infer.eval.run import run_eval

    run_eval(eval_config(model, benchmarks, 1, engine), work / f"warm-{engine}", engines=engines)
    results = run_eval(eval_config(model, benchmarks, limit, engine), work / f"zs-{engine}", engines=engines)
    return {"questions": results["questions"], "seconds": results["seconds"]}


def lm_eval_zero_shot(model: Path, predictions: Path, batch: int) -> dict:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from aloe_infer.eval.results import read_predictions

    records = read_predictions(predictions)
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=(p["prompt"], f" {letter}"), idx=i)
        for p in records
        for i, letter in enumerate(p["letter_logprobs"])
    ]
    lm = HFLM(pretrained=str(model), backend="causal", device="cpu", dtype="float32", batch_size=batch)
    start = time.perf_counter()
    lm.loglikelihood(requests, disable_tqdm=True)
    return {"questions": len(records), "seconds": time.perf_counter() - start, "requests": len(requests)}


def vllm_worker(model: Path, benchmarks: str, limit: int, medprompt_limit: int, work: Path) -> None:
    """Child process in the vLLM venv: zero-shot and Medprompt (prefix caching on/off) questions/s."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    from aloe_infer.eval.run import run_eval
    from aloe_infer.scoring import VllmNextTokenScorer
    from aloe_infer.vllm_engine import VllmEngine, engine_args

    out: dict = {}
    for caching in (True, False):
        config = eval_config(model, benchmarks, limit, "vllm")
        llm = LLM(**engine_args(config.engine), enable_prefix_caching=caching)
        engine = VllmEngine(config.engine, llm=llm)
        engines = {"generate": engine, "score": VllmNextTokenScorer(llm, engine.tokenizer)}
        if caching:
            out["zero_shot"] = ours_zero_shot(model, benchmarks, limit, work, "vllm", engines)
        medprompt = eval_config(
            model,
            benchmarks,
            medprompt_limit,
            "vllm",
            strategy="medprompt",
            generation={"max_tokens": 32, "retry": {"retries": 0}},
            medprompt={"k": 5, "ensemble": 5, "pool_limit": 20, "embedding_pool": {"mode": "local"}},
        )
        results = run_eval(medprompt, work / f"mp-{caching}", engines=engines)
        out[f"medprompt_prefix_caching_{'on' if caching else 'off'}"] = {
            "questions": results["questions"],
            "seconds": results["seconds"],
        }
        llm.llm_engine.engine_core.shutdown()
    print(json.dumps(out))


def rate(entry: dict) -> float:
    return entry["questions"] / entry["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmarks", default=str(SHARED), help="folder of <name>_<split>.json files")
    parser.add_argument("--limit", type=int, default=40, help="questions per benchmark (per MMLU subject)")
    parser.add_argument("--medprompt-limit", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=16384)
    parser.add_argument("--lm-eval-batch", type=int, default=32)
    parser.add_argument("--vllm-python", help="a Python with vLLM (e.g. .venv-vllm/bin/python)")
    parser.add_argument("--vllm-worker", nargs=2, metavar=("MODEL", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vllm_worker:
        vllm_worker(
            Path(args.vllm_worker[0]),
            args.benchmarks,
            args.limit,
            args.medprompt_limit,
            Path(args.vllm_worker[1]),
        )
        return
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="aloe-bench-eval-") as tmp:
        work = Path(tmp)
        model = build_model(work / "model", args.hidden, args.layers, args.vocab)
        ours = ours_zero_shot(model, args.benchmarks, args.limit, work, "hf")
        print(
            f"zero-shot, ours (hf engine): {ours['questions']} questions in {ours['seconds']:.2f} s: "
            f"{rate(ours):.1f} q/s",
            flush=True,
        )
        theirs = lm_eval_zero_shot(model, work / "zs-hf" / "predictions.jsonl", args.lm_eval_batch)
        print(
            f"zero-shot, lm-eval HFLM (batch {args.lm_eval_batch}): {theirs['requests']} requests in "
            f"{theirs['seconds']:.2f} s: {rate(theirs):.1f} q/s",
            flush=True,
        )
        print(f"ours (hf) / lm-eval: {rate(ours) / rate(theirs):.2f}x")
        if args.vllm_python:
            cmd = [args.vllm_python, __file__, "--vllm-worker", str(model), str(work),
                   "--benchmarks", args.benchmarks,
                   "--limit", str(args.limit), "--medprompt-limit", str(args.medprompt_limit)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                raise SystemExit(f"vLLM worker failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            zs = result["zero_shot"]
            print(
                f"zero-shot, ours (vLLM engine): {rate(zs):.1f} q/s; "
                f"/ lm-eval: {rate(zs) / rate(theirs):.2f}x"
            )
            on, off = result["medprompt_prefix_caching_on"], result["medprompt_prefix_caching_off"]
            print(
                f"medprompt (vLLM, k=5, 5 members): prefix caching on {rate(on):.2f} q/s, "
                f"off {rate(off):.2f} q/s "
                f"({rate(on) / rate(off):.2f}x)"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
