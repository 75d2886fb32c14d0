"""Retrieval-augmented answering of one question: retrieve, fit sources into the prompt, generate.

The context budget is the smaller of ``prompt.context_tokens`` and what the model's ``max_model_len``
leaves after the instruction, the question and ``max_tokens`` of answer, so a long retrieval never makes
the prompt fail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aloe_infer.engine import Engine
from aloe_infer.retrieval.config import PromptConfig
from aloe_infer.retrieval.prompt import RagContext, build_context, rag_messages, sources_budget
from aloe_infer.retrieval.retriever import Hit, Retriever
from aloe_infer.sampling import SamplingParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RagAnswer:
    text: str
    context: RagContext
    prompt_tokens: int
    error: str | None = None


def context_budget(engine: Engine, question: str, prompt: PromptConfig, max_tokens: int) -> int:
    """Tokens the sources may take in a prompt for ``question`` on ``engine``."""
    placeholder = RagContext("", (Hit("", "", 0.0, "", ""),), 0)  # the instruction and question alone
    overhead = len(engine.encode_chat(rag_messages(question, placeholder)))
    return sources_budget(prompt, engine.max_model_len, overhead, max_tokens)


def answer(
    question: str,
    retriever: Retriever,
    engine: Engine,
    *,
    k: int = 5,
    prompt: PromptConfig | None = None,
    params: SamplingParams | None = None,
) -> RagAnswer:
    """The engine's answer to ``question`` with the ``k`` best chunks as numbered sources."""
    prompt = prompt or PromptConfig()
    params = params or SamplingParams(max_tokens=256)
    hits = retriever.search([question], k)[0]
    budget = context_budget(engine, question, prompt, params.max_tokens)
    if budget < prompt.min_tokens:
        logger.warning("the model's max_model_len leaves no room for sources; answering without them")
        context = RagContext("", (), 0)
    else:
        context = build_context(hits, engine.tokenizer, prompt.model_copy(update={"context_tokens": budget}))
    messages: list[Any] = rag_messages(question, context)
    ids = engine.encode_chat(messages)
    [result] = engine.generate([ids], params)
    if result.error is not None:
        return RagAnswer("", context, len(ids), result.error)
    return RagAnswer(result.completions[0].text.strip(), context, len(ids))
