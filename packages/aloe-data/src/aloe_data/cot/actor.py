"""The Ray Data actor of the ``cot`` stage: one engine per actor, results checkpointed in chunks.

Ray Data builds one :class:`CotActor` per actor of the pool and calls it on Arrow batches. A call:

1. looks the batch's MCQA rows up in the chunk store (rows finished by an earlier, killed run or by an
   earlier attempt of this batch are not generated again);
2. runs :class:`~aloe_data.cot.generate.CotGenerator` on the rest and writes their results as one chunk;
3. returns the batch with the verified reasoning as the assistant message, ``meta["cot"]`` set, and
   ``drop_reason`` ``cot_unverified`` / ``cot_error`` (``cot_not_applicable`` for rows without an MCQA
   item when ``non_mcqa: drop``).

The engine is loaded on the first batch that needs generation, so a resumed job whose rows are all in
chunks starts no engine. If the engine dies (vLLM's EngineDeadError) the actor process exits: Ray Data
restarts the actor (``max_restarts=-1`` is its default for actor pools) and retries the batch on it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from aloe_data.cot.chunks import ChunkStore
from aloe_data.cot.config import CotConfig
from aloe_data.cot.generate import CotGenerator
from aloe_data.pipeline.annotations import with_annotations
from aloe_data.pipeline.columns import set_column, update_meta
from aloe_data.templates import PromptTemplate
from aloe_infer.engine import Engine, load_engine

logger = logging.getLogger(__name__)

META_KEY = "cot"
UNVERIFIED = "cot_unverified"
ERROR = "cot_error"
NOT_APPLICABLE = "cot_not_applicable"
ENGINE_DIED_EXIT_CODE = 70


class CotActor:
    """See the module docstring. ``engine`` injects a loaded engine (tests, benchmarks)."""

    def __init__(
        self, config: CotConfig, template: PromptTemplate, chunk_dir: str, engine: Engine | None = None
    ) -> None:
        self.config = config
        self.template = template
        self.store = ChunkStore(chunk_dir)
        self._engine = engine

    def engine(self) -> Engine:
        if self._engine is None:
            config = self.config.engine
            if config.type == "vllm" and config.tensor_parallel_size == 1:
                # Run vLLM's engine core inside this actor instead of a child process: nothing to leak
                # when Ray kills the actor, and it starts faster (measured on CPU).
                os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            if self.config.num_gpus == 0 and config.type == "hf":
                import torch

                torch.set_num_threads(max(1, int(self.config.cpus_per_actor)))
            self._engine = load_engine(config)
        return self._engine

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.to_pylist()
        wanted = [r for r in rows if r.get("drop_reason") is None and r.get("mcqa") is not None]
        results = self.store.get(r["id"] for r in wanted)
        todo = [r for r in wanted if r["id"] not in results]
        if todo:
            engine = self.engine()
            try:
                fresh = CotGenerator(engine, self.config, self.template).run(todo)
            except Exception as exc:
                if engine.needs_restart(exc):
                    logger.error("generation engine died (%s); exiting so Ray restarts this actor", exc)
                    os._exit(ENGINE_DIED_EXIT_CODE)
                raise
            self.store.put(fresh)
            results.update(fresh)
        return annotate(table, rows, results, self.config, self.template.id)


def annotate(
    table: pa.Table,
    rows: list[dict[str, Any]],
    results: Mapping[str, Mapping[str, Any]],
    config: CotConfig,
    prompt_id: str,
) -> pa.Table:
    """``table`` with each row's result applied (messages, meta, drop reason and detail)."""
    messages = [row["messages"] for row in rows]
    metas: list[dict[str, Any] | None] = [None] * len(rows)
    reasons: list[str | None] = [None] * len(rows)
    details: list[str | None] = [None] * len(rows)
    for i, row in enumerate(rows):
        if row.get("drop_reason") is not None:
            continue
        if row.get("mcqa") is None:
            if config.non_mcqa == "drop":
                reasons[i], details[i] = NOT_APPLICABLE, "no MCQA item to verify a chain of thought against"
            continue
        result = results[row["id"]]
        metas[i] = _meta(result, config, prompt_id)
        if result["status"] == "verified":
            messages[i] = _with_answer(row["messages"], result["text"])
        elif result["status"] == "error":
            reasons[i], details[i] = ERROR, result["error"]
        else:
            reasons[i], details[i] = UNVERIFIED, _attempts_detail(result["attempts"])
    table = update_meta(set_column(table, "messages", messages), META_KEY, metas)
    return with_annotations(table, reasons, details)


def _meta(result: Mapping[str, Any], config: CotConfig, prompt_id: str) -> dict[str, Any]:
    meta = {
        "status": result["status"],
        "answer": result["answer"],
        "forced": result["forced"],
        "attempts": result["attempts"],
        "model": config.engine.model,
        "engine": config.engine.type,
        "prompt": prompt_id,
    }
    if result["status"] == "unverified":
        meta["last_output"] = result["text"]
    if result["error"]:
        meta["error"] = result["error"]
    return meta


def _with_answer(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    """``messages`` with the last assistant message replaced by ``text`` (appended if there is none)."""
    out = [dict(m) for m in messages]
    last = max((i for i, m in enumerate(out) if m["role"] == "assistant"), default=None)
    if last is None:
        out.append({"role": "assistant", "content": text})
    else:
        out[last]["content"] = text
    return out


def _attempts_detail(attempts: list[Mapping[str, Any]]) -> str:
    """``"3 attempts: wrong (C), no_answer, ambiguous (A, C)"``."""
    parts = []
    for attempt in attempts:
        letters = attempt.get("letters") or []
        parts.append(f"{attempt['outcome']} ({', '.join(letters)})" if letters else attempt["outcome"])
    return f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}: " + ", ".join(parts)
