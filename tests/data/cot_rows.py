"""MCQA rows for the CoT stage tests (transformers and vLLM engines build the same rows)."""

from __future__ import annotations


def mcqa_row(i: int, options: list[str], answer: str, question: str | None = None) -> dict:
    """An ``sft``-schema MCQA row whose reference answer is ``answer`` (a letter)."""
    item = {
        "question": question or f"Is drug {i} safe to use in the first trimester of pregnancy?",
        "options": [{"letter": "ABCD"[k], "text": t} for k, t in enumerate(options)],
        "answer": answer,
        "context": None,
        "explanation": None,
    }
    messages = [
        {"role": "user", "content": item["question"]},
        {"role": "assistant", "content": f"The answer is {answer}."},
    ]
    return {
        "id": f"r{i:03d}",
        "source": "t",
        "task": "mcqa",
        "messages": messages,
        "mcqa": item,
        "meta": "{}",
    }
