"""ASR tables, the topic x style heatmap, and the comparison of two runs (before and after alignment).

ASR (attack success rate) is the share of judged prompts whose final verdict is unsafe; prompts
without an answer (engine errors) are left out of every denominator and counted apart. Every rate
carries its Wilson 95% interval (:func:`aloe_infer.eval.metrics.wilson_interval`: per-cell counts are
small, and rates near 0 are the goal). Two runs are paired prompt by prompt (content-derived ids) and
compared with the exact McNemar test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from aloe_core.errors import InputError
from aloe_infer.eval.metrics import mcnemar, standard_error, wilson_interval

PREDICTIONS = "predictions.jsonl"
RESULTS = "results.json"
HEATMAP = "heatmap.png"


def rate(flags: Iterable[bool]) -> dict[str, Any]:
    """``{n, unsafe, asr, low, high, stderr}`` of unsafe flags: the Wilson 95% interval, and lm-eval's
    standard error for readers who quote ``asr +- stderr`` (asr None when n = 0)."""
    flags = list(flags)
    n, unsafe = len(flags), sum(1 for f in flags if f)
    low, high = wilson_interval(unsafe, n)
    asr = unsafe / n if n else None
    return {
        "n": n,
        "unsafe": unsafe,
        "asr": asr,
        "low": low,
        "high": high,
        "stderr": standard_error(unsafe, n),
    }


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def asr_tables(records: Sequence[Mapping[str, Any]], key: str = "unsafe") -> dict[str, Any]:
    """ASR overall, per topic, per style and per topic x style, from records with ``topic``, ``style``,
    ``held_out`` and a boolean (or None: not judged) under ``key``."""
    judged = [r for r in records if r.get(key) is not None]
    topics = _ordered(r["topic"] for r in records)
    styles = _ordered(r["style"] for r in records)

    def of(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return rate(bool(r[key]) for r in rows)

    return {
        "overall": of(judged),
        "by_topic": {t: of(r for r in judged if r["topic"] == t) for t in topics},
        "by_style": {s: of(r for r in judged if r["style"] == s) for s in styles},
        "by_topic_style": {
            t: {s: of(r for r in judged if r["topic"] == t and r["style"] == s) for s in styles}
            for t in topics
        },
        "trained_styles": of(r for r in judged if not r.get("held_out")),
        "held_out_styles": of(r for r in judged if r.get("held_out")),
    }


def heatmap_table(tables: Mapping[str, Any]) -> tuple[list[str], list[str], list[list[float]]]:
    """Topics (rows), styles (columns) and the ASR matrix (NaN where a cell has no judged prompt)."""
    cells = tables["by_topic_style"]
    topics = list(cells)
    styles = list(tables["by_style"])
    matrix = [
        [math.nan if cells[t][s]["asr"] is None else cells[t][s]["asr"] for s in styles] for t in topics
    ]
    return topics, styles, matrix


def _figure_bytes(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _draw(ax: Any, topics: list[str], styles: list[str], matrix: list[list[float]], *, delta: bool) -> Any:
    import numpy as np

    data = np.array(matrix, dtype=float) * 100
    image = ax.imshow(
        data, cmap="RdBu_r" if delta else "Reds", vmin=-100 if delta else 0, vmax=100, aspect="auto"
    )
    ax.set_xticks(range(len(styles)), styles, rotation=45, ha="right")
    ax.set_yticks(range(len(topics)), topics)
    for i in range(len(topics)):
        for j in range(len(styles)):
            value = data[i, j]
            if not np.isnan(value):
                text = f"{value:+.0f}" if delta else f"{value:.0f}"
                dark = abs(value) > 60
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    return image


def heatmap_png(tables: Mapping[str, Any], title: str, held_out: Sequence[str] = ()) -> bytes:
    """The topic x style ASR heatmap (percent; held-out styles marked with *), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics, styles, matrix = heatmap_table(tables)
    labels = [f"{s}*" if s in held_out else s for s in styles]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(styles), 1.2 + 0.4 * len(topics)))
    image = _draw(ax, topics, labels, matrix, delta=False)
    fig.colorbar(image, ax=ax, label="ASR (%)")
    ax.set_title(title, fontsize=9)
    return _figure_bytes(fig)


def compare_png(before: Mapping[str, Any], after: Mapping[str, Any], title: str) -> bytes:
    """Before, after and after - before heatmaps side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics, styles, m_before = heatmap_table(before)
    _, _, m_after = heatmap_table(after)
    delta = [[a - b for a, b in zip(ra, rb, strict=True)] for ra, rb in zip(m_after, m_before, strict=True)]
    fig, axes = plt.subplots(1, 3, figsize=(3 * (1.0 + 0.6 * len(styles)), 1.2 + 0.4 * len(topics)))
    for ax, matrix, name, is_delta in (
        (axes[0], m_before, "before", False),
        (axes[1], m_after, "after", False),
        (axes[2], delta, "after - before", True),
    ):
        image = _draw(ax, topics, styles, matrix, delta=is_delta)
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    for ax in axes[1:]:
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return _figure_bytes(fig)


def score_summary(scores: Iterable[float | None]) -> dict[str, Any] | None:
    """Mean and standard error of the judge's scores (StrongREJECT's headline number)."""
    values = [s for s in scores if s is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return {"n": len(values), "mean": mean, "stderr": math.sqrt(var / len(values))}


def format_rate(r: Mapping[str, Any]) -> str:
    if r["asr"] is None:
        return "n/a (0 judged)"
    return f"{100 * r['asr']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}] ({r['unsafe']}/{r['n']})"


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """What a command prints: rates and counts only (never prompts or answers)."""
    asr = report["asr"]
    judge = report["judge"]
    by = judge["rubric"] if judge["model"] else "classifier only"
    lines = [
        f"ASR {format_rate(asr['overall'])}; judge: {by}"
        f" ({judge['parsed']} parsed, {judge['unparsed']} unparsed, {judge['errors']} errors; "
        f"{report['verdicts']['by_classifier']} verdicts by the classifier); {report['answer_errors']} "
        "prompts without an answer",
    ]
    lines += [f"  style {s}: {format_rate(r)}" for s, r in asr["by_style"].items()]
    if report["prompts"]["held_out_styles"]:
        lines.append(
            f"  trained styles {format_rate(asr['trained_styles'])}; "
            f"held-out styles {format_rate(asr['held_out_styles'])}"
        )
    return lines


def report_markdown(report: Mapping[str, Any]) -> str:
    """``results.md``: the summary, then ASR per topic and per style (rates and counts only)."""
    lines = [f"# Safety: {report['model']}", "", *summary_lines(report), ""]
    judge = report["judge"]
    if judge["model"]:
        lines += [f"Judge {judge['model']}, rubric {judge['rubric']} ({judge['pin']}).", ""]
    agree = report["agreement"]
    if agree["n"]:
        lines += [
            f"Judge and classifier agree on {agree['agree']}/{agree['n']} (kappa {agree['kappa']}).",
            "",
        ]
    strings = format_rate(report["asr_jailbreakbench_strings"])
    lines += [
        f"String matching alone (JailbreakBench's phrases): ASR {strings}; "
        f"classifier alone: {format_rate(report['asr_classifier'])}.",
        "",
    ]
    for title, key in (("topic", "by_topic"), ("style", "by_style")):
        lines += [f"| {title} | ASR [95% CI] (unsafe/n) |", "|---|---|"]
        lines += [f"| {name} | {format_rate(r)} |" for name, r in report["asr"][key].items()]
        lines.append("")
    return "\n".join(lines)


def read_predictions(run: str | Path) -> list[dict[str, Any]]:
    """The per-prompt records of a safety run folder.

    Raises:
        InputError: the folder has no results file, or a line is not JSON (naming the line).
    """
    path = storage.join(run, PREDICTIONS)  # a local folder or a URI
    if not storage.is_file(path):
        raise InputError(f"{run}: not a safety run folder (no {PREDICTIONS}); run `aloe eval safety` first")
    records = []
    for line_no, line in enumerate(storage.read_text(path).splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    return records


def write_predictions(path: str | Path, records: Sequence[Mapping[str, Any]]) -> None:
    """The per-prompt JSONL, readable by its owner only: it holds answers to harmful requests (on a URI
    one PUT, readable by whom the bucket's policy lets read it)."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_bytes(path, text.encode("utf-8"))
    if not storage.is_uri(path):
        Path(path).chmod(0o600)


def compare_runs(before: str | Path, after: str | Path, out: str | Path) -> dict[str, Any]:
    """Pair two safety runs prompt by prompt; write ``compare.json``, ``compare.md`` and ``compare.png``.

    Prompts present in only one run, or unjudged in either, are counted and left out. Runs and ``out``
    may be local folders or URIs.
    """
    a_records = {r["id"]: r for r in read_predictions(before)}
    b_records = {r["id"]: r for r in read_predictions(after)}
    shared = [i for i in a_records if i in b_records]
    paired = [i for i in shared if a_records[i]["unsafe"] is not None and b_records[i]["unsafe"] is not None]
    if not paired:
        raise InputError(f"{before} and {after}: no prompt judged in both runs (different prompt sets?)")
    a = [bool(a_records[i]["unsafe"]) for i in paired]
    b = [bool(b_records[i]["unsafe"]) for i in paired]
    test = mcnemar(a, b)
    t_before = asr_tables([a_records[i] for i in paired])
    t_after = asr_tables([b_records[i] for i in paired])
    result = {
        "before": str(before),
        "after": str(after),
        "paired": len(paired),
        "only_in_one_run": len(a_records) + len(b_records) - 2 * len(shared),
        "unjudged": len(shared) - len(paired),
        "asr_before": t_before["overall"],
        "asr_after": t_after["overall"],
        "difference": test.difference,  # ASR after - before (the flags are "unsafe")
        "fixed": test.a_only,  # unsafe before, safe after
        "regressed": test.b_only,  # safe before, unsafe after
        "mcnemar_p": test.p_value,
        "by_style": _deltas(t_before["by_style"], t_after["by_style"]),
        "by_topic": _deltas(t_before["by_topic"], t_after["by_topic"]),
        "held_out_styles": {"before": t_before["held_out_styles"], "after": t_after["held_out_styles"]},
        "trained_styles": {"before": t_before["trained_styles"], "after": t_after["trained_styles"]},
    }
    storage.makedirs(out)
    atomic_write_json(storage.join(out, "compare.json"), result)
    atomic_write_text(storage.join(out, "compare.md"), compare_markdown(result))
    atomic_write_bytes(
        storage.join(out, "compare.png"),
        compare_png(t_before, t_after, f"ASR (%) before vs after, n={len(paired)}"),
    )
    return result


def _deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {k: {"before": before[k], "after": after[k], "delta": _delta(before[k], after[k])} for k in before}


def _delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> float | None:
    if before["asr"] is None or after["asr"] is None:
        return None
    return after["asr"] - before["asr"]


def compare_markdown(result: Mapping[str, Any]) -> str:
    lines = [
        f"# Safety: {result['before']} -> {result['after']}",
        "",
        f"ASR {format_rate(result['asr_before'])} -> {format_rate(result['asr_after'])} over "
        f"{result['paired']} paired prompts; {result['fixed']} fixed, {result['regressed']} regressed, "
        f"exact McNemar p = {result['mcnemar_p']:.3g}.",
        "",
        "| style | before | after | delta (points) |",
        "|---|---|---|---|",
    ]
    for name, row in result["by_style"].items():
        delta = "" if row["delta"] is None else f"{100 * row['delta']:+.1f}"
        lines.append(f"| {name} | {format_rate(row['before'])} | {format_rate(row['after'])} | {delta} |")
    return "\n".join(lines) + "\n"
