"""The run report: ``report.json`` for machines and ``report.html`` for people.

It shows the funnel (rows per stage and why rows were dropped), and the distribution of text lengths per
source in the final output, computed as a Ray Data aggregation (bins are counted on the workers, so the
report costs the same at any scale).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray.data

from aloe_core import storage
from aloe_core.atomic import atomic_write_text
from aloe_core.manifest import Manifest, entry_files

# Length bins on a log scale: 0-15, 16-31, ... up to 2^20 characters.
LENGTH_BIN_EDGES = [0] + [2**k for k in range(4, 21)]


def length_bins(table: pa.Table) -> pa.Table:
    """(source, length bin) of every row of a record table (bins: :data:`LENGTH_BIN_EDGES`)."""
    rows = table.to_pylist()
    bins = []
    for row in rows:
        messages = row.get("messages") or row.get("prompt") or []
        length = sum(len(m["content"]) for m in messages) + len(row.get("chosen") or "")
        bins.append(min(int(math.log2(length)) - 3, len(LENGTH_BIN_EDGES) - 1) if length >= 16 else 0)
    return pa.table({"source": [r["source"] for r in rows], "bin": pa.array(bins, pa.int32())})


def length_histograms(ds: ray.data.Dataset) -> dict[str, dict[int, int]]:
    """{source: {bin_index: rows}} for the rows of ``ds``."""
    counts = ds.map_batches(length_bins, batch_format="pyarrow").groupby(["source", "bin"]).count()
    result: dict[str, dict[int, int]] = {}
    for row in counts.take_all():
        result.setdefault(row["source"], {})[int(row["bin"])] = int(row["count()"])
    return {source: dict(sorted(bins.items())) for source, bins in sorted(result.items())}


# Scores a stage writes into meta, with the histogram bin width used for each.
SCORE_BIN_WIDTHS = {"deita.score": 2.0, "deita.complexity": 0.25, "deita.quality": 0.25}


def _score_values(meta: dict[str, Any]) -> dict[str, float]:
    deita = meta.get("deita") or {}
    values: dict[str, float] = {}
    if "score" in deita:
        values["deita.score"] = float(deita["score"])
    for key in ("complexity", "quality"):  # per-turn lists: their mean describes the row
        turns = deita.get(key)
        if turns:
            values[f"deita.{key}"] = sum(turns) / len(turns)
    return values


def score_bins(table: pa.Table) -> pa.Table:
    """(metric, bin) of every score found in the rows' meta (bin widths: :data:`SCORE_BIN_WIDTHS`)."""
    metrics, bins = [], []
    for text in table.column("meta").to_pylist():
        for metric, value in _score_values(json.loads(text) if text else {}).items():
            metrics.append(metric)
            bins.append(math.floor(value / SCORE_BIN_WIDTHS[metric]))
    return pa.table({"metric": pa.array(metrics, pa.string()), "bin": pa.array(bins, pa.int32())})


def score_histograms(ds: ray.data.Dataset) -> dict[str, dict[float, int]]:
    """{metric: {bin_start: rows}} for the scores found in rows' meta (empty when nothing was scored)."""
    counts = ds.map_batches(score_bins, batch_format="pyarrow").groupby(["metric", "bin"]).count()
    result: dict[str, dict[float, int]] = {}
    for row in counts.take_all():
        start = row["bin"] * SCORE_BIN_WIDTHS[row["metric"]]
        result.setdefault(row["metric"], {})[start] = int(row["count()"])
    return {metric: dict(sorted(bins.items())) for metric, bins in sorted(result.items())}


def funnel(manifest: Manifest) -> list[dict[str, Any]]:
    """Rows in and out, drops by reason, counters and seconds of every finished stage, in order."""
    return [
        {
            "stage": s["stage"],
            "rows_in": s["rows_in"],
            "rows_out": s["rows_out"],
            "dropped": s["dropped"],
            "counters": s.get("counters", {}),
            "seconds": s["seconds"],
        }
        for s in manifest.stages.values()
    ]


def build_report(out_dir: str | Path, manifest: Manifest) -> dict[str, Any]:
    stages = list(manifest.stages.values())
    funnel_rows = funnel(manifest)
    histograms: dict[str, Any] = {}
    scores: dict[str, Any] = {}
    if stages and stages[-1]["files"]:
        final = stages[-1]
        paths, fs = storage.for_arrow_many(entry_files(out_dir, final["stage"], final, nested=True))
        histograms = length_histograms(ray.data.read_parquet(paths, filesystem=fs))
        scores = score_histograms(ray.data.read_parquet(paths, filesystem=fs))
    return {
        "kind": manifest.data.get("kind"),
        "config_source": manifest.data.get("config_source"),
        "funnel": funnel_rows,
        "rows_in": funnel_rows[0]["rows_in"] if funnel_rows else 0,
        "rows_out": funnel_rows[-1]["rows_out"] if funnel_rows else 0,
        "length_bin_edges": LENGTH_BIN_EDGES,
        "length_histograms": histograms,
        "score_histograms": scores,
    }


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def funnel_plot_png(report: dict[str, Any]) -> bytes:
    """Kept and dropped rows per stage of ``report["funnel"]`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    funnel = report["funnel"]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(funnel) + 1.2))
    names = [f["stage"] for f in funnel][::-1]
    ax.barh(names, [f["rows_out"] for f in funnel][::-1], color="#4c8c4a", label="kept")
    ax.barh(
        names,
        [sum(f["dropped"].values()) for f in funnel][::-1],
        left=[f["rows_out"] for f in funnel][::-1],
        color="#d9822b",
        label="dropped",
    )
    ax.set_xlabel("rows")
    ax.legend(loc="lower right")
    ax.set_title("Rows per stage")
    png = _png(fig)
    plt.close(fig)
    return png


def length_plot_png(report: dict[str, Any]) -> bytes:
    """Rows per length bin and source (``report["length_histograms"]``, ``["length_bin_edges"]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    edges = report["length_bin_edges"]
    for source, bins in report["length_histograms"].items():
        xs = sorted(int(b) for b in bins)
        ax.plot(
            [edges[x] if x < len(edges) else edges[-1] for x in xs],
            [bins[x] for x in xs],
            marker="o",
            label=source,
        )
    ax.set_xscale("symlog")
    ax.set_xlabel("characters per row (bin start)")
    ax.set_ylabel("rows")
    ax.set_title("Text length per source (final output)")
    if report["length_histograms"]:
        ax.legend(fontsize="small")
    png = _png(fig)
    plt.close(fig)
    return png


def score_plot_png(report: dict[str, Any]) -> bytes:
    """One histogram per score metric of ``report["score_histograms"]`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["score_histograms"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, (metric, bins) in zip(axes[0], metrics.items(), strict=True):
        starts = [float(b) for b in bins]
        ax.bar(starts, list(bins.values()), width=SCORE_BIN_WIDTHS[metric], align="edge", color="#4c72b0")
        ax.set_title(metric)
        ax.set_xlabel("score")
        ax.set_ylabel("rows")
    png = _png(fig)
    plt.close(fig)
    return png


def _html(report: dict[str, Any]) -> str:
    rows = []
    for f in report["funnel"]:
        dropped = ", ".join(f"{html.escape(k)}: {v}" for k, v in f["dropped"].items()) or "none"
        rows.append(
            f"<tr><td>{html.escape(f['stage'])}</td><td>{f['rows_in']}</td><td>{f['rows_out']}</td>"
            f"<td>{dropped}</td><td>{f['seconds']:.1f}</td></tr>"
        )
    scores = ""
    if report["score_histograms"]:
        image = _b64(score_plot_png(report))
        scores = f'<h2>Scores</h2>\n<p><img alt="score histograms" src="data:image/png;base64,{image}"></p>\n'
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>aloe data run report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:6px;text-align:left}}
th{{background:#f4f4f4}}</style></head><body>
<h1>aloe data run</h1>
<p>{report["rows_in"]} rows in, {report["rows_out"]} rows out ({html.escape(str(report["kind"]))} records;
config {html.escape(str(report["config_source"] or "-"))}).</p>
<h2>Funnel</h2>
<table><tr><th>stage</th><th>rows in</th><th>rows out</th><th>dropped (reason: rows)</th><th>seconds</th></tr>
{"".join(rows)}</table>
<p><img alt="rows per stage" src="data:image/png;base64,{_b64(funnel_plot_png(report))}"></p>
<h2>Lengths</h2>
<p><img alt="length histograms" src="data:image/png;base64,{_b64(length_plot_png(report))}"></p>
{scores}</body></html>
"""


def write_report(out_dir: str | Path, manifest: Manifest) -> dict[str, str | Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (atomically; a folder or an
    object-store URI) and return their paths."""
    out_dir = storage.location(out_dir)
    report = build_report(out_dir, manifest)
    paths = {"json": storage.join(out_dir, "report.json"), "html": storage.join(out_dir, "report.html")}
    if not storage.is_uri(out_dir):
        paths = {k: Path(v) for k, v in paths.items()}
    atomic_write_text(paths["json"], json.dumps(report, indent=2) + "\n")
    atomic_write_text(paths["html"], _html(report))
    return paths
