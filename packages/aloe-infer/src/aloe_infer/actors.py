"""Batch inference as Ray Data actor passes: generation, next-token scoring and embedding.

Every job that runs a model over many requests (the eval harness, Medprompt's example pool, safety
red-teaming, RAG indexing) builds a table of requests, one row each, and hands it to :func:`run_pass`
with one of the callable classes below. :func:`run_pass` runs it as ``Dataset.map_batches(cls,
concurrency=..., num_gpus=..., num_cpus=...)`` so Ray Data keeps a pool of actors, each holding one loaded
model, and streams batches through them; results come back in request order (the ``request`` column).

* :class:`GenerateActor`: rows ``request, prompt_ids, max_tokens, temperature, seed`` (and optionally
  ``options``, ``[{letter, text}]`` as shown in the prompt, for answers that must parse): one completion
  per row. Unparsed answers are retried inside the actor (``RetryConfig``: temperature and max tokens
  raised per retry, as prompt_engine does), so a retry costs no second pass and no second engine start.
* :class:`ScoreActor`: rows ``request, prompt_ids, candidate_ids``: the log-probability of each
  candidate token after the prompt (:mod:`aloe_infer.scoring`), one forward per row, no generation.
* :class:`EmbedActor`: rows ``request, text``: a unit-norm embedding (:mod:`aloe_infer.embeddings`).

Prompts arrive as token ids: the caller tokenizes once, with the model's own tokenizer, and records the
exact prompt it scored; actors never re-render text.

``ActorPoolConfig.mode: local`` runs the same classes in this process on the same batches, without
Ray (one instance per configuration, reused by later passes of the process): for one-GPU workstations,
and for tests, where starting actors costs more than the work.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from aloe_core.config import StrictModel
from aloe_core.errors import ConfigError
from aloe_infer.engine import Engine, EngineConfig, load_engine

logger = logging.getLogger(__name__)

ENGINE_DIED_EXIT_CODE = 70


class ActorPoolConfig(StrictModel):
    """How many model replicas serve a pass, and what each one holds."""

    mode: Literal["ray", "local"] = "ray"  # local: in this process, no Ray (see the module docstring)
    concurrency: int = Field(1, ge=1)  # actors (model replicas)
    num_gpus: float = Field(0, ge=0)  # per actor; a vLLM engine with tensor_parallel_size k needs k
    cpus_per_actor: float = Field(1, gt=0)
    batch_size: int = Field(64, ge=1)  # rows per actor call

    @field_validator("num_gpus")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError("num_gpus above 1 must be a whole number of GPUs")
        return value


class RetryConfig(StrictModel):
    """Retries of generations whose answer does not parse (prompt_engine's rule by default)."""

    retries: int = Field(2, ge=0)
    temperature_step: float = Field(0.05, ge=0)  # added to the temperature at each retry
    max_tokens_step: int = Field(100, ge=0)  # added to max_tokens at each retry


def actor_cpus(pool: ActorPoolConfig) -> float | None:
    """Torch threads per replica: the actor's CPUs on Ray; the process default in local mode."""
    return pool.cpus_per_actor if pool.mode == "ray" else None


def check_cpus_left(pool: ActorPoolConfig, cluster_cpus: float, label: str) -> None:
    """Refuse a CPU actor pool that takes every CPU of a local Ray: Ray Data's read and split tasks
    need a CPU too, so such a pass waits forever. On a cluster (``RAY_ADDRESS``) nodes may join: warn.
    """
    if pool.num_gpus > 0 or pool.concurrency * pool.cpus_per_actor < cluster_cpus:
        return
    message = (
        f"{label}: concurrency {pool.concurrency} x cpus_per_actor {pool.cpus_per_actor:g} takes all "
        f"{cluster_cpus:g} CPUs of the Ray cluster, leaving none to feed the actors, so the pass would "
        "stall; lower cpus_per_actor (e.g. 0.5) or concurrency"
    )
    if os.environ.get("RAY_ADDRESS"):
        logger.warning(message)
        return
    raise ConfigError(message)


def _threads(cpus: float | None) -> None:
    """Torch threads = the actor's CPUs, so replicas sharing a node do not oversubscribe it; ``None``
    (local mode: this process has the machine) leaves torch's default."""
    if cpus is None:
        return
    import torch

    torch.set_num_threads(max(1, int(cpus)))


def _prepare_engine_process(engine: EngineConfig, cpus: float | None) -> None:
    if engine.type == "vllm" and engine.tensor_parallel_size == 1:
        # The engine core in this process instead of a child: nothing leaks when Ray kills the actor.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    elif engine.type == "hf":
        _threads(cpus)


class GenerateActor:
    """One completion per request row (see the module docstring).

    Args:
        engine: what to load (on the first batch).
        retry: retries of unparsed answers (rows with ``options``).
        stop: stop strings for every request.
        answer_prefix: what the prompt asks the answer line to start with (for parsing).
        cpus: torch threads of an hf engine (None: torch's default, for local mode).
        loaded: an already loaded engine to use instead (local mode; tests share one vLLM engine).
    """

    def __init__(
        self,
        engine: EngineConfig,
        retry: RetryConfig | None = None,
        stop: Sequence[str] = (),
        answer_prefix: str = "Answer:",
        cpus: float | None = None,
        loaded: Engine | None = None,
    ) -> None:
        self.engine_config = engine
        self.retry = retry or RetryConfig()
        self.stop = tuple(stop)
        self.answer_prefix = answer_prefix
        self.cpus = cpus
        self._engine = loaded

    def engine(self) -> Engine:
        if self._engine is None:
            _prepare_engine_process(self.engine_config, self.cpus)
            self._engine = load_engine(self.engine_config)
        return self._engine

    def __call__(self, table: pa.Table) -> pa.Table:
        from aloe_infer.answers import extract_answer
        from aloe_infer.sampling import SamplingParams

        rows = table.to_pylist()
        n = len(rows)
        texts: list[str | None] = [None] * n
        letters: list[str | None] = [None] * n
        errors: list[str | None] = [None] * n
        attempts = [0] * n
        tokens = [0] * n
        todo = list(range(n))
        for attempt in range(self.retry.retries + 1):
            if not todo:
                break
            params = [
                SamplingParams(
                    max_tokens=rows[i]["max_tokens"] + attempt * self.retry.max_tokens_step,
                    temperature=rows[i]["temperature"] + attempt * self.retry.temperature_step,
                    seed=None if rows[i]["seed"] is None else rows[i]["seed"] + attempt,
                    stop=self.stop,
                )
                for i in todo
            ]
            results = self._generate([rows[i]["prompt_ids"] for i in todo], params)
            retry = []
            for i, result in zip(todo, results, strict=True):
                attempts[i] = attempt + 1
                if result.error is not None:
                    errors[i] = result.error
                    continue
                completion = result.completions[0]
                texts[i], errors[i] = completion.text, None
                tokens[i] += len(completion.token_ids)
                options = rows[i].get("options")
                if options is None:
                    continue
                parsed = extract_answer(completion.text, options, self.answer_prefix)
                letters[i] = parsed.letter
                if parsed.letter is None:
                    retry.append(i)
            todo = retry
        return pa.table(
            {
                "request": table.column("request"),
                "text": pa.array(texts, pa.string()),
                "letter": pa.array(letters, pa.string()),
                "attempts": pa.array(attempts, pa.int32()),
                "generated_tokens": pa.array(tokens, pa.int64()),
                "error": pa.array(errors, pa.string()),
            }
        )

    def _generate(self, prompts: list[list[int]], params: list[Any]) -> list[Any]:
        engine = self.engine()
        try:
            return engine.generate(prompts, params)
        except Exception as exc:
            if engine.needs_restart(exc):
                logger.error("generation engine died (%s); exiting so Ray restarts this actor", exc)
                os._exit(ENGINE_DIED_EXIT_CODE)
            raise


class ScoreActor:
    """Candidate-token log-probabilities after each prompt (see the module docstring).

    ``max_batch_tokens``: padded prompt tokens per forward of the hf scorer (prefill only, so a smaller
    budget than generation's: wide batches of long prompts waste their time on padding and attention).
    ``loaded``: an already loaded :class:`~aloe_infer.scoring.NextTokenScorer` (local mode, tests).
    """

    def __init__(
        self,
        engine: EngineConfig,
        cpus: float | None = None,
        max_batch_tokens: int = 16384,
        loaded: Any = None,
    ) -> None:
        self.engine_config = engine
        self.cpus = cpus
        self.max_batch_tokens = max_batch_tokens
        self._scorer = loaded

    def scorer(self) -> Any:
        if self._scorer is None:
            from aloe_infer.scoring import build_scorer

            _prepare_engine_process(self.engine_config, self.cpus)
            self._scorer = build_scorer(self.engine_config, max_batch_tokens=self.max_batch_tokens)
        return self._scorer

    def __call__(self, table: pa.Table) -> pa.Table:
        prompts = table.column("prompt_ids").to_pylist()
        candidates = table.column("candidate_ids").to_pylist()
        out: list[list[float]] = [[] for _ in prompts]
        # Rows sharing a candidate set (the usual case: A-D everywhere) are one scorer call.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, ids in enumerate(candidates):
            groups.setdefault(tuple(ids), []).append(i)
        for ids, members in groups.items():
            values = self.scorer().candidate_logprobs([prompts[i] for i in members], list(ids))
            for row, i in enumerate(members):
                out[i] = [float(v) for v in values[row]]
        return pa.table(
            {"request": table.column("request"), "logprobs": pa.array(out, pa.list_(pa.float64()))}
        )


class EmbedActor:
    """Unit-norm embeddings of the ``text`` column (see :class:`~aloe_infer.embeddings.SentenceEmbedder`)."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        max_batch_tokens: int = 16384,
        cpus: float | None = None,
        loaded: Any = None,
    ) -> None:
        self.model, self.device, self.max_batch_tokens, self.cpus = model, device, max_batch_tokens, cpus
        self._embedder = loaded

    def embedder(self) -> Any:
        if self._embedder is None:
            from aloe_infer.embeddings import SentenceEmbedder

            if self.device == "cpu":
                _threads(self.cpus)
            self._embedder = SentenceEmbedder(
                self.model, device=self.device, max_batch_tokens=self.max_batch_tokens
            )
        return self._embedder

    def __call__(self, table: pa.Table) -> pa.Table:
        vectors = self.embedder().embed(table.column("text").to_pylist())
        dim = vectors.shape[1]
        flat = pa.array(vectors.reshape(-1), pa.float32())
        return pa.table(
            {"request": table.column("request"), "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)}
        )


_LOCAL: dict[str, Any] = {}


def _local_instance(cls: type, kwargs: Mapping[str, Any]) -> Any:
    """One instance per (class, configuration) in this process, so later passes reuse its model."""
    key = json.dumps([cls.__qualname__, _jsonable(kwargs)], sort_keys=True, default=repr)
    if key not in _LOCAL:
        _LOCAL[key] = cls(**kwargs)
    return _LOCAL[key]


def _jsonable(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.model_dump(mode="json") if isinstance(v, StrictModel) else v) for k, v in kwargs.items()}


def release_local_models() -> None:
    """Drop the models local passes keep loaded (their memory is freed with the last reference)."""
    _LOCAL.clear()


def run_pass(
    requests: pa.Table,
    actor: type[Callable[[pa.Table], pa.Table]],
    kwargs: Mapping[str, Any],
    pool: ActorPoolConfig,
    *,
    label: str = "inference",
) -> pa.Table:
    """``actor(**kwargs)`` applied to every batch of ``requests`` (which must hold an int64 ``request``
    column); the outputs concatenated and sorted by ``request``.

    In Ray mode the actor pool is ``pool.concurrency`` replicas with ``pool.num_gpus`` GPUs and
    ``pool.cpus_per_actor`` CPUs each; a local Ray is started unless ``RAY_ADDRESS`` names a cluster.
    """
    if requests.num_rows == 0:
        raise ValueError(f"{label}: no requests")
    logger.info(
        "%s: %d requests (%s mode, %d actor(s))", label, requests.num_rows, pool.mode, pool.concurrency
    )
    if pool.mode == "local":
        instance = _local_instance(actor, kwargs)
        parts = []
        for start in range(0, requests.num_rows, pool.batch_size):
            parts.append(instance(requests.slice(start, pool.batch_size)))
            done = min(start + pool.batch_size, requests.num_rows)
            logger.info("%s: %d/%d requests done", label, done, requests.num_rows)  # Ray shows its own bars
        out = pa.concat_tables(parts)
    else:
        import ray

        from aloe_core.ray_session import ensure_ray

        check_cpus_left(pool, ensure_ray().get("CPU", 0), label)
        ds = ray.data.from_arrow(requests).repartition(
            max(1, min(requests.num_rows // pool.batch_size + 1, 4 * pool.concurrency))
        )
        ds = ds.map_batches(
            actor,
            fn_constructor_kwargs=dict(kwargs),
            batch_size=pool.batch_size,
            batch_format="pyarrow",
            concurrency=pool.concurrency,
            num_gpus=pool.num_gpus,
            num_cpus=pool.cpus_per_actor,
        )
        out = pa.concat_tables(ray.get(ds.to_arrow_refs()))
    return out.sort_by("request")
