"""From a :class:`RawRow` to one annotated output row (a valid record, or a quarantined ``malformed`` row).

Good rows carry every field of the record kind, ``id = record_id(kind, source, content, "<file>:<row>")``
and ``meta = {"file", "row", "format", ...layout provenance}``, with ``drop_reason``/``drop_detail`` null.
Malformed rows keep only ``id`` (from kind, source, file and locator), ``source`` and
``meta = {"file", "row", "raw"}`` (raw text truncated to 2,000 characters), and say what is wrong in
``drop_detail`` as ``"<file>:<row>: <field path>: <what is wrong>"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aloe_core.containers import RawRow, truncate
from aloe_core.layouts import LAYOUTS, Parsed, RowError
from aloe_core.schemas import dumps_meta, record_id, row_problems, schema_for, stable_id
from aloe_data.pipeline.annotations import DROP_DETAIL, DROP_REASON
from aloe_data.sources.config import FORMAT_FAMILY, SourceConfig

MALFORMED = "malformed"
_SENTENCE_END = (".", "!", "?", "…")


def mcqa_user_text(item: Mapping[str, Any]) -> str:
    """The user turn of an MCQA item: context (if any), question, then one ``"A. text"`` line per option."""
    parts = [item["context"]] if item.get("context") else []
    parts.append(item["question"])
    parts.append("\n".join(f"{o['letter']}. {o['text']}" for o in item["options"]))
    return "\n\n".join(parts)


def mcqa_answer_text(item: Mapping[str, Any], include_explanation: bool) -> str:
    """``"The answer is X: <option text>."`` (no doubled full stop), then the explanation if wanted."""
    text = next(o["text"] for o in item["options"] if o["letter"] == item["answer"]).strip()
    answer = f"The answer is {item['answer']}: {text}"
    if not answer.endswith(_SENTENCE_END):
        answer += "."
    if include_explanation and item.get("explanation"):
        answer += "\n\n" + item["explanation"]
    return answer


def record_content(parsed: Parsed, fmt: str, kind: str, source: SourceConfig) -> dict[str, Any]:
    """The record fields of ``kind`` (without id, source, meta) for a layout's parsed content."""
    family = FORMAT_FAMILY[fmt]
    content = parsed.content
    if family == "preference" or (family == "mcqa" and kind == "mcqa"):
        return dict(content)
    if family == "chat":
        return {"task": source.task or content["task"], "messages": content["messages"], "mcqa": None}
    task = source.task or ("mcqa_context" if content.get("context") else "mcqa")
    messages = [
        {"role": "user", "content": mcqa_user_text(content)},
        {"role": "assistant", "content": mcqa_answer_text(content, source.include_explanation)},
    ]
    return {"task": task, "messages": messages, "mcqa": dict(content)}


def _jsonable(value: Any) -> Any:
    """Meta values from Parquet can be dates, decimals or bytes; keep JSON types, stringify the rest."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _raw_text(raw: RawRow) -> str:
    if raw.raw is not None:
        return truncate(raw.raw)
    if raw.value is None:
        return ""
    return truncate(json.dumps(raw.value, ensure_ascii=False, default=str))


def malformed_row(raw: RawRow, file: str, source: SourceConfig, kind: str, problem: str) -> dict[str, Any]:
    """A quarantined row: nothing but where it came from, its raw text, and what is wrong with it."""
    locator = f"{file}:{raw.locator}"
    row: dict[str, Any] = dict.fromkeys(schema_for(kind).names)
    row.update(
        id=stable_id(kind, source.name, MALFORMED, locator),
        source=source.name,
        meta=dumps_meta({"file": file, "row": raw.locator, "raw": _raw_text(raw)}),
    )
    row[DROP_REASON] = MALFORMED
    row[DROP_DETAIL] = f"{locator}: {problem}"
    return row


def to_row(raw: RawRow, file: str, source: SourceConfig, kind: str) -> dict[str, Any]:
    """The annotated output row of one raw row of ``file`` (its path relative to the source root)."""
    if raw.error is not None:
        return malformed_row(raw, file, source, kind, raw.error)
    try:
        parsed = LAYOUTS[source.format](raw.value or {})
        content = record_content(parsed, source.format, kind, source)
    except RowError as exc:
        return malformed_row(raw, file, source, kind, str(exc))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # Data-dependent failure the layout did not anticipate: still this row's problem, not the run's.
        return malformed_row(
            raw, file, source, kind, f"$: could not be normalised ({type(exc).__name__}: {exc})"
        )
    meta = {**_jsonable(parsed.meta), "file": file, "row": raw.locator, "format": source.format}
    row = {
        "id": record_id(kind, source.name, content, locator=f"{file}:{raw.locator}"),
        "source": source.name,
        **content,
        "meta": dumps_meta(meta),
    }
    problems = row_problems(row, kind)
    if problems:
        return malformed_row(raw, file, source, kind, "; ".join(problems))
    row[DROP_REASON] = None
    row[DROP_DETAIL] = None
    return row
