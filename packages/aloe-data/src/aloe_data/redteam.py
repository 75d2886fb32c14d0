"""Red-teaming preference pairs for the safety DPO stage (`aloe data redteam-pairs`).

As Egida's DPO sets are built: every prompt of the red-teaming set is answered by the model, the
answers are judged (:mod:`aloe_infer.safety`), and each answer judged unsafe becomes a pair whose
``rejected`` side is the model's own answer and whose ``chosen`` side is a safe answer that refuses and
redirects to care (the prompt set's ``safe_responses`` for the topic, one picked per prompt by a hash of
its id). Rows are aloe ``preference`` records with ``meta.category: safety`` (plus topic, style, prompt
id and the verdict), so a DPO stage selects them with ``data.where: {category: [safety]}``.

``OUT/`` is a single-stage output that :func:`aloe_core.shards.resolve_inputs` (and so ``aloe train
dpo``) reads directly::

    manifest.json                 kind: preference; one stage entry (rows in = prompts, out = pairs,
                                  dropped by reason); written last
    part-00000-0000.parquet       the pairs
    _dropped/part-00000.parquet   prompts that gave no pair, with drop_reason:
                                    held_out_styles   the prompt's style is held out (never trained on)
                                    rejected          the answer is not one the `rejected` rule keeps
                                    no_answer         the engine gave no answer, or an empty one
    eval/                         the safety run the answers came from (unless --eval-run names one)

``rejected: unsafe`` (the default, Egida's rule) keeps answers whose final verdict is unsafe;
``not_refused`` keeps every answer that is not a clear refusal (also empty compliance and off-topic
answers: for a safety stage a refusal beats those too, and a model that never writes on-topic text,
like a random-weight test model, still yields pairs).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from aloe_core.atomic import remove_debris
from aloe_core.config import StrictModel, config_hash
from aloe_core.manifest import MANIFEST, Manifest
from aloe_core.schemas import dumps_meta, record_id, schema_for, stable_id
from aloe_data.pipeline.annotations import DROP_DETAIL, DROP_REASON
from aloe_data.pipeline.runner import stage_entry
from aloe_data.pipeline.writer import DROPPED_DIR, write_shards
from aloe_infer.safety.prompts import PromptSet, load_prompt_set
from aloe_infer.safety.report import read_predictions
from aloe_infer.safety.run import SafetyConfig, run_safety_eval

logger = logging.getLogger("aloe.data")

STAGE = "redteam-pairs"
CATEGORY = "safety"
REFUSED = frozenset({"empty", "refusal"})


class RedteamPairsConfig(StrictModel):
    """``aloe data redteam-pairs``: how answers are made and judged (``eval``), and which become pairs."""

    eval: SafetyConfig
    rejected: Literal["unsafe", "not_refused"] = "unsafe"  # see the module docstring
    source: str = Field("redteam", min_length=1)  # the rows' `source`
    shard_rows: int = Field(50_000, ge=1)


def _keeps(record: dict[str, Any], rule: str) -> bool:
    """Whether the answer becomes a pair's rejected side under ``rule``."""
    if record["unsafe"] or rule == "unsafe":
        return bool(record["unsafe"])
    judge = record.get("judge") or {}
    if judge.get("status") == "parsed" and judge.get("refusal") == 1:  # StrongREJECT saw a refusal
        return False
    return record["classifier"]["label"] not in REFUSED


def _drop_reason(record: dict[str, Any], held_out: set[str], rule: str) -> str | None:
    if record["style"] in held_out or record.get("held_out"):
        return "held_out_styles"
    if record["answer"] is None or not record["answer"].strip():
        return "no_answer"
    return None if _keeps(record, rule) else "rejected"


def _messages(record: dict[str, Any], system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": record["prompt"]}
    ]


def pair_rows(records: list[dict[str, Any]], prompt_set: PromptSet, config: RedteamPairsConfig) -> pa.Table:
    """One annotated preference row per prompt: a pair, or a row with ``drop_reason`` set."""
    held_out = set(config.eval.prompts.held_out_styles)
    system = config.eval.generation.system_prompt
    rows = []
    for record in records:
        reason = _drop_reason(record, held_out, config.rejected)
        safe = prompt_set.safe_responses_for(record["topic"])
        chosen = safe[int(stable_id("chosen", record["id"])[:8], 16) % len(safe)]
        rejected = (record["answer"] or "").strip()
        if reason is None and rejected == chosen.strip():
            reason = "rejected"  # the model already gives the safe answer: no preference to learn
        prompt = _messages(record, system)
        content = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        judge = record.get("judge") or {}
        meta = {
            "category": CATEGORY,
            "topic": record["topic"],
            "style": record["style"],
            "prompt_id": record["id"],
            "verdict_by": record["verdict_by"],
            "classifier_label": (record.get("classifier") or {}).get("label"),
            "judge_score": judge.get("score"),
            "model": config.eval.model.model,
            "prompt_set": prompt_set.source,
        }
        rows.append(
            {
                "id": record_id("preference", config.source, content, record["id"]),
                "source": config.source,
                **content,
                "meta": dumps_meta(meta),
                DROP_REASON: reason,
                DROP_DETAIL: None,
            }
        )
    fields = [
        *schema_for("preference"),
        pa.field(DROP_REASON, pa.string()),
        pa.field(DROP_DETAIL, pa.string()),
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([pa.field(f.name, f.type) for f in fields]))


def _clear_outputs(out: Path) -> None:
    """Old pairs go before new ones are written; the manifest first, so no reader sees a mix."""
    (out / MANIFEST).unlink(missing_ok=True)
    for path in out.glob("part-*.parquet"):
        path.unlink()
    shutil.rmtree(out / DROPPED_DIR, ignore_errors=True)


def run_redteam_pairs(
    config: RedteamPairsConfig, out: str | Path, eval_run: str | Path | None = None
) -> dict:
    """Answer and judge (or read ``eval_run``'s answers), build the pairs, write ``out`` (see above).

    Returns the manifest's stage entry. Raises InputError for a missing or malformed prompt set, model
    folder or eval run.
    """
    started = time.perf_counter()
    out = Path(out)
    remove_debris(out)
    prompt_set = load_prompt_set(config.eval.prompts)  # the safe responses, and a check of the set
    if eval_run is None:
        eval_run = out / "eval"
        run_safety_eval(config.eval, eval_run)
    records = read_predictions(eval_run)
    table = pair_rows(records, prompt_set, config)
    out.mkdir(parents=True, exist_ok=True)
    _clear_outputs(out)
    result = write_shards([table], out, "preference", 0, config.shard_rows, None)
    dump = config.model_dump(mode="json")
    entry = stage_entry(STAGE, config_hash(dump), len(records), result, dump, time.perf_counter() - started)
    manifest = Manifest(out)
    manifest.data.update({"kind": "preference", "input": str(eval_run)})
    manifest.record(STAGE, entry)
    logger.info("redteam pairs: %d prompts -> %d pairs; dropped %s", len(records), entry["rows_out"],
                json.dumps(entry["dropped"]))  # fmt: skip
    return entry
