"""``aloe infer retrieve``'s files: queries in (``{id, question}`` JSONL), ranked hits out.

A query line that cannot be used stops the command before any retrieval, with one line naming the file,
the line and the field (a batch of queries is an experiment: a silently skipped query would change it).
"""

from __future__ import annotations

import json
from pathlib import Path

from aloe_core import storage
from aloe_core.atomic import atomic_write_text
from aloe_core.containers import iter_jsonl
from aloe_core.errors import InputError
from aloe_infer.retrieval.retriever import Hit


def read_queries(path: str | Path) -> tuple[list[str], list[str]]:
    """``(ids, questions)`` of a JSONL file (local or on a URI) of ``{id, question}`` objects.

    Raises:
        InputError: the file is missing, a line is not a JSON object, a field is missing or not a
            string (ids may be integers), an id repeats, or there are no queries.
    """
    if not storage.is_file(path):
        raise InputError(f"{path}: queries file not found")
    ids: list[str] = []
    questions: list[str] = []
    seen: set[str] = set()
    with storage.open_input(path) as handle:  # a local file or an s3:// / gs:// object
        for row in iter_jsonl(handle):
            if row.error is not None or row.value is None:
                raise InputError(f"{path}:{row.locator}: {row.error}")
            query_id, question = row.value.get("id"), row.value.get("question")
            if isinstance(query_id, bool) or not isinstance(query_id, str | int):
                raise InputError(f"{path}:{row.locator}: id: must be a string or an integer")
            if not isinstance(question, str) or not question.strip():
                raise InputError(f"{path}:{row.locator}: question: must be a non-empty string")
            if str(query_id) in seen:
                raise InputError(f"{path}:{row.locator}: id: {query_id!r} repeats an earlier line")
            seen.add(str(query_id))
            ids.append(str(query_id))
            questions.append(question)
    if not ids:
        raise InputError(f"{path}: no queries (expected JSONL lines of {{id, question}})")
    return ids, questions


def write_results(path: str | Path, ids: list[str], results: list[list[Hit]]) -> None:
    """One line per query, ``{id, results: [{doc_id, chunk_id, score, title}]}``, written atomically
    (one PUT on a URI)."""
    lines = [
        json.dumps(
            {
                "id": query_id,
                "results": [
                    {"doc_id": h.doc_id, "chunk_id": h.chunk_id, "score": round(h.score, 6), "title": h.title}
                    for h in hits
                ],
            },
            ensure_ascii=False,
        )
        for query_id, hits in zip(ids, results, strict=True)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
