"""Training metrics: one JSON line per logged step (rank 0 writes), and a loss-curve PNG at the end.

``metrics.jsonl`` lines are ``{"step": N, ...}`` for training steps (``loss``, ``lr``, ``grad_norm``,
``tokens_per_s``, ``padding_efficiency``, ...) and ``{"step": N, "eval_loss": ...}`` for evaluations.
A resumed run first drops the lines of steps after the checkpoint it resumes from (the failed attempt
logged them, the resumed run logs them again), so the file always describes one consistent run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSONL on rank 0; every other rank holds a no-op instance."""

    def __init__(self, path: Path, *, rank: int, resume_step: int = 0) -> None:
        self.path = Path(path)
        self.enabled = rank == 0
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = (
                [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step] if resume_step else []
            )
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics file (missing file: none); a torn last line from a crash is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_loss_curve(metrics_path: Path, png_path: Path, title: str = "training loss") -> Path | None:
    """Train loss per step (and eval loss where measured) as a PNG; None when nothing was logged or
    matplotlib (the ``plots`` extra) is not installed: a training node needs no plotting library."""
    try:
        import matplotlib
    except ImportError:
        logging.getLogger("aloe.train").info(
            "no loss curve: matplotlib is not installed (pip install 'aloe-train[plots]')"
        )
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and math.isfinite(r["loss"])]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    if not train:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(*zip(*train, strict=True), label="train loss", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss", linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per trained token")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path)
    plt.close(fig)
    return png_path


class Throughput:
    """Tokens per second: per step, and the mean over the run without its first step.

    The first step of a process pays for data-pipeline startup and allocator warm-up; counting it would
    make short runs look several times slower than they are (it is still logged as its own step).
    """

    def __init__(self) -> None:
        self.tokens = 0.0
        self.seconds = 0.0
        self.steps = 0

    def add(self, tokens: float, seconds: float) -> float:
        """Record one step; returns that step's tokens/s."""
        self.steps += 1
        if self.steps > 1:
            self.tokens += tokens
            self.seconds += seconds
        return tokens / seconds if seconds > 0 else 0.0

    @property
    def mean(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0
