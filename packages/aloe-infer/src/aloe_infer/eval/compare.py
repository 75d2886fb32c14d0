"""`aloe eval compare RUN_A RUN_B ...`: runs side by side, and paired tests against the first run.

Accuracies of runs on the same questions are not independent samples, so the comparison is paired:
for every benchmark, the questions both runs answered (matched by benchmark, subject and id) give the
paired difference in accuracy and McNemar's exact test (:func:`aloe_infer.eval.metrics.mcnemar`) of
each later run against the first (or, with ``pairs``, of each run against the base it names: a
multi-strategy run pairs ``rag`` with ``zero-shot`` and ``rag-cot`` with ``cot``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, atomic_write_text
from aloe_core.errors import InputError
from aloe_infer.eval.metrics import mcnemar
from aloe_infer.eval.results import accuracy_chart, read_predictions
from aloe_infer.eval.run import PREDICTIONS, RESULTS


def _load(run: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import json

    results_path, predictions_path = storage.join(run, RESULTS), storage.join(run, PREDICTIONS)
    if not storage.is_file(results_path) or not storage.is_file(predictions_path):
        raise InputError(f"{run}: not a finished eval run (no {RESULTS} and {PREDICTIONS})")
    return json.loads(storage.read_text(results_path)), read_predictions(predictions_path)


def _label(run: str | Path, results: dict[str, Any]) -> str:
    strategy, name = results["strategy"], storage.name_of(run)
    return strategy if name == strategy else f"{name} ({strategy})"


def _key(p: dict[str, Any]) -> tuple[str, str | None, str]:
    return (p["benchmark"], p.get("subject"), p["id"])


def compare_runs(
    runs: Sequence[str | Path],
    out: str | Path | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The comparison (and, with ``out``, ``comparison.json``, ``comparison.md`` and ``accuracy.png``).

    Runs and ``out`` may be local folders or URIs (``s3://...``: each file one PUT).

    ``pairs``: ``(base, run)`` indexes into ``runs`` to test; default every later run against the first.
    """
    if len(runs) < 2:
        raise InputError("compare needs at least two runs")
    loaded = [_load(r) for r in runs]
    labels = [_label(r, res) for r, (res, _) in zip(runs, loaded, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}: {label}" for i, label in enumerate(labels)]
    pairs = list(pairs) if pairs is not None else [(0, n) for n in range(1, len(runs))]
    names = list(dict.fromkeys(n for res, _ in loaded for n in res["benchmarks"]))
    table = {
        n: {
            label: res["benchmarks"].get(n, {}).get("accuracy")
            for label, (res, _) in zip(labels, loaded, strict=True)
        }
        for n in names
    }
    paired: dict[str, dict[str, Any]] = {}
    for base, run in pairs:
        keyed_base = {_key(p): p for p in loaded[base][1]}
        for name in names:
            both = [
                (keyed_base[key]["correct"], p["correct"])
                for p in loaded[run][1]
                if p["benchmark"] == name and (key := _key(p)) in keyed_base
            ]
            if not both:
                continue
            test = mcnemar([a for a, _ in both], [b for _, b in both])
            paired.setdefault(name, {})[labels[run]] = {
                "base": labels[base],
                "n": test.n,
                "difference": test.difference,
                "base_only": test.a_only,
                "run_only": test.b_only,
                "p_value": test.p_value,
            }
    comparison = {
        "runs": [str(r) for r in runs],
        "labels": labels,
        "base": labels[0],
        "accuracy": table,
        "paired": paired,
    }
    if out is not None:
        storage.makedirs(out)
        atomic_write_json(storage.join(out, "comparison.json"), comparison)
        atomic_write_text(storage.join(out, "comparison.md"), markdown(comparison))
        accuracy_chart(
            storage.join(out, "accuracy.png"),
            {label: res for label, (res, _) in zip(labels, loaded, strict=True)},
        )
    return comparison


def markdown(comparison: dict[str, Any]) -> str:
    labels = comparison["labels"]
    lines = ["| benchmark | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, row in comparison["accuracy"].items():
        cells = [f"{row[label]:.4f}" if row[label] is not None else "—" for label in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Paired (questions both runs answered; McNemar exact test):", ""]
    lines += [
        "| benchmark | run | against | n | difference | base only | run only | p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, per_run in comparison["paired"].items():
        for label, t in per_run.items():
            lines.append(
                f"| {name} | {label} | {t['base']} | {t['n']} | {t['difference']:+.4f} | {t['base_only']} | "
                f"{t['run_only']} | {t['p_value']:.4g} |"
            )
    return "\n".join(lines) + "\n"
