"""MinHash signature throughput (aloe vs datasketch vs datatrove) and the fuzzy_dedup stage end to end on Ray.

All measurements use the same deterministic synthetic corpus (``--docs`` documents of 50-300 words,
Zipf-distributed vocabulary, punctuation and capitals, ~10% near-duplicates), 128 permutations and
5-word shingles, and start from the raw text (normalising and shingling included for every library).

* Signature rows are single-core: one process, CPU time (``time.process_time``), so other load on the
  machine inflates them less than wall time would. Every implementation is timed over the same texts
  (the slow plain-``update()`` datasketch loop over a prefix of them, see its row).
* datatrove is not a dependency of aloe (dev or otherwise). The script installs it only for its own
  run, into uv's throwaway environment: ``uv run --no-project --with datatrove==0.10.1 --with
  tokenizers --with spacy --with 'xxhash<3.5' python benchmarks/minhash.py --datatrove-worker`` (run
  from /tmp, so the workspace is untouched; the first run downloads the wheels from PyPI, later runs
  reuse uv's cache). It calls ``MinhashDedupSignature.get_shingles`` and ``get_signature`` directly
  (16 buckets x 8 hashes = 128, its default xxhash64 hashing; ``xxhash<3.5`` because datatrove 0.10.1
  passes str to xxhash, which newer xxhash rejects). ``--skip-datatrove`` leaves it out.
* End to end: the ``fuzzy_dedup`` stage (near-duplicate detection, then every row marked in input
  order, as in ``aloe data dedup``) on a fresh local Ray with 1 and then 2 CPUs (separate processes),
  wall time from the materialised input Dataset to the marked output fully computed, after a warm-up
  run; best of ``--repeats`` runs. Three settings: aloe's embedded-Ray defaults with every process of
  the run pinned to 1 or 2 cores (the scaling figure), the same without pinning (only Ray's logical CPUs
  change, so the 1-CPU run's driver and daemons use the spare core), and Ray Data's default per-operator
  resource reservation (which aloe's task-only pipeline stages run without), pinned.
* Driver memory: peak bytes per candidate edge / row of the driver-side cluster resolution.
* The load average is printed at start and end: on a shared machine, label the timings accordingly.

Usage: ``uv run python benchmarks/minhash.py [--docs 100000] [--skip-datatrove] [--skip-ray]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUNCT = ["", "", "", "", "", "", ",", ",", ".", ";", ":", "?", "!", " -"]
QUESTION = "Summarise the following clinical note."


def make_docs(n: int, seed: int) -> list[str]:
    """Deterministic corpus: Zipf(1.1) words from a 30k vocabulary, 50-300 words per document, every
    tenth document a near-copy (1-3 words replaced) of an earlier one."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 11))) for _ in range(30_000)]
    cum = list(itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(vocab))))
    docs: list[str] = []
    for i in range(n):
        if i % 10 == 9 and i > 10:
            words = docs[rng.randrange(i - 1)].split(" ")
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
            docs.append(" ".join(words))
            continue
        words = rng.choices(vocab, cum_weights=cum, k=rng.randint(50, 300))
        words = [w.capitalize() if rng.random() < 0.06 else w for w in words]
        docs.append(" ".join(w + rng.choice(PUNCT) for w in words))
    return docs


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


# ---------------------------------------------------------------- single-core signature throughput


def bench_aloe(docs: list[str], batch: int = 4096) -> float:
    from aloe_data.dedup import signatures
    from aloe_data.dedup.shingles import _word_char_table

    _word_char_table()  # built once per process (~0.2 s); not per-document work
    signatures(docs[:16])  # compiles the numba kernels, or loads them from numba's cache (per process)

    def run() -> None:
        for lo in range(0, len(docs), batch):
            signatures(docs[lo : lo + batch])

    return min(cpu_seconds(run) for _ in range(2))


def bench_datasketch(docs: list[str], mode: str) -> float:
    from datasketch import MinHash

    from aloe_core.text import word_ngrams

    def per_doc_update_batch() -> None:
        for text in docs:
            minhash = MinHash(num_perm=128, seed=1)
            minhash.update_batch([s.encode("utf-8") for s in word_ngrams(text, 5)])

    def per_doc_update() -> None:
        for text in docs:
            minhash = MinHash(num_perm=128, seed=1)
            for shingle in word_ngrams(text, 5):
                minhash.update(shingle.encode("utf-8"))

    def bulk() -> None:
        MinHash.bulk(([s.encode("utf-8") for s in word_ngrams(t, 5)] for t in docs), num_perm=128, seed=1)

    return cpu_seconds({"update_batch": per_doc_update_batch, "update": per_doc_update, "bulk": bulk}[mode])


def datatrove_worker(n: int, seed: int, sha1_docs: int) -> None:
    """Runs inside the throwaway datatrove environment; prints JSON [name, docs, cpu seconds] rows."""
    import tempfile

    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    docs = make_docs(n, seed)
    variants = [("xxhash64, default", HashConfig(), docs)]
    variants.append(("sha1-32", HashConfig(precision=32, hash_fc="sha1"), docs[:sha1_docs]))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, hash_config, texts in variants:
            step = MinhashDedupSignature(
                tmp, config=MinhashConfig(num_buckets=16, hashes_per_bucket=8, hash_config=hash_config)
            )

            def run(step=step, texts=texts) -> None:
                for text in texts:
                    shingles = step.get_shingles(text)
                    if shingles.size:
                        step.get_signature(shingles)

            out.append((name, len(texts), cpu_seconds(run)))
    print(json.dumps(out))


def bench_datatrove(n: int, seed: int, sha1_docs: int) -> list[tuple[str, int, float]]:
    cmd = [
        "uv", "run", "--no-project", "--quiet", "--with", "datatrove==0.10.1", "--with", "tokenizers",
        "--with", "spacy", "--with", "xxhash<3.5", "python", str(Path(__file__).resolve()),
        "--datatrove-worker", "--docs", str(n), "--seed", str(seed), "--update-docs", str(sha1_docs),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd="/tmp")
    return [tuple(row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


# ---------------------------------------------------------------- end to end on Ray


def ray_worker(n: int, seed: int, cpus: int, repeats: int, reservation: bool, pin: bool) -> None:
    """Runs in a fresh process: the ``fuzzy_dedup`` stage (what ``aloe data dedup`` and pipelines run:
    near-duplicate detection, then marking rows in input order) on a local Ray with ``cpus`` CPUs,
    ``repeats`` timed runs (the best is reported: other tenants of the machine only ever make a run
    slower); prints JSON.

    With ``pin``, this process and everything it starts (Ray's GCS, raylet, workers) may only use the
    first ``cpus`` cores, so "1 vs 2 CPUs" compares machines of 1 and 2 cores. Without it, only Ray's
    logical CPUs change: in the 1-CPU run the driver and Ray's daemons (~20% of a core here) get the
    idle second core for free, which a 1-core machine would not give them.
    """
    if pin:
        os.sched_setaffinity(0, set(range(cpus)))
    import pyarrow as pa
    import pyarrow.compute as pc
    import ray

    from aloe_core.ray_session import ensure_ray
    from aloe_core.schemas import SFT_SCHEMA, dumps_meta
    from aloe_data.pipeline.stage import StageContext
    from aloe_data.stages.fuzzy_dedup import FuzzyDedupConfig, FuzzyDedupStage

    docs = make_docs(n, seed)
    rows = {
        "id": [f"doc-{i:07d}" for i in range(n)],
        "source": ["bench"] * n,
        "task": ["summary"] * n,
        "messages": [
            [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": d}] for d in docs
        ],
        "mcqa": [None] * n,
        "meta": [dumps_meta({})] * n,
    }
    table = pa.Table.from_pydict(rows, schema=SFT_SCHEMA)
    ensure_ray(cpus, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True  # as the pipeline runs stages
    # Ray Data's per-operator resource reservation (on by default) is measured both ways.
    context.op_resource_reservation_enabled = reservation
    block = 4096
    stage = FuzzyDedupStage(FuzzyDedupConfig(num_partitions=2 * cpus))
    stage_context = StageContext("sft", ROOT, "bench", cpus)

    def fresh(rows: int) -> ray.data.Dataset:  # a new Dataset each time: nothing cached between runs
        return ray.data.from_arrow([table.slice(i, block) for i in range(0, rows, block)]).materialize()

    def run(data: ray.data.Dataset) -> tuple[int, int]:
        out = stage.apply(data, stage_context)
        marked = [
            int(pc.sum(pc.is_valid(t["drop_reason"])).as_py() or 0) for t in ray.get(out.to_arrow_refs())
        ]
        return data.count() - sum(marked), sum(marked)

    run(fresh(2 * block))  # warm-up: worker processes, imports, word table
    times = []
    for _ in range(repeats):
        ds = fresh(n)
        start = time.perf_counter()
        kept, dropped = run(ds)
        times.append(time.perf_counter() - start)
    result = {"cpus": cpus, "seconds": min(times), "all": times, "kept": kept, "dropped": dropped}
    print(json.dumps({**result, "reservation": reservation, "pin": pin}))
    ray.shutdown()


def bench_ray(n: int, seed: int, cpus: int, repeats: int, reservation: bool, pin: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ray-worker", "--cpus", str(cpus)]
    cmd += ["--docs", str(n), "--seed", str(seed), "--repeats", str(repeats)]
    cmd += ["--reservation"] if reservation else []
    cmd += ["--pin"] if pin else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- driver memory of cluster resolution


def bench_driver_memory(num_nodes: int = 1_000_000, num_edges: int = 2_000_000) -> dict[str, float]:
    """Peak driver memory of :func:`resolve_clusters` (plus its input tables, which the driver holds) on
    synthetic candidates (20-hex-digit ids like the pipeline's, 128-slot signatures), split into the part
    that grows with edges and the part that grows with candidate rows (from runs at two edge counts)."""
    import tracemalloc

    import numpy as np
    import pyarrow as pa

    from aloe_data.dedup import MinHashConfig
    from aloe_data.dedup.fuzzy import resolve_clusters

    def measure(nodes: int, edges: int) -> float:
        rng = np.random.default_rng(0)
        ids = pa.array(sorted(f"{i:020x}" for i in rng.choice(2**62, nodes, replace=False)))
        src = rng.integers(0, nodes - 1, edges)
        dst = np.minimum(src + rng.integers(1, 50, edges), nodes - 1)
        edge_table = pa.table(
            {
                "band_key": rng.integers(0, 2**63, edges).astype(np.uint64),
                "src": ids.take(src),
                "dst": ids.take(dst),
            }
        )
        signature = rng.integers(0, 2**32, (nodes, 128), dtype=np.uint32)
        candidates = pa.table(
            {
                "id": ids,
                "signature": pa.FixedSizeListArray.from_arrays(pa.array(signature.reshape(-1)), 128),
                "score": np.full(nodes, np.nan),
                "answer_length": rng.integers(0, 1000, nodes),
            }
        )
        default_pool = pa.default_memory_pool()
        arrow = pa.proxy_memory_pool(default_pool)  # counts only what resolve_clusters allocates
        pa.set_memory_pool(arrow)
        tracemalloc.start()  # Python objects and numpy buffers
        try:
            resolve_clusters(edge_table, candidates, MinHashConfig())
            _, python_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            pa.set_memory_pool(default_pool)
        # The edge and candidate tables themselves also live on the driver while clusters are resolved.
        return python_peak + arrow.max_memory() + edge_table.nbytes + candidates.nbytes

    base = measure(num_nodes, num_edges)
    more_edges = measure(num_nodes, 2 * num_edges)
    per_edge = (more_edges - base) / num_edges
    return {"bytes_per_edge": per_edge, "bytes_per_row": (base - per_edge * num_edges) / num_nodes}


# ---------------------------------------------------------------- report


def signature_rows(docs: list[str], args: argparse.Namespace) -> list[tuple[str, int, float]]:
    """(implementation, docs, CPU seconds) of every signature implementation; aloe first."""
    rows: list[tuple[str, int, float]] = [
        ("aloe signatures (numba kernels, batch 4096)", len(docs), bench_aloe(docs))
    ]
    print("  aloe done", flush=True)
    rows.append(
        ("datasketch: MinHash() + update_batch per doc", len(docs), bench_datasketch(docs, "update_batch"))
    )
    rows.append(("datasketch: MinHash.bulk (shared permutations)", len(docs), bench_datasketch(docs, "bulk")))
    prefix = docs[: min(args.update_docs, len(docs))]
    name = f"datasketch: MinHash() + update() loop per doc (first {len(prefix)})"
    rows.append((name, len(prefix), bench_datasketch(prefix, "update")))
    print("  datasketch done", flush=True)
    if not args.skip_datatrove:
        for name, n, seconds in bench_datatrove(args.docs, args.seed, args.update_docs):
            suffix = "" if n == len(docs) else f", first {n}"
            rows.append((f"datatrove MinhashDedupSignature ({name}{suffix})", n, seconds))
        print("  datatrove done", flush=True)
    return rows


def print_signature_table(rows: list[tuple[str, int, float]]) -> None:
    ours = rows[0][1] / rows[0][2]
    print(f"\nSignatures, 1 core, CPU time, 128 perms, 5-word shingles, {rows[0][1]} docs")
    print(f"{'implementation':<66}{'docs':>8}{'seconds':>10}{'docs/s':>10}{'aloe x':>9}")
    for name, n, seconds in rows:
        print(f"{name:<66}{n:>8}{seconds:>10.2f}{n / seconds:>10.0f}{ours / (n / seconds):>9.1f}")


# (label, reservation, pin) of each end-to-end setting; the first is the goal figure.
RAY_SETTINGS = [
    ("aloe's fuzzy_dedup stage setting (reservation off), processes pinned to 1 / 2 cores", False, True),
    ("same, not pinned (only Ray's logical CPUs change)", False, False),
    ("Ray Data's default (per-operator reservation on), pinned", True, True),
]


def ray_table(args: argparse.Namespace) -> dict[str, float]:
    """Run and print the end-to-end rows; returns the 1 -> 2 CPU speed-up per setting."""
    print(f"\nfuzzy_dedup stage end to end on local Ray (wall time, {args.docs} docs)")
    pin_possible = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    scaling = {}
    for label, reservation, pin in RAY_SETTINGS:
        if pin and not pin_possible:
            print(f"  {label}: skipped (needs Linux and 2 cores)")
            continue
        print(f"  {label}:")
        results = [bench_ray(args.docs, args.seed, cpus, args.repeats, reservation, pin) for cpus in (1, 2)]
        for r in results:
            runs = ", ".join(f"{t:.1f}" for t in r["all"])
            print(
                f"    {r['cpus']} CPU: {r['seconds']:.1f} s (best of {runs}), {args.docs / r['seconds']:.0f} "
                f"docs/s, kept {r['kept']}, dropped {r['dropped']}"
            )
        scaling[label] = results[0]["seconds"] / results[1]["seconds"]
        print(f"    scaling 1 -> 2 CPUs: {scaling[label]:.2f}x")
    return scaling


def print_ratios(rows: list[tuple[str, int, float]], scaling: dict[str, float]) -> None:
    """The issue's goals, each as a measured ratio."""
    rate = {name: n / seconds for name, n, seconds in rows}
    ours = rows[0][1] / rows[0][2]
    print("\nRatios (goal in brackets)")
    for name, _, _ in rows[1:]:
        goal = (
            "[>= 10x]"
            if name.startswith("datasketch: MinHash()")
            else "[>= 1x]"
            if "datatrove" in name
            else ""
        )
        print(f"  aloe / {name}: {ours / rate[name]:.1f}x {goal}")
    for label, value in scaling.items():
        goal = "[>= 1.7x]" if label == RAY_SETTINGS[0][0] else ""
        print(f"  end to end, 2 CPUs / 1 CPU, {label}: {value:.2f}x {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-docs", type=int, default=10_000, help="docs for the slow extra rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed fuzzy_dedup runs per CPU count")
    parser.add_argument("--skip-datatrove", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--datatrove-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ray-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--reservation", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.datatrove_worker:
        return datatrove_worker(args.docs, args.seed, args.update_docs)
    if args.ray_worker:
        return ray_worker(args.docs, args.seed, args.cpus, args.repeats, args.reservation, args.pin)

    docs = make_docs(args.docs, args.seed)
    words = sum(d.count(" ") + 1 for d in docs)
    print(f"corpus: {len(docs)} docs, {words / len(docs):.0f} words/doc (seed {args.seed})", flush=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)", flush=True)
    rows = signature_rows(docs, args)
    print_signature_table(rows)
    scaling: dict[str, float] = {} if args.skip_ray else ray_table(args)
    memory = bench_driver_memory()
    print(
        f"\nDriver cluster resolution: {memory['bytes_per_edge']:.0f} bytes per candidate edge + "
        f"{memory['bytes_per_row']:.0f} bytes per candidate row (peak, 128-slot signatures)"
    )
    print_ratios(rows, scaling)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    note = "above the core count: timings are under load" if load > cores else "at most the core count"
    print(f"load average at end: {load:.1f} ({note})")


if __name__ == "__main__":
    main()
