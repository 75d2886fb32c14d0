"""The answering strategies: zero-shot letter scoring, CoT, self-consistency CoT and Medprompt.

Each strategy turns items into one prediction record per item (see :mod:`aloe_infer.eval.results` for
the fields). All model work goes through :func:`aloe_infer.actors.run_pass`, one pass per phase, so it
runs in Ray Data actor pools (or in-process with ``actors.mode: local``):

* ``zero-shot``: one forward per question; the log-probability of each option letter (``" A"``,
  ``" B"``...) right after ``answer_prefix``; the prediction is the most likely letter (the first on a
  tie). No generation, so nothing can fail to parse.
* ``cot``: one greedy reasoning per question, answer read by :func:`aloe_infer.answers.extract_answer`;
  unparsed answers are retried with temperature +0.05 and +100 max tokens (``generation.retry``).
* ``sc-cot``: ``self_consistency.samples`` sampled reasonings per question, majority vote.
* ``medprompt`` (HPAI-BSC prompt_engine's recipe):

  1. the pool: the model's own CoT on the ``pool_split`` (val) questions, keeping only correct answers;
  2. question-only embeddings of pool and test questions (MiniLM by default), exact cosine kNN within
     the same benchmark (a benchmark without a pool split uses every benchmark's pool);
  3. per test question, ``ensemble`` members, each shown a permutation of the option texts not used by
     another member (letters stay A, B, C... in order), after the ``k`` nearest examples, most similar
     last; each member's letter is mapped back through its permutation;
  4. majority vote over the members' mapped answers; a tie goes to the answer seen first.

* ``rag`` / ``rag-cot``: ``zero-shot`` / ``cot`` with the question's retrieved chunks
  (:mod:`aloe_infer.eval.retrieval`, searched before the model pass) as numbered sources before the
  question. The sources' budget is ``rag.context_tokens`` or what the model's context leaves after the
  rest of the prompt and the answer (1 token for a letter, ``generation.max_tokens`` for reasoning);
  records carry ``retrieved`` (every hit: doc id, chunk id, score, title) and ``sources`` (how many of
  them the prompt shows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa

from aloe_core.schemas import stable_id
from aloe_infer.actors import EmbedActor, GenerateActor, ScoreActor, actor_cpus, run_pass
from aloe_infer.eval.benchmarks import Benchmark, EvalItem, load_benchmarks
from aloe_infer.eval.config import EvalConfig
from aloe_infer.eval.ensemble import majority_vote, map_back, member_orders
from aloe_infer.eval.knn import top_k_cosine
from aloe_infer.eval.prompts import Example, PromptRenderer, RenderedPrompt, letters_for, question_block
from aloe_infer.eval.retrieval import Retrieved, hit_fields
from aloe_infer.retrieval import Hit, RagContext, build_context, sources_budget, sources_section
from aloe_infer.scoring import resolve_candidate_ids

logger = logging.getLogger(__name__)

Prediction = dict[str, Any]


@dataclass
class RunContext:
    """What every strategy needs: the run's config, the model's tokenizer and context length."""

    config: EvalConfig
    tokenizer: Any
    max_model_len: int
    renderer: PromptRenderer
    engines: dict[str, Any]  # injected loaded engines/scorers for local mode (tests): "generate", "score"
    retrieved: Retrieved | None = None  # the rag strategies' hits, aligned with the run's items


def _base(item: EvalItem) -> Prediction:
    return {"benchmark": item.benchmark, "subject": item.subject, "id": item.id, "answer": item.answer}


def _finish(record: Prediction, prediction: str | None) -> Prediction:
    record["prediction"] = prediction
    record["correct"] = prediction == record["answer"]
    return record


def _seed(ctx: RunContext, *parts: object) -> int:
    return int(stable_id("eval", ctx.config.seed, *parts)[:8], 16)


def _block(item: EvalItem, order: Sequence[int] | None = None) -> str:
    order = order if order is not None else range(len(item.options))
    return question_block(item.question, [item.options[i][1] for i in order], item.context)


def _shown_options(item: EvalItem, order: Sequence[int]) -> list[dict[str, str]]:
    letters = letters_for(len(item.options))
    return [{"letter": letters[j], "text": item.options[i][1]} for j, i in enumerate(order)]


def _with_sources(
    hits: Sequence[Hit] | None,
    render: Callable[[str | None], RenderedPrompt],
    ctx: RunContext,
    answer_tokens: int,
) -> tuple[RenderedPrompt, dict[str, Any]]:
    """The prompt ``render`` makes with as many of ``hits`` as its budget holds (none: ``hits`` is None),
    and the record fields saying which were retrieved and how many were shown."""
    if hits is None:
        return render(None), {}
    sources = ctx.config.rag.sources()
    overhead = len(render(sources_section(RagContext("", (), 0))).ids)
    budget = sources_budget(sources, ctx.max_model_len, overhead, answer_tokens)
    context = RagContext("", (), 0)
    if budget >= sources.min_tokens:
        fitted = sources.model_copy(update={"context_tokens": budget})
        context = build_context(list(hits), ctx.tokenizer, fitted)
    prompt = render(sources_section(context) if context.sources else None)
    return prompt, hit_fields(hits, len(context.sources))


def _hits_of(ctx: RunContext, with_retrieval: bool, count: int) -> list[list[Hit]] | list[None]:
    if not with_retrieval:
        return [None] * count
    assert ctx.retrieved is not None and len(ctx.retrieved.hits) == count, "retrieve before a rag strategy"
    return ctx.retrieved.hits


# -- zero-shot -----------------------------------------------------------------------------------------


def zero_shot(items: Sequence[EvalItem], ctx: RunContext, with_retrieval: bool = False) -> list[Prediction]:
    candidate_ids: dict[int, list[int]] = {}
    rows: dict[str, list[Any]] = {"request": [], "prompt_ids": [], "candidate_ids": []}
    records: list[Prediction] = []
    hits = _hits_of(ctx, with_retrieval, len(items))
    for n, item in enumerate(items):
        count = len(item.options)
        if count not in candidate_ids:
            candidate_ids[count] = resolve_candidate_ids(
                ctx.tokenizer,
                [f" {letter}" for letter in letters_for(count)],
                where=ctx.config.engine.model,
                label="answer letter",
                hint="the letter after the answer prefix must be one token of this vocabulary",
            )
        prompt, fields = _with_sources(hits[n], partial(ctx.renderer.zero_shot, _block(item)), ctx, 1)
        record = _base(item) | fields | {"prompt": prompt.text}
        records.append(record)
        if len(prompt.ids) >= ctx.max_model_len:
            record["error"] = f"prompt has {len(prompt.ids)} tokens; max_model_len is {ctx.max_model_len}"
            continue
        rows["request"].append(n)
        rows["prompt_ids"].append(prompt.ids)
        rows["candidate_ids"].append(candidate_ids[count])
    if rows["request"]:
        table = pa.table(
            {
                "request": pa.array(rows["request"], pa.int64()),
                "prompt_ids": pa.array(rows["prompt_ids"], pa.list_(pa.int32())),
                "candidate_ids": pa.array(rows["candidate_ids"], pa.list_(pa.int32())),
            }
        )
        kwargs = {
            "engine": ctx.config.engine,
            "cpus": actor_cpus(ctx.config.actors),
            "max_batch_tokens": ctx.config.score_batch_tokens,
        }
        if "score" in ctx.engines:
            kwargs["loaded"] = ctx.engines["score"]
        out = run_pass(table, ScoreActor, kwargs, ctx.config.actors, label="zero-shot scoring")
        for request, logprobs in zip(
            out.column("request").to_pylist(), out.column("logprobs").to_pylist(), strict=True
        ):
            item = items[request]
            # Shown letters are A, B, C... in the item's own option order: position j is item letter j.
            values = dict(zip(item.letters, logprobs, strict=True))
            records[request]["letter_logprobs"] = values
            records[request]["prediction_index"] = int(np.argmax(logprobs))
    for record, item in zip(records, items, strict=True):
        index = record.pop("prediction_index", None)
        _finish(record, None if index is None else item.letters[index])
    return records


# -- generation ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One generation: its prompt (as rendered, and its ids), the options shown (for parsing), sampling,
    and the retrieval fields its record carries (rag-cot)."""

    prompt: str
    prompt_ids: list[int]
    options: list[dict[str, str]]
    temperature: float
    seed: int
    retrieval: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    text: str | None
    shown: str | None  # the letter the model gave, as shown
    attempts: int
    error: str | None


def generate(requests: Sequence[Request], ctx: RunContext, label: str) -> list[Answer]:
    """Every request through :class:`~aloe_infer.actors.GenerateActor`; too-long prompts fail here."""
    gen = ctx.config.generation
    answers: list[Answer | None] = [None] * len(requests)
    rows: dict[str, list[Any]] = {
        k: [] for k in ("request", "prompt_ids", "options", "max_tokens", "temperature", "seed")
    }
    for n, request in enumerate(requests):
        if len(request.prompt_ids) >= ctx.max_model_len:
            answers[n] = Answer(
                None,
                None,
                0,
                f"prompt has {len(request.prompt_ids)} tokens; max_model_len is {ctx.max_model_len}",
            )
            continue
        rows["request"].append(n)
        rows["prompt_ids"].append(request.prompt_ids)
        rows["options"].append(request.options)
        rows["max_tokens"].append(gen.max_tokens)
        rows["temperature"].append(request.temperature)
        rows["seed"].append(request.seed)
    if rows["request"]:
        option = pa.struct([("letter", pa.string()), ("text", pa.string())])
        table = pa.table(
            {
                "request": pa.array(rows["request"], pa.int64()),
                "prompt_ids": pa.array(rows["prompt_ids"], pa.list_(pa.int32())),
                "options": pa.array(rows["options"], pa.list_(option)),
                "max_tokens": pa.array(rows["max_tokens"], pa.int64()),
                "temperature": pa.array(rows["temperature"], pa.float64()),
                "seed": pa.array(rows["seed"], pa.int64()),
            }
        )
        kwargs: dict[str, Any] = {
            "engine": ctx.config.engine,
            "retry": gen.retry,
            "stop": gen.stop,
            "answer_prefix": ctx.config.prompts.answer_prefix,
            "cpus": actor_cpus(ctx.config.actors),
        }
        if "generate" in ctx.engines:
            kwargs["loaded"] = ctx.engines["generate"]
        out = run_pass(table, GenerateActor, kwargs, ctx.config.actors, label=label).to_pylist()
        for row in out:
            answers[row["request"]] = Answer(row["text"], row["letter"], row["attempts"], row["error"])
    return answers  # type: ignore[return-value]


def _generation_fields(answer: Answer) -> dict[str, Any]:
    fields: dict[str, Any] = {"output": answer.text, "attempts": answer.attempts}
    if answer.error is not None:
        fields["error"] = answer.error
    return fields


def cot(items: Sequence[EvalItem], ctx: RunContext, with_retrieval: bool = False) -> list[Prediction]:
    requests = [
        _cot_request(item, ctx, ctx.config.generation.temperature, _seed(ctx, item.id), hits=hits)
        for item, hits in zip(items, _hits_of(ctx, with_retrieval, len(items)), strict=True)
    ]
    answers = generate(requests, ctx, "rag-cot" if with_retrieval else "cot")
    records = []
    for item, request, answer in zip(items, requests, answers, strict=True):
        record = _base(item) | request.retrieval | {"prompt": request.prompt} | _generation_fields(answer)
        records.append(_finish(record, _original_letter(item, answer.shown, range(len(item.options)))))
    return records


def rag(items: Sequence[EvalItem], ctx: RunContext) -> list[Prediction]:
    """Zero-shot letter scoring with the retrieved sources in the prompt."""
    return zero_shot(items, ctx, with_retrieval=True)


def rag_cot(items: Sequence[EvalItem], ctx: RunContext) -> list[Prediction]:
    """CoT with the retrieved sources in the prompt."""
    return cot(items, ctx, with_retrieval=True)


def _cot_request(
    item: EvalItem,
    ctx: RunContext,
    temperature: float,
    seed: int,
    order: Sequence[int] | None = None,
    examples: Sequence[Example] = (),
    hits: Sequence[Hit] | None = None,
) -> Request:
    """A reasoning request; with ``hits``, its sources in the prompt (see :func:`_with_sources`)."""
    order = list(order) if order is not None else list(range(len(item.options)))
    render = partial(ctx.renderer.cot, _block(item, order), examples)
    prompt, fields = _with_sources(hits, render, ctx, ctx.config.generation.max_tokens)
    return Request(prompt.text, prompt.ids, _shown_options(item, order), temperature, seed, fields)


def _original_letter(item: EvalItem, shown: str | None, order: Sequence[int]) -> str | None:
    """The item's own letter for an answer given as a shown letter under ``order``."""
    mapped = map_back(shown, list(order), letters_for(len(item.options)))
    return None if mapped is None else item.letters[letters_for(len(item.options)).index(mapped)]


def sc_cot(items: Sequence[EvalItem], ctx: RunContext) -> list[Prediction]:
    sc = ctx.config.self_consistency
    requests = [
        _cot_request(item, ctx, sc.temperature, _seed(ctx, item.id, sample))
        for item in items
        for sample in range(sc.samples)
    ]
    answers = generate(requests, ctx, "sc-cot")
    records = []
    for n, item in enumerate(items):
        mine = answers[n * sc.samples : (n + 1) * sc.samples]
        votes = [_original_letter(item, a.shown, range(len(item.options))) for a in mine]
        record = _base(item) | {
            "prompt": requests[n * sc.samples].prompt,
            "samples": [
                {"output": a.text, "answer": v, "attempts": a.attempts}
                for a, v in zip(mine, votes, strict=True)
            ],
        }
        records.append(_finish(record, majority_vote(votes, sc.tie)))
    return records


# -- Medprompt -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolExample:
    benchmark: str
    id: str
    question: str
    example: Example


def _embed(texts: Sequence[str], ctx: RunContext) -> np.ndarray:
    from aloe_infer.embeddings import default_embedding_model

    mp = ctx.config.medprompt
    model = mp.embedding_model or str(default_embedding_model())
    table = pa.table(
        {"request": pa.array(range(len(texts)), pa.int64()), "text": pa.array(list(texts), pa.string())}
    )
    kwargs = {"model": model, "device": mp.embedding_device, "cpus": actor_cpus(mp.embedding_pool)}
    out = run_pass(table, EmbedActor, kwargs, mp.embedding_pool, label="question embeddings")
    return np.asarray(out.column("embedding").to_pylist(), dtype=np.float32)


def build_pool(ctx: RunContext, names: Sequence[str]) -> tuple[list[PoolExample], dict[str, Any]]:
    """The solved examples: the model's own greedy CoT on the pool split, correct answers only."""
    mp = ctx.config.medprompt
    try:
        benchmarks, _ = load_benchmarks(ctx.config.benchmarks, mp.pool_split, names=(), limit=mp.pool_limit)
    except Exception as exc:  # no pool split at all: Medprompt without examples (k-shot impossible)
        logger.warning("medprompt: no %s split to build examples from (%s)", mp.pool_split, exc)
        return [], {"questions": 0, "correct": 0, "by_benchmark": {}}
    items = [i for b in benchmarks if b.name in names or not names for i in b.items]
    requests = [_cot_request(item, ctx, 0.0, _seed(ctx, "pool", item.id)) for item in items]
    answers = generate(requests, ctx, "medprompt pool (CoT on the pool split)")
    pool: list[PoolExample] = []
    stats: dict[str, dict[str, int]] = {}
    for item, answer in zip(items, answers, strict=True):
        counts = stats.setdefault(item.benchmark, {"questions": 0, "correct": 0})
        counts["questions"] += 1
        letter = _original_letter(item, answer.shown, range(len(item.options)))
        if letter != item.answer or answer.text is None:
            continue
        counts["correct"] += 1
        pool.append(
            PoolExample(
                item.benchmark,
                item.id,
                item.question,
                Example(_block(item), _answer_turn(answer.text, answer.shown, ctx)),
            )
        )
    summary = {
        "split": mp.pool_split,
        "questions": len(items),
        "correct": len(pool),
        "by_benchmark": stats,
    }
    return pool, summary


def _answer_turn(text: str, shown: str | None, ctx: RunContext) -> str:
    """The example's assistant turn: its reasoning, ending in the answer line the prompt asks for."""
    from aloe_infer.answers import has_answer_line

    text = text.strip()
    prefix = ctx.config.prompts.answer_prefix
    return text if has_answer_line(text, prefix) else f"{text}\n\n{prefix} {shown}"


def medprompt(
    items: Sequence[EvalItem], ctx: RunContext, benchmarks: Sequence[Benchmark]
) -> tuple[list[Prediction], dict[str, Any]]:
    mp = ctx.config.medprompt
    pool, summary = (
        build_pool(ctx, [b.name for b in benchmarks]) if mp.k > 0 else ([], {"questions": 0, "correct": 0})
    )
    neighbours: list[list[int]] = [[] for _ in items]
    if pool and mp.k > 0:
        vectors = _embed([p.question for p in pool] + [i.question for i in items], ctx)
        pool_vectors, query_vectors = vectors[: len(pool)], vectors[len(pool) :]
        by_benchmark: dict[str, list[int]] = {}
        for index, example in enumerate(pool):
            by_benchmark.setdefault(example.benchmark, []).append(index)
        everyone = list(range(len(pool)))
        for n, item in enumerate(items):
            candidates = by_benchmark.get(item.benchmark) or everyone
            index, _ = top_k_cosine(query_vectors[n : n + 1], pool_vectors[candidates], mp.k)
            neighbours[n] = [candidates[i] for i in index[0]]
    requests: list[Request] = []
    plans: list[list[tuple[int, ...]]] = []
    for n, item in enumerate(items):
        examples = [pool[i].example for i in reversed(neighbours[n])]  # most similar last
        orders = member_orders(
            len(item.options),
            mp.ensemble,
            shuffle=mp.shuffle,
            seed=(ctx.config.seed, item.benchmark, item.id),
        )
        plans.append(orders)
        for m, order in enumerate(orders):
            requests.append(
                _cot_request(
                    item,
                    ctx,
                    ctx.config.generation.temperature,
                    _seed(ctx, item.id, "member", m),
                    order,
                    examples,
                )
            )
    answers = generate(requests, ctx, "medprompt ensemble")
    records = []
    cursor = 0
    for n, item in enumerate(items):
        members = []
        for order in plans[n]:
            answer = answers[cursor]
            cursor += 1
            mapped = _original_letter(item, answer.shown, order)
            members.append(
                {
                    "order": [item.letters[i] for i in order],
                    "shown": answer.shown,
                    "mapped": mapped,
                    "output": answer.text,
                    "attempts": answer.attempts,
                    **({"error": answer.error} if answer.error else {}),
                }
            )
        record = _base(item) | {
            "examples": [f"{pool[i].benchmark}/{pool[i].id}" for i in neighbours[n]],
            "members": members,
        }
        records.append(_finish(record, majority_vote([m["mapped"] for m in members], mp.tie)))
    return records, {"pool": summary}


STRATEGIES: dict[str, Callable[..., Any]] = {
    "zero-shot": zero_shot,
    "cot": cot,
    "sc-cot": sc_cot,
    "rag": rag,
    "rag-cot": rag_cot,
}
