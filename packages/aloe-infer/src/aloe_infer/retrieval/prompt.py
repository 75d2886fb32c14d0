"""Fitting retrieved chunks into a prompt: numbered sources under a token budget, cited by number.

:func:`build_context` is what any prompt (``aloe infer ask``, the eval harness's RAG strategy) uses: the
hits, best first, become ``[1] title\\ntext`` blocks until the budget (in the generating model's
tokens) is spent; a last block that does not fit is cut at a token boundary, or left out when less than
``min_tokens`` would remain. The numbers in the context are the numbers of ``RagContext.sources``.
:func:`rag_messages` wraps a question and a context in the instruction to answer and cite;
:func:`sources_section` is the ``Sources:`` part any other prompt (the eval harness's) puts before its
question, and :func:`sources_budget` the budget that leaves room for the rest of the prompt and the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aloe_infer.retrieval.config import PromptConfig
from aloe_infer.retrieval.retriever import Hit

SEPARATOR = "\n\n"

INSTRUCTION = (
    "Answer the question using the numbered sources below. Cite the sources you use by their number in "
    "square brackets, e.g. [1]. If the sources do not contain the answer, say so."
)


@dataclass(frozen=True)
class RagContext:
    """``text``: the numbered sources; ``sources[n - 1]`` is source ``[n]``; ``tokens``: its length."""

    text: str
    sources: tuple[Hit, ...]
    tokens: int


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _cut(tokenizer: Any, text: str, tokens: int) -> str:
    """The longest prefix of ``text`` of at most ``tokens`` tokens, ending at a token boundary."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:tokens]
    return tokenizer.decode(ids, skip_special_tokens=True).rstrip() + " ..."


def build_context(hits: list[Hit], tokenizer: Any, config: PromptConfig | None = None) -> RagContext:
    """Numbered source blocks from ``hits`` whose whole text is at most ``config.context_tokens`` tokens."""
    config = config or PromptConfig()
    budget = config.context_tokens
    blocks: list[str] = []
    sources: list[Hit] = []
    for hit in hits:
        header = f"[{len(blocks) + 1}] {hit.title}".rstrip() + "\n"
        block = header + hit.text.strip()
        candidate = SEPARATOR.join([*blocks, block])
        if _count(tokenizer, candidate) <= budget:
            blocks.append(block)
            sources.append(hit)
            continue
        room = budget - _count(tokenizer, SEPARATOR.join([*blocks, header])) - 2  # 2: the " ..." mark
        if room >= config.min_tokens:
            cut = header + _cut(tokenizer, hit.text.strip(), room)
            while room > 0 and _count(tokenizer, SEPARATOR.join([*blocks, cut])) > budget:
                room -= 4  # merges across the cut can add a token or two; shrink until it fits
                cut = header + _cut(tokenizer, hit.text.strip(), room)
            if room >= config.min_tokens:
                blocks.append(cut)
                sources.append(hit)
        break
    text = SEPARATOR.join(blocks)
    return RagContext(text, tuple(sources), _count(tokenizer, text) if text else 0)


def sources_section(context: RagContext) -> str:
    """``Sources:`` and the numbered source blocks: what a prompt shows of a retrieval."""
    return f"Sources:\n{context.text}"


def sources_budget(config: PromptConfig, max_model_len: int, overhead: int, max_tokens: int) -> int:
    """Tokens the sources may take in a prompt whose other parts take ``overhead`` tokens, with room left
    for ``max_tokens`` of answer: ``config.context_tokens``, or less when the model's context is shorter.

    The 8-token margin absorbs the merges tokenizers make where the sources meet the rest of the prompt.
    """
    return min(config.context_tokens, max_model_len - max_tokens - overhead - 8)


def rag_messages(question: str, context: RagContext, instruction: str = INSTRUCTION) -> list[dict[str, str]]:
    """One user message: the instruction, the numbered sources, the question (MedRAG's layout)."""
    if not context.sources:
        return [{"role": "user", "content": question}]
    content = f"{instruction}\n\n{sources_section(context)}\n\nQuestion: {question}"
    return [{"role": "user", "content": content}]


def sources_table(context: RagContext) -> list[dict[str, Any]]:
    """``[{n, doc_id, chunk_id, title, score}]``: what an answer's ``[n]`` refers to."""
    return [
        {"n": n, "doc_id": h.doc_id, "chunk_id": h.chunk_id, "title": h.title, "score": h.score}
        for n, h in enumerate(context.sources, start=1)
    ]
