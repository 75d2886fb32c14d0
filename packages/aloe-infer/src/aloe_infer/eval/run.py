"""One evaluation run: load benchmarks, run the strategy, write ``RUN/``.

``RUN/`` holds ``results.json`` (scores, aggregates, model, strategy, config, code version),
``predictions.jsonl`` (one line per question), ``results.md`` and ``accuracy.png``. Files are written
atomically, results last, so a run folder with ``results.json`` is complete.
"""

from __future__ import annotations

import json
import logging
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aloe_core.atomic import atomic_write_json, atomic_write_text, remove_debris
from aloe_core.errors import InputError
from aloe_infer.engine import check_model_dir
from aloe_infer.eval.benchmarks import load_benchmarks
from aloe_infer.eval.config import EvalConfig
from aloe_infer.eval.prompts import PromptRenderer
from aloe_infer.eval.results import (
    accuracy_chart,
    aggregates,
    benchmark_scores,
    markdown_table,
    write_predictions,
)
from aloe_infer.eval.strategies import STRATEGIES, RunContext, medprompt

logger = logging.getLogger(__name__)

RESULTS = "results.json"
PREDICTIONS = "predictions.jsonl"


def _model_len(model: Path, configured: int | None) -> int:
    data = json.loads((model / "config.json").read_text(encoding="utf-8"))
    native = int(data.get("max_position_embeddings") or 0)
    if configured is not None:
        return min(configured, native) if native else configured
    if not native:
        raise InputError(f"{model}/config.json: no max_position_embeddings; set engine.max_model_len")
    return native


def _check_weights(model: Path) -> None:
    if not any(model.glob("*.safetensors")):
        raise InputError(f"{model}: no *.safetensors weights in the model folder (safetensors only)")


def run_eval(config: EvalConfig, out: str | Path, *, engines: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``config`` and write ``out``; returns the results. ``engines`` injects loaded models
    (``generate``: an Engine, ``score``: a NextTokenScorer) for local mode; tests share one.

    Raises:
        InputError: a missing benchmark folder or model, a model without weights, a benchmark without
            valid items.
    """
    from transformers import AutoTokenizer

    out = Path(out)
    model = check_model_dir(config.engine.model)
    _check_weights(model)
    benchmarks, excluded = load_benchmarks(config.benchmarks, config.split, config.names, config.limit)
    out.mkdir(parents=True, exist_ok=True)
    remove_debris(out)
    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=config.engine.trust_remote_code)
    ctx = RunContext(
        config=config,
        tokenizer=tokenizer,
        max_model_len=_model_len(model, config.engine.max_model_len),
        renderer=PromptRenderer(tokenizer, config.prompts),
        engines=engines or {},
    )
    items = [item for bench in benchmarks for item in bench.items]
    logger.info(
        "eval: %s on %d questions of %s (%s)",
        config.strategy,
        len(items),
        ", ".join(f"{b.name} {len(b.items)}" for b in benchmarks),
        config.engine.model,
    )
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if config.strategy == "medprompt":
        predictions, extra = medprompt(items, ctx, benchmarks)
    else:
        predictions = STRATEGIES[config.strategy](items, ctx)
    seconds = time.perf_counter() - started
    scores = benchmark_scores(benchmarks, predictions)
    results = {
        "model": str(config.engine.model),
        "engine": config.engine.type,
        "strategy": config.strategy,
        "split": config.split,
        "chat_template": config.prompts.chat_template,
        "benchmarks": scores,
        "aggregates": aggregates(scores),
        "excluded": excluded,
        "questions": len(items),
        "seconds": seconds,
        "questions_per_second": len(items) / seconds if seconds else 0.0,
        "config": config.model_dump(mode="json"),
        "code_version": version("aloe-infer"),
        **extra,
    }
    write_predictions(out / PREDICTIONS, predictions)
    atomic_write_text(out / "results.md", markdown_table(results))
    accuracy_chart(out / "accuracy.png", {config.strategy: results})
    atomic_write_json(out / RESULTS, results)
    logger.info("eval: wrote %s (%.1f s, %.2f questions/s)", out, seconds, results["questions_per_second"])
    return results
