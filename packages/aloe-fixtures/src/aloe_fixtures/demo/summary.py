"""The demo's summary page, ``OUT/index.html``: one look at the whole recipe's outcome.

Charts (data funnel, loss curves, accuracy, attack success rate) with the numbers beside them, and a
link to every report, card and run folder. Links and images are relative, so the folder can be moved
or served as it is; the charts the page makes itself go to ``OUT/summary/``.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from aloe_core.atomic import atomic_write_bytes, atomic_write_text
from aloe_fixtures.demo.layout import BENCHMARK, DemoLayout
from aloe_fixtures.demo.steps import Step, results

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f5;color:#1d2b1d}
header{background:#2f5d34;color:#fff;padding:18px 28px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.9}main{padding:8px 28px 28px;display:grid;gap:18px;
grid-template-columns:repeat(auto-fit,minmax(520px,1fr))}section{background:#fff;border-radius:8px;
padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.12)}h2{font-size:18px;margin:4px 0 10px;color:#2f5d34}
img{max-width:100%;height:auto}table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border-bottom:1px solid #e3e6e1;padding:3px 8px;text-align:left}th{background:#eef2ec}
td.n{text-align:right;font-variant-numeric:tabular-nums}a{color:#2a6f97}.wide{grid-column:1/-1}
.note{font-size:12px;color:#5b6b5b}.cols{display:grid;grid-template-columns:1fr 1fr;gap:16px}
h3{font-size:15px;margin:6px 0}
"""


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _link(layout: DemoLayout, path: Path, label: str | None = None) -> str:
    rel = os.path.relpath(path, layout.root)
    return f'<a href="{html.escape(rel)}">{html.escape(label or rel)}</a>'


def _img(layout: DemoLayout, path: Path, alt: str) -> str:
    if not path.is_file():
        return f'<p class="note">({html.escape(alt)}: not made)</p>'
    return f'<img src="{html.escape(os.path.relpath(path, layout.root))}" alt="{html.escape(alt)}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        text = f"{v:,.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
        return f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _data_section(layout: DemoLayout, charts: Path) -> str:
    from aloe_data.pipeline.report import funnel_plot_png

    parts = ["<section class='wide'><h2>Data: the curation funnel</h2><div class='cols'>"]
    for kind, run in (("sft", layout.data_sft), ("preference", layout.data_preference)):
        report = _read(run / "report.json")
        if report is None:
            continue
        png = charts / f"funnel-{kind}.png"
        atomic_write_bytes(png, funnel_plot_png(report))
        rows = [
            [f["stage"], f["rows_in"], f["rows_out"],
             ", ".join(f"{k} {v}" for k, v in sorted(f["dropped"].items())) or "-", f["seconds"]]
            for f in report["funnel"]
        ]  # fmt: skip
        parts.append(
            f"<div><h3>{kind}: {report['rows_in']:,} rows in, {report['rows_out']:,} kept "
            f"({_link(layout, run / 'report.html', 'report')})</h3>"
            f"{_img(layout, png, f'{kind} funnel')}"
            + _table(["stage", "in", "kept", "dropped (reason rows)", "seconds"], rows)
            + "</div>"
        )
    parts.append("</div>")
    release = _read(layout.release / "release.json")
    if release is not None:
        splits = release.get("splits", {})
        counts = ", ".join(f"{name} {info.get('rows', info) if isinstance(info, dict) else info:,}"
                           for name, info in splits.items())  # fmt: skip
        parts.append(
            f"<p>Release <b>{html.escape(str(release.get('name')))} "
            f"{html.escape(str(release.get('version')))}"
            f"</b>: {counts}. {_link(layout, layout.release / 'README.md', 'dataset card')}, "
            f"{_link(layout, layout.release / 'croissant.json', 'Croissant')}, "
            f"{_link(layout, layout.release, 'files')}.</p>"
        )
    return "".join(parts) + "</section>"


def _training_section(layout: DemoLayout) -> str:
    runs = [
        ("SFT", layout.sft),
        ("DPO general", layout.dpo / "general"),
        ("DPO safety", layout.dpo / "safety"),
    ]
    rows, images = [], []
    for label, run in runs:
        summary = _read(run / "summary.json") or {}
        first, final = summary.get("first_loss"), summary.get("final_loss")
        rows.append(
            [
                label,
                summary.get("steps", "-"),
                first if first is not None else "-",
                final if final is not None else "-",
                _link(layout, run / "model" / "README.md", "card"),
            ]
        )
        images.append(
            f"<div><b>{label}</b>{_img(layout, run / 'loss_curve.png', f'{label} loss curve')}</div>"
        )
    merged = _link(layout, layout.merged / "README.md", "card")
    return (
        "<section class='wide'><h2>Training: SFT, two-stage DPO, DARE-TIES merge</h2>"
        + _table(["run", "steps", "first loss", "final loss", "model"], rows)
        + f"<p>Merged model (DARE-TIES of SFT and DPO-safety over the base): {merged}.</p>"
        + "<div style='display:grid;grid-template-columns:repeat(3,1fr);gap:10px'>"
        + "".join(images)
        + "</div></section>"
    )


def _eval_section(layout: DemoLayout, charts: Path) -> str:
    from aloe_infer.eval.results import accuracy_chart

    runs: dict[str, Any] = {}
    for model, strategies in (
        ("sft", [None]),
        ("dpo", [None]),
        ("merged", ["zero-shot", "medprompt", "rag"]),
    ):
        for strategy in strategies:
            result = _read(results(layout, model, strategy))
            if result is not None:
                runs[f"{model} {strategy or result.get('strategy', '')}".strip()] = result
    if not runs:
        return ""
    png = charts / "accuracy.png"
    accuracy_chart(png, runs)
    rows = []
    for label, result in runs.items():
        score = result["benchmarks"].get(BENCHMARK, {})
        low, high = score.get("ci95", [None, None])
        rows.append(
            [
                label,
                score.get("accuracy"),
                f"[{low:.2f}, {high:.2f}]" if low is not None else "-",
                score.get("n"),
                score.get("invalid_rate"),
            ]
        )
    comparison = layout.eval("merged") / "comparison.md"
    unparsed = [
        label for label, r in runs.items() if r["benchmarks"].get(BENCHMARK, {}).get("invalid_rate") == 1
    ]
    note = (
        f" Every answer of {', '.join(unparsed)} is unparsed: the tiny model's chains of thought never end "
        "in an answer line, and an unparsed answer counts as wrong (as in lm-eval)."
        if unparsed
        else ""
    )
    return (
        "<section><h2>Evaluation: the embedded benchmark</h2>"
        + _img(layout, png, "accuracy")
        + _table(["model, strategy", "accuracy", "95% CI", "n", "unparsed"], rows)
        + f"<p>Strategies side by side with McNemar tests: {_link(layout, comparison, 'comparison')}. "
        "Random-weight tiny models answer near chance (1 in 4 to 5); the run shows the harness, not "
        f"skill.{note}</p>"
        "</section>"
    )


def _safety_section(layout: DemoLayout) -> str:
    compare = _read(layout.safety("compare") / "compare.json")
    if compare is None:
        return ""

    def pct(rate: dict[str, Any]) -> str:
        return "-" if rate.get("asr") is None else f"{100 * rate['asr']:.1f}% (n={rate.get('n')})"

    rows = [["all prompts", pct(compare["asr_before"]), pct(compare["asr_after"])]]
    for group in ("trained_styles", "held_out_styles"):
        rows.append([group.replace("_", " "), pct(compare[group]["before"]), pct(compare[group]["after"])])
    return (
        "<section><h2>Safety: attack success rate before and after the safety stage</h2>"
        + _img(layout, layout.safety("compare") / "compare.png", "ASR before vs after")
        + _table(["prompts", "before (DPO general)", "after (DPO safety)"], rows)
        + f"<p>{compare['fixed']} fixed, {compare['regressed']} regressed, exact McNemar p = "
        f"{compare['mcnemar_p']:.3g}. Held-out styles are never in the training pairs. "
        f"{_link(layout, layout.safety('compare') / 'compare.md', 'per style and topic')}, heatmaps: "
        f"{_link(layout, layout.safety('before') / 'heatmap.png', 'before')}, "
        f"{_link(layout, layout.safety('after') / 'heatmap.png', 'after')}.</p></section>"
    )


def _steps_section(layout: DemoLayout, steps: list[Step]) -> str:
    rows, total = [], 0.0
    for n, step in enumerate(steps, 1):
        marker = _read(layout.state / f"{step.name}.json") or {}
        seconds = marker.get("seconds")
        total += seconds or 0.0
        artifacts = ", ".join(_link(layout, p, label) for label, p in step.artifacts.items() if p.exists())
        commands = (
            "<br>".join(html.escape(" ".join(c)) for c in marker.get("commands", [])) or "(in the demo)"
        )
        rows.append(
            [
                n,
                step.name,
                f"<code>{commands}</code>",
                seconds if seconds is not None else "-",
                artifacts or "-",
            ]
        )
    return (
        "<section class='wide'><h2>Every step: its command, time and artifacts</h2>"
        + _table(["#", "step", "command", "seconds", "artifacts"], rows)
        + f"<p class='note'>Configs: {_link(layout, layout.configs, 'configs/')}; steps before this page: "
        f"{total:.0f} s.</p></section>"
    )


def write_summary(layout: DemoLayout, steps: list[Step]) -> dict[str, Any]:
    """Write ``OUT/index.html`` (and its charts under ``OUT/summary/``) from what the steps left."""
    charts = layout.root / "summary"
    charts.mkdir(parents=True, exist_ok=True)
    record = _read(layout.root / "demo.json") or {}
    size = record.get("size", {})
    body = "".join([
        _data_section(layout, charts),
        _training_section(layout),
        _eval_section(layout, charts),
        _safety_section(layout),
        _steps_section(layout, steps),
    ])  # fmt: skip
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>aloe demo</title>"
        f"<style>{CSS}</style></head><body><header><h1>aloe demo: the whole Aloe recipe</h1>"
        f"<p>Embedded corpus of {size.get('rows', '?')} rows{' (quick)' if size.get('quick') else ''}, "
        "tiny random-weight Llama, CPU only: curation, release, SFT, DPO (general, then safety), "
        "DARE-TIES merge, zero-shot / Medprompt / RAG evaluation, red-teaming.</p></header>"
        f"<main>{body}</main></body></html>\n"
    )
    atomic_write_text(layout.summary, page)
    return {"page": str(layout.summary)}
