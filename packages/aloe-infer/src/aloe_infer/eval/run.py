"""One evaluation run: load benchmarks, run the strategy, write ``RUN/``.

``RUN/`` holds ``results.json`` (scores, aggregates, model, strategy, config, code version),
``predictions.jsonl`` (one line per question), ``results.md`` and ``accuracy.png``. Files are written
atomically, results last, so a run folder with ``results.json`` is complete. Several strategies
(:func:`run_strategies`) make one such folder each under ``RUN/`` and their comparison beside them.
``RUN`` may be a URI (``s3://bucket/eval``): each file is then one PUT (:mod:`aloe_core.atomic`),
``results.json`` still last.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, atomic_write_text, remove_debris
from aloe_core.errors import ConfigError, InputError
from aloe_infer.engine import check_model_dir, model_files
from aloe_infer.eval.benchmarks import Benchmark, EvalItem, load_benchmarks
from aloe_infer.eval.config import WITHOUT_RETRIEVAL, EvalConfig
from aloe_infer.eval.prompts import PromptRenderer
from aloe_infer.eval.results import (
    accuracy_chart,
    aggregates,
    benchmark_scores,
    markdown_table,
    write_predictions,
)
from aloe_infer.eval.retrieval import Retrieved, open_retriever, retrieve
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


def _check_weights(model: str | Path) -> None:
    """On the model's own storage: the driver's copy of a URI model has no weights (:func:`_setup`)."""
    if not storage.list_files(model, "*.safetensors"):
        raise InputError(f"{model}: no *.safetensors weights in the model folder (safetensors only)")


@dataclass
class _Setup:
    """What every strategy of a run shares, made before any model work (so bad input fails first)."""

    benchmarks: list[Benchmark]
    excluded: dict[str, str]
    items: list[EvalItem]
    tokenizer: Any
    max_model_len: int
    retrieved: Retrieved | None


def _setup(config: EvalConfig) -> _Setup:
    from transformers import AutoTokenizer

    _check_weights(check_model_dir(config.engine.model))
    model = model_files(config.engine.model, weights=False)  # the engines fetch the weights themselves
    benchmarks, excluded = load_benchmarks(config.benchmarks, config.split, config.names, config.limit)
    items = [item for bench in benchmarks for item in bench.items]
    retrieved = None
    if any(s in WITHOUT_RETRIEVAL for s in config.strategies):
        retrieved = retrieve(open_retriever(config.rag), benchmarks, config.rag)
    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=config.engine.trust_remote_code)
    max_model_len = _model_len(model, config.engine.max_model_len)
    return _Setup(benchmarks, excluded, items, tokenizer, max_model_len, retrieved)


def run_eval(config: EvalConfig, out: str | Path, *, engines: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``config`` (one strategy) and write ``out``; returns the results. ``engines`` injects loaded
    models (``generate``: an Engine, ``score``: a NextTokenScorer) for local mode; tests share one.

    Raises:
        InputError: a missing benchmark folder or model, a model without weights, a benchmark without
            valid items, a missing index or one built with another embedding model (rag strategies).
        ConfigError: ``config`` lists several strategies (:func:`run_strategies` runs those).
    """
    if len(config.strategies) != 1:
        raise ConfigError(f"strategy: run_eval runs one strategy, got {list(config.strategies)}")
    return _run_one(config, _setup(config), storage.location(out), engines or {})


def run_strategies(
    config: EvalConfig, out: str | Path, *, engines: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Every strategy of ``config`` on the same questions; returns ``{strategy: results}``.

    One strategy writes ``out`` as :func:`run_eval` does. Several write one run folder each,
    ``out/<strategy>/``, then the comparison of them all in ``out`` (``comparison.json``,
    ``comparison.md``: accuracy per benchmark side by side, paired McNemar tests of ``rag`` against
    ``zero-shot`` and ``rag-cot`` against ``cot`` when both ran, of any other strategy against the first).
    Benchmarks, the tokenizer and the retrieval are loaded once for all of them.

    Raises:
        InputError: as :func:`run_eval`, before any strategy runs.
    """
    from aloe_infer.eval.compare import compare_runs

    out, setup = storage.location(out), _setup(config)
    strategies = config.strategies
    if len(strategies) == 1:
        return {strategies[0]: _run_one(config, setup, out, engines or {})}
    runs = {}
    for strategy in strategies:
        one = config.model_copy(update={"strategy": (strategy,)})
        runs[strategy] = _run_one(one, setup, storage.location(storage.join(out, strategy)), engines or {})
    compare_runs([storage.join(out, s) for s in strategies], out, pairs=_pairs(strategies))
    return runs


def _pairs(strategies: tuple[str, ...]) -> list[tuple[int, int]]:
    """(base, run) index pairs: each retrieval strategy against its strategy without retrieval when that
    ran too, every other strategy against the first."""
    pairs = []
    for n, strategy in enumerate(strategies):
        base = WITHOUT_RETRIEVAL.get(strategy)
        if base in strategies:
            pairs.append((strategies.index(base), n))
        elif n > 0:
            pairs.append((0, n))
    return pairs


def _run_one(config: EvalConfig, setup: _Setup, out: str | Path, engines: dict[str, Any]) -> dict[str, Any]:
    (strategy,) = config.strategies
    storage.makedirs(out)
    remove_debris(out)
    ctx = RunContext(
        config=config,
        tokenizer=setup.tokenizer,
        max_model_len=setup.max_model_len,
        renderer=PromptRenderer(setup.tokenizer, config.prompts),
        engines=engines,
        retrieved=setup.retrieved if strategy in WITHOUT_RETRIEVAL else None,
    )
    items = setup.items
    logger.info(
        "eval: %s on %d questions of %s (%s)",
        strategy,
        len(items),
        ", ".join(f"{b.name} {len(b.items)}" for b in setup.benchmarks),
        config.engine.model,
    )
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if strategy == "medprompt":
        predictions, extra = medprompt(items, ctx, setup.benchmarks)
    else:
        predictions = STRATEGIES[strategy](items, ctx)
    if ctx.retrieved is not None:
        extra["retrieval"] = ctx.retrieved.summary
    seconds = time.perf_counter() - started
    scores = benchmark_scores(setup.benchmarks, predictions)
    results = {
        "model": str(config.engine.model),
        "engine": config.engine.type,
        "strategy": strategy,
        "split": config.split,
        "chat_template": config.prompts.chat_template,
        "benchmarks": scores,
        "aggregates": aggregates(scores),
        "excluded": setup.excluded,
        "questions": len(items),
        "seconds": seconds,
        "questions_per_second": len(items) / seconds if seconds else 0.0,
        "config": config.model_dump(mode="json"),
        "code_version": version("aloe-infer"),
        **extra,
    }
    write_predictions(storage.join(out, PREDICTIONS), predictions)
    atomic_write_text(storage.join(out, "results.md"), markdown_table(results))
    accuracy_chart(storage.join(out, "accuracy.png"), {strategy: results})
    atomic_write_json(storage.join(out, RESULTS), results)
    logger.info("eval: wrote %s (%.1f s, %.2f questions/s)", out, seconds, results["questions_per_second"])
    return results
