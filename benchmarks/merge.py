"""Peak memory of merging three models vs the size of one: aloe vs mergekit vs loading everything.

    uv run python benchmarks/merge.py                                   # ~430 MB bf16 Llama, 3 models
    uv run python benchmarks/merge.py --mergekit-python /path/to/venv/bin/python --threads 1

Builds a random Llama in bfloat16 (default 16 layers, hidden 1024, vocab 16384: 214M parameters,
~430 MB; its embeddings are 7.8% of it, close to Llama-3-8B's 6.5%, which is what bounds a tensor-by-
tensor merge) and two seeded perturbations of it, then merges base + two models with each method in a
fresh subprocess per tool and reads the subprocess's own peak resident set size (``VmHWM``, Linux):

* aloe: ``aloe_train.merge.run_merge`` (tensor by tensor, streamed shards);
* mergekit: ``mergekit.merge.run_merge`` with default options (when a Python with mergekit is given by
  ``--mergekit-python`` / ``$ALOE_MERGEKIT_PYTHON``, or importable here); its weights are compared
  with aloe's (max abs difference);
* load-all: the three state dicts loaded with ``safetensors.torch.load_file``, merged with aloe's
  arithmetic, saved with ``save_file`` (what a short script does; dare_ties only).

Reported per run: peak RSS, the RSS after imports (the interpreter, torch, transformers: paid by any
tool), and both ratios to one model's size: ``peak / model`` and ``(peak - imports) / model``, the
memory the merge itself needs. RSS counts memory-mapped file pages a process has touched (mergekit reads
through mmap), not the page cache of files read with read(). Time is wall clock and depends on load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# VmHWM, the high-water mark of this process's own address space. (ru_maxrss would do, but Linux carries
# it over from the parent across fork + exec, and the parent held the models while building them.)
PEAK = """
import re
def peak():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024
"""

ALOE = (
    PEAK
    + """
import json, sys, time
import torch
from aloe_train.merge import load_merge_config, run_merge
base = peak(); t = time.perf_counter()
run_merge(load_merge_config(sys.argv[1]), sys.argv[2])
print(json.dumps({"imports": base, "peak": peak(), "seconds": time.perf_counter() - t}))
"""
)

MERGEKIT = (
    PEAK
    + """
import json, sys, time, yaml
import torch
from mergekit.config import MergeConfiguration
from mergekit.merge import run_merge
from mergekit.options import MergeOptions
base = peak(); t = time.perf_counter()
options = MergeOptions(random_seed=0, quiet=True, copy_tokenizer=False, write_model_card=False)
run_merge(MergeConfiguration.model_validate(yaml.safe_load(open(sys.argv[1]))), sys.argv[2], options=options)
print(json.dumps({"imports": base, "peak": peak(), "seconds": time.perf_counter() - t}))
"""
)

LOAD_ALL = (
    PEAK
    + """
import json, os, sys, time
import torch
from safetensors.torch import load_file, save_file
from aloe_train.merge.methods import task_arithmetic
base = peak(); t = time.perf_counter()
folders = sys.argv[1:4]
states = [load_file(os.path.join(f, "model.safetensors")) for f in folders]
generator = torch.Generator().manual_seed(0)
merged = {
    name: task_arithmetic(states[0][name], (s[name] for s in states[1:]), weights=[0.6, 0.4],
        densities=[0.5, 0.5], sparsification="random", consensus="sum", normalize=False, rescale=True,
        generator=generator)
    for name in sorted(states[0])
}
os.makedirs(sys.argv[4], exist_ok=True)
save_file(merged, os.path.join(sys.argv[4], "model.safetensors"), metadata={"format": "pt"})
print(json.dumps({"imports": base, "peak": peak(), "seconds": time.perf_counter() - t}))
"""
)


def build_models(work: Path, args: argparse.Namespace) -> tuple[list[Path], int, int]:
    """Base and two perturbations (bf16, one safetensors file each; reused when ``work`` has them from an
    earlier run); returns paths, model bytes and the largest tensor's bytes."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from aloe_train.merge.io import read_header

    paths = [work / name for name in ("base", "model_a", "model_b")]
    if all((p / "model.safetensors").is_file() for p in paths):
        infos, _ = read_header(paths[0] / "model.safetensors")
        return paths, (paths[0] / "model.safetensors").stat().st_size, max(i.nbytes for i in infos.values())

    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64,
        num_key_value_heads=max(1, args.hidden // 256),
        head_dim=64,
        tie_word_embeddings=False,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(0)
    state = {k: v.to(torch.bfloat16) for k, v in LlamaForCausalLM(config).state_dict().items()}
    for i, folder in enumerate(paths):
        folder.mkdir(exist_ok=True)
        generator = torch.Generator().manual_seed(i)
        weights = {
            k: v if i == 0 else (v.float() + 0.01 * torch.randn(v.shape, generator=generator)).to(v.dtype)
            for k, v in state.items()
        }
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
        config.dtype = "bfloat16"
        config.save_pretrained(folder)
    size = (paths[0] / "model.safetensors").stat().st_size
    largest = max(v.numel() * v.element_size() for v in state.values())
    return paths, size, largest


def write_config(work: Path, method: str, paths: list[Path]) -> Path:
    import yaml

    recipe = {
        "merge_method": method,
        "base_model": str(paths[0]),
        "models": [
            {"model": str(paths[1]), "parameters": {"weight": 0.6, "density": 0.5}},
            {"model": str(paths[2]), "parameters": {"weight": 0.4, "density": 0.5}},
        ],
        "dtype": "bfloat16",
        "random_seed": 0,
    }
    path = work / f"{method}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def measure(python: str, script: str, argv: list[str], threads: int | None) -> dict:
    shutil.rmtree(argv[-1], ignore_errors=True)  # the output folder, from an earlier run with --workdir
    env = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run([python, "-c", script, *argv], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def max_abs_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    def load(folder: Path) -> dict:
        out = {}
        for f in sorted(folder.glob("*.safetensors")):
            out.update(load_file(f))
        return out

    x, y = load(a), load(b)
    if x.keys() != y.keys():
        return float("inf")
    return max((x[k].float() - y[k].float()).abs().max().item() for k in x)


def mergekit_python(flag: str | None) -> str | None:
    if flag:
        return flag
    if os.environ.get("ALOE_MERGEKIT_PYTHON"):
        return os.environ["ALOE_MERGEKIT_PYTHON"]
    return sys.executable if importlib.util.find_spec("mergekit") else None


def report(rows: list[dict], size: int, largest: int) -> None:
    gib = 2**30
    print(f"\none model: {size / 1e6:.0f} MB (bf16); largest tensor: {largest / 1e6:.1f} MB")
    print(f"{'method':10s} {'tool':9s} {'peak GiB':>9s} {'imports GiB':>11s} {'peak/model':>10s} "
          f"{'(peak-imports)/model':>21s} {'seconds':>8s}")  # fmt: skip
    for r in rows:
        print(
            f"{r['method']:10s} {r['tool']:9s} {r['peak'] / gib:9.2f} {r['imports'] / gib:11.2f} "
            f"{r['peak'] / size:10.2f} {(r['peak'] - r['imports']) / size:21.2f} {r['seconds']:8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=2816)
    parser.add_argument("--vocab", type=int, default=16384)
    parser.add_argument("--methods", nargs="+", default=["dare_ties", "ties"])
    parser.add_argument("--mergekit-python", default=None, help="a python with mergekit installed")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for every merge process")
    parser.add_argument("--workdir", type=Path, default=None, help="keep models and outputs here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="aloe-merge-bench-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        paths, size, largest = build_models(work, args)
        mk = mergekit_python(args.mergekit_python)
        rows = []
        for method in args.methods:
            config = write_config(work, method, paths)
            ours = work / f"aloe-{method}"
            rows.append(
                {
                    "method": method,
                    "tool": "aloe",
                    **measure(sys.executable, ALOE, [str(config), str(ours)], args.threads),
                }
            )
            if mk:
                theirs = work / f"mergekit-{method}"
                rows.append(
                    {
                        "method": method,
                        "tool": "mergekit",
                        **measure(mk, MERGEKIT, [str(config), str(theirs)], args.threads),
                    }
                )
                print(f"{method}: max |aloe - mergekit| = {max_abs_diff(ours, theirs):.3g}")
            if method == "dare_ties":
                argv = [*map(str, paths), str(work / "load-all")]
                rows.append(
                    {
                        "method": method,
                        "tool": "load-all",
                        **measure(sys.executable, LOAD_ALL, argv, args.threads),
                    }
                )
        report(rows, size, largest)
        print(json.dumps({"model_bytes": size, "largest_tensor_bytes": largest, "runs": rows}))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
