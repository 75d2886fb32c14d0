"""DEITA scoring and selection speed: our batched scorer vs DEITA's per-sample loop, and greedy selection.

    uv run python benchmarks/deita.py --rows 256 --select-rows 50000

Scoring: the same scorer model (default: the tiny model, built into a temp folder) scores the same rows
(complexity + quality prompt per row) twice in this process, with the same torch thread count:

* anchor: DEITA's ``Scorer.infer_complexity`` / ``infer_quality`` loop (``deita/selection/scorer/base.py``):
  one prompt at a time, ``model.generate(max_new_tokens=2, output_scores=True)``, softmax over the six
  score-token logits of the first step, expected score;
* ours: :class:`aloe_data.stages.deita.DeitaBatchScorer` on Ray-sized batches (``--batch-size`` rows).

It prints samples/s, the ratio, and the largest score difference between the two (agreement check).
Rows are MedMCQA questions + answers from shared/ when present, otherwise generated sentences.

Selection: ``--select-rows`` random unit vectors of MiniLM's 384 dims in clusters, with scores; times
the exact greedy and the clustered variant with a budget of a fifth of the rows, and DEITA's own filter
loop (``IterativeFilter.filter`` with its default batch_size=1, in torch) on ``--anchor-rows`` of them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medical-mcqa"


def bench_rows(n: int) -> list[dict]:
    """``n`` single-turn sft rows: real MedMCQA text when available."""
    path = SHARED / "medmcqa" / "medmcqa_val.json"
    if path.is_file():
        items = list(json.loads(path.read_text(encoding="utf-8")).values())
        pairs = [(it["question"], it["options"][it["correct_answer"]]) for it in items]
    else:
        rng = np.random.default_rng(0)
        words = ["patient", "dose", "renal", "hepatic", "acute", "chronic", "first", "line"]
        words += ["therapy", "risk", "sign", "symptom"]
        pairs = [
            (" ".join(rng.choice(words, 20)) + "?", " ".join(rng.choice(words, 30)) + ".") for _ in range(n)
        ]
    pairs = (pairs * (n // len(pairs) + 1))[:n]
    return [
        {
            "id": f"{i:08d}",
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            "meta": "{}",
        }
        for i, (q, a) in enumerate(pairs)
    ]


def deita_loop(model_dir: str, rows: list[dict]) -> tuple[float, list[float]]:
    """DEITA's per-sample scoring (generate, 2 new tokens, scores of the first step); seconds, scores."""
    import torch
    from scipy.special import softmax
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aloe_data.scoring.prompts import COMPLEXITY_TEMPLATE, QUALITY_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    id2score = [tokenizer.convert_tokens_to_ids(d) for d in "123456"]
    template = np.array([1, 2, 3, 4, 5, 6])

    def infer_score(user_input: str) -> float:
        input_ids = tokenizer.encode(user_input, return_tensors="pt")
        with torch.no_grad():
            outputs = model.generate(
                input_ids,
                max_new_tokens=2,
                num_return_sequences=1,
                return_dict_in_generate=True,
                output_scores=True,
                pad_token_id=tokenizer.pad_token_id,
            )
        logits = outputs.scores[0][0]
        score_logits = np.array([logits[k].item() for k in id2score])
        return float(np.sum(softmax(score_logits, axis=0) * template))

    started = time.perf_counter()
    scores = []
    for row in rows:
        q, a = row["messages"][0]["content"], row["messages"][1]["content"]
        c = infer_score(COMPLEXITY_TEMPLATE.format(instruction=q))
        scores.append(c * infer_score(QUALITY_TEMPLATE.format(instruction=q, output=a)))
    return time.perf_counter() - started, scores


def ours(model_dir: str, rows: list[dict], batch_size: int) -> tuple[float, list[float]]:
    from aloe_data.stages.deita import DeitaBatchScorer, DeitaScoreConfig

    scorer = DeitaBatchScorer(DeitaScoreConfig(complexity_model=model_dir), "sft")
    started = time.perf_counter()
    results = []
    for start in range(0, len(rows), batch_size):
        results += scorer.score_rows(rows[start : start + batch_size])
    return time.perf_counter() - started, [r["score"] for r in results]


def selection_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // 50, 1), 384))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, 384)) * rng.uniform(
        0.004, 0.04, size=(n, 1)
    )
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return vectors, rng.uniform(1, 36, n), [f"{i:020x}" for i in rng.permutation(n)]


def deita_filter(vectors: np.ndarray, scores: np.ndarray, threshold: float, size: int) -> tuple[float, int]:
    """DEITA's IterativeFilter.filter (batch_size=1, chunk_size=100k, cosine, CPU); seconds, kept."""
    import torch

    started = time.perf_counter()
    embeddings = vectors[np.argsort(-scores, kind="stable")]
    kept = [0]
    for i in range(1, len(embeddings)):
        cur = torch.tensor(embeddings[i : i + 1], dtype=torch.float32)
        existing = torch.tensor(embeddings[kept], dtype=torch.float32)
        cur_n = cur / cur.norm(dim=1)[:, None]
        existing_n = existing / existing.norm(dim=1)[:, None]
        if not torch.any(torch.mm(cur_n, existing_n.t()) > threshold):
            kept.append(i)
        if len(kept) >= size:
            break
    return time.perf_counter() - started, len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", help="scorer model folder (default: build the tiny model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--select-rows", type=int, default=50_000)
    parser.add_argument("--anchor-rows", type=int, default=10_000)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="aloe-deita-") as work:
        model_dir = args.model
        if model_dir is None:
            from aloe_fixtures.tiny_model import build_tiny_model

            model_dir = str(build_tiny_model(Path(work) / "tiny"))
        scoring(model_dir, args)
    selection(args)


def scoring(model_dir: str, args: argparse.Namespace) -> None:
    rows = bench_rows(args.rows)
    loop_s, loop_scores = deita_loop(model_dir, rows)
    ours_s, our_scores = ours(model_dir, rows, args.batch_size)
    diff = float(np.max(np.abs(np.array(loop_scores) - np.array(our_scores))))
    print(f"scoring {len(rows)} rows (complexity + quality each), model {model_dir}, {args.threads} threads")
    print(f"{'method':<38}{'seconds':>10}{'rows/s':>10}{'ratio':>8}")
    print(f"{'DEITA per-sample loop (generate)':<38}{loop_s:>10.2f}{len(rows) / loop_s:>10.1f}{1.0:>8.2f}")
    print(
        f"{'aloe batched (batch ' + str(args.batch_size) + ')':<38}{ours_s:>10.2f}{len(rows) / ours_s:>10.1f}"
        f"{loop_s / ours_s:>8.2f}"
    )
    print(f"max |score difference| between the two: {diff:.2e}")


def selection(args: argparse.Namespace) -> None:
    from aloe_data.scoring.greedy import clustered_select, greedy_select

    vectors, scores, ids = selection_data(args.select_rows)
    size = args.select_rows // 5
    started = time.perf_counter()
    exact = greedy_select(vectors, scores, ids, 0.9, size)
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    clustered = clustered_select(vectors, scores, ids, 0.9, size, n_clusters=64)
    clustered_s = time.perf_counter() - started
    agree = float(np.mean([a == b for a, b in zip(exact.reason, clustered.reason, strict=True)]))
    n_anchor = min(args.anchor_rows, args.select_rows)
    anchor_s, _ = deita_filter(vectors[:n_anchor], scores[:n_anchor], 0.9, n_anchor // 5)
    started = time.perf_counter()
    greedy_select(vectors[:n_anchor], scores[:n_anchor], ids[:n_anchor], 0.9, n_anchor // 5)
    exact_anchor_s = time.perf_counter() - started
    print("\nselection, threshold 0.9, dim 384, budget = rows / 5")
    print(f"{'method':<44}{'rows':>8}{'seconds':>10}{'ratio':>8}")
    print(f"{'DEITA IterativeFilter loop (batch_size=1)':<44}{n_anchor:>8}{anchor_s:>10.2f}{1.0:>8.2f}")
    print(f"{'aloe exact greedy':<44}{n_anchor:>8}{exact_anchor_s:>10.2f}{anchor_s / exact_anchor_s:>8.2f}")
    print(f"{'aloe exact greedy':<44}{args.select_rows:>8}{exact_s:>10.2f}")
    print(f"{'aloe clustered greedy (64 clusters)':<44}{args.select_rows:>8}{clustered_s:>10.2f}")
    print(f"kept {sum(r is None for r in exact.reason)}; clustered agrees with exact on {agree:.2%} of rows")


if __name__ == "__main__":
    main()
