"""Statistics of a release, gathered shard by shard while it is written: rows and tokens per split,
source and task; text lengths per source and DEITA scores (the run report's bins, so a release's
histograms read like its run's report); and the PNG charts of the card (the report's plots).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_data.pipeline.report import (
    LENGTH_BIN_EDGES,
    SCORE_BIN_WIDTHS,
    funnel_plot_png,
    length_bins,
    length_plot_png,
    score_bins,
    score_plot_png,
)

NO_TASK = "-"  # the task label of rows whose kind has no task (preference pairs)


def row_texts(table: pa.Table) -> tuple[np.ndarray, pa.Array]:
    """Every text of every row (message contents; for pairs also chosen and rejected) with its row
    index, so per-row sums are one ``bincount``."""
    column = "messages" if "messages" in table.column_names else "prompt"
    messages = table.column(column).combine_chunks()
    parents = [np.asarray(pc.list_parent_indices(messages))]
    texts = [pc.struct_field(pc.list_flatten(messages), "content")]
    for extra in ("chosen", "rejected"):
        if extra in table.column_names:
            parents.append(np.arange(table.num_rows))
            texts.append(table.column(extra).combine_chunks())
    return np.concatenate(parents), pa.concat_arrays([t.cast(pa.string()) for t in texts])


class TokenCounter:
    """Tokens per row: a Hugging Face tokenizer's (no special tokens, no chat template), or words."""

    def __init__(self, tokenizer: str | None) -> None:
        self.unit = "whitespace-separated words" if tokenizer is None else f"tokens of `{tokenizer}`"
        self._tokenizer = None
        if tokenizer is not None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer)

    def per_row(self, table: pa.Table) -> np.ndarray:
        parents, texts = row_texts(table)
        if self._tokenizer is None:
            counts = np.asarray(pc.list_value_length(pc.utf8_split_whitespace(texts)).fill_null(0))
        else:
            values = [t or "" for t in texts.to_pylist()]
            ids = self._tokenizer(values, add_special_tokens=False)["input_ids"] if values else []
            counts = np.array([len(i) for i in ids], dtype=np.int64)
        return np.bincount(parents, weights=counts, minlength=table.num_rows).astype(np.int64)


class ReleaseStats:
    """Accumulates the statistics of the rows written to each split."""

    def __init__(self, tokens: TokenCounter) -> None:
        self.tokens = tokens
        self.groups: Counter[tuple[str, str, str, str]] = Counter()  # (split, source, task, what) -> n
        self.lengths: Counter[tuple[str, int]] = Counter()
        self.scores: Counter[tuple[str, int]] = Counter()

    def add(self, split: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        tokens = self.tokens.per_row(table)
        sources = table.column("source").to_pylist()
        tasks = table.column("task").to_pylist() if "task" in table.column_names else [NO_TASK] * len(sources)
        for source, task, n in zip(sources, tasks, tokens.tolist(), strict=True):
            self.groups[(split, source, task, "rows")] += 1
            self.groups[(split, source, task, "tokens")] += n
        bins = length_bins(table)
        self.lengths.update(
            zip(bins.column("source").to_pylist(), bins.column("bin").to_pylist(), strict=True)
        )
        scored = score_bins(table)
        self.scores.update(
            zip(scored.column("metric").to_pylist(), scored.column("bin").to_pylist(), strict=True)
        )

    def as_dict(self) -> dict[str, Any]:
        """``stats/stats.json``: totals per split, rows and tokens per (split, source, task), histograms."""
        keys = sorted({k[:3] for k in self.groups})
        table = [
            {
                "split": sp,
                "source": so,
                "task": ta,
                "rows": self.groups[(sp, so, ta, "rows")],
                "tokens": self.groups[(sp, so, ta, "tokens")],
            }
            for sp, so, ta in keys
        ]
        splits: dict[str, dict[str, int]] = {}
        for row in table:
            total = splits.setdefault(row["split"], {"rows": 0, "tokens": 0})
            total["rows"] += row["rows"]
            total["tokens"] += row["tokens"]
        lengths: dict[str, dict[int, int]] = {}
        for (source, b), n in sorted(self.lengths.items()):
            lengths.setdefault(source, {})[int(b)] = n
        scores: dict[str, dict[float, int]] = {}
        for (metric, b), n in sorted(self.scores.items()):
            scores.setdefault(metric, {})[b * SCORE_BIN_WIDTHS[metric]] = n
        return {
            "token_unit": self.tokens.unit,
            "splits": splits,
            "by_source_task": table,
            "length_bin_edges": LENGTH_BIN_EDGES,
            "length_histograms": lengths,
            "score_histograms": scores,
        }


def charts(stats: dict[str, Any], funnel: list[dict[str, Any]]) -> dict[str, bytes]:
    """``stats/*.png``: the pipeline funnel, lengths per source and (when the run scored rows) scores."""
    out = {"funnel.png": funnel_plot_png({"funnel": funnel}), "lengths.png": length_plot_png(stats)}
    if stats["score_histograms"]:
        out["scores.png"] = score_plot_png(stats)
    return out
