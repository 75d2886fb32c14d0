"""Scores from predictions, Aloe's aggregates, and the files of a run.

Per benchmark (and per MMLU subject): ``accuracy``, ``n``, ``correct``, ``ci95`` (Wilson), ``stderr``
(lm-evaluation-harness's), ``invalid_rate`` (share of questions with no parsed answer) and ``skipped``
(ids of malformed items, with the reason).

Aggregates, as the Aloe papers report them:

* ``multimedqa``: size-weighted accuracy over MedQA, MedMCQA, PubMedQA and the six MMLU medical
  subjects (every question counts once; CareQA and other benchmarks are not part of MultiMedQA);
* ``medical_mmlu``: the plain mean of the six MMLU subject accuracies;
* ``mean``: the plain mean over benchmarks, MMLU counting once (as its Medical-MMLU mean).

An aggregate is reported only over the benchmarks that were run, and says which ones it covers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.atomic import atomic_write_bytes, atomic_write_text
from aloe_infer.eval.benchmarks import REGISTRY, Benchmark
from aloe_infer.eval.metrics import standard_error, wilson_interval


def score(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """accuracy, n, correct, ci95, stderr and invalid_rate of a list of prediction records."""
    n = len(predictions)
    correct = sum(1 for p in predictions if p["correct"])
    invalid = sum(1 for p in predictions if p["prediction"] is None)
    low, high = wilson_interval(correct, n)
    return {
        "accuracy": correct / n if n else 0.0,
        "n": n,
        "correct": correct,
        "ci95": [low, high],
        "stderr": standard_error(correct, n),
        "invalid_rate": invalid / n if n else 0.0,
    }


def benchmark_scores(
    benchmarks: Sequence[Benchmark], predictions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Scores per benchmark (with ``subjects`` for MMLU-style benchmarks) in benchmark order."""
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for p in predictions:
        by_name.setdefault(p["benchmark"], []).append(p)
    out: dict[str, Any] = {}
    for bench in benchmarks:
        mine = by_name.get(bench.name, [])
        entry = score(mine) | {
            "skipped": [{"id": s.id, "reason": s.reason} for s in bench.skipped],
            "files": bench.files,
        }
        if bench.subjects:
            entry["subjects"] = {
                subject: score([p for p in mine if p["subject"] == subject]) for subject in bench.subjects
            }
        out[bench.name] = entry
    return out


def aggregates(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """MultiMedQA, Medical MMLU and the plain mean over the benchmarks in ``scores``."""
    out: dict[str, Any] = {}
    multimedqa = [name for name in scores if REGISTRY.get(name) is not None and REGISTRY[name].multimedqa]
    if multimedqa:
        n = sum(scores[b]["n"] for b in multimedqa)
        correct = sum(scores[b]["correct"] for b in multimedqa)
        out["multimedqa"] = {"accuracy": correct / n if n else 0.0, "n": n, "benchmarks": multimedqa}
    mmlu = scores.get("mmlu")
    if mmlu is not None and mmlu.get("subjects"):
        subjects = mmlu["subjects"]
        out["medical_mmlu"] = {
            "accuracy": sum(s["accuracy"] for s in subjects.values()) / len(subjects),
            "subjects": sorted(subjects),
        }
    if scores:
        values = [
            out["medical_mmlu"]["accuracy"] if name == "mmlu" and "medical_mmlu" in out else s["accuracy"]
            for name, s in scores.items()
        ]
        out["mean"] = {"accuracy": sum(values) / len(values), "benchmarks": list(scores)}
    return out


def write_predictions(path: str | Path, predictions: Iterable[Mapping[str, Any]]) -> None:
    lines = "".join(json.dumps(p, ensure_ascii=False, sort_keys=False) + "\n" for p in predictions)
    atomic_write_text(path, lines)


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``predictions.jsonl`` (a local file or a URI)."""
    return [json.loads(line) for line in storage.read_text(path).splitlines() if line.strip()]


def markdown_table(results: Mapping[str, Any]) -> str:
    """``results.md``: one row per benchmark and subject, then the aggregates."""
    head = (
        f"# {results['model']} — {results['strategy']}\n\n"
        f"Chat template: {'applied' if results['chat_template'] else 'not applied'}; "
        f"split: {results['split']}; engine: {results['engine']}.\n\n"
        "| benchmark | accuracy | 95% CI | n | stderr | invalid | skipped |\n|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for name, s in results["benchmarks"].items():
        rows.append(_row(name, s, len(s["skipped"])))
        for subject, sub in s.get("subjects", {}).items():
            rows.append(_row(f"&nbsp;&nbsp;{name}/{subject}", sub, ""))
    agg = results["aggregates"]
    tail = "\n\n| aggregate | accuracy | over |\n|---|---|---|\n" + "".join(
        f"| {name} | {a['accuracy']:.4f} | {', '.join(a.get('benchmarks') or a.get('subjects') or [])} |\n"
        for name, a in agg.items()
    )
    return head + "".join(rows) + tail


def _row(name: str, s: Mapping[str, Any], skipped: object) -> str:
    low, high = s["ci95"]
    return (
        f"| {name} | {s['accuracy']:.4f} | [{low:.3f}, {high:.3f}] | {s['n']} | {s['stderr']:.4f} | "
        f"{s['invalid_rate']:.3f} | {skipped} |\n"
    )


def accuracy_chart(path: str | Path, runs: Mapping[str, Mapping[str, Any]]) -> None:
    """Bars per benchmark (one colour per run) with Wilson 95% whiskers, written atomically as PNG
    (a local file, or one PUT to a URI)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(dict.fromkeys(name for r in runs.values() for name in r["benchmarks"]))
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names) * max(1, len(runs))), 4))
    for k, (label, result) in enumerate(runs.items()):
        acc = np.array([result["benchmarks"].get(n, {}).get("accuracy", np.nan) for n in names])
        ci = [result["benchmarks"].get(n, {}).get("ci95", [np.nan, np.nan]) for n in names]
        low, high = np.array([c[0] for c in ci]), np.array([c[1] for c in ci])
        err = np.clip(np.array([acc - low, high - acc]), 0, None)  # float noise at 0 and 1
        ax.bar(np.arange(len(names)) + k * width, acc, width, yerr=err, capsize=3, label=label)
    ax.set_xticks(np.arange(len(names)) + width * (len(runs) - 1) / 2, names, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (Wilson 95% CI)")
    if len(runs) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())
