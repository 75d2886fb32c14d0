"""The three record kinds aloe moves between stages, as Arrow schemas, plus ids and validation.

* ``sft``: a conversation to train on. ``messages`` is a list of {role, content}; MCQA-derived rows also
  keep the structured item in ``mcqa`` so later stages (templating, chain-of-thought generation,
  decontamination) can use question, options and answer without parsing prose.
* ``mcqa``: a multiple-choice item (benchmarks, example pools).
* ``preference``: a prompt (messages) with a chosen and a rejected assistant answer.

Every kind carries ``meta``: a JSON object serialised to a string (provenance, scores, template id...),
kept as a string so that stages can add keys without changing the Arrow schema.

Ids are derived from content (plus where the row came from), so that the same input always yields the
same ids, run after run and machine after machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pyarrow as pa

_string = json.encoder.encode_basestring_ascii  # the C escaper json.dumps uses (ensure_ascii)

RecordKind = Literal["sft", "mcqa", "preference"]
ROLES = ("system", "user", "assistant")

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
OPTION = pa.struct([pa.field("letter", pa.string()), pa.field("text", pa.string())])
OPTIONS = pa.list_(OPTION)

_MCQA_ITEM_FIELDS = [
    pa.field("question", pa.string(), nullable=False),
    pa.field("options", OPTIONS, nullable=False),
    pa.field("answer", pa.string(), nullable=False),
    pa.field("context", pa.string()),
    pa.field("explanation", pa.string()),
]
MCQA_ITEM = pa.struct(_MCQA_ITEM_FIELDS)

SFT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("messages", MESSAGES, nullable=False),
        pa.field("mcqa", MCQA_ITEM),
        pa.field("meta", pa.string(), nullable=False),
    ]
)
MCQA_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        *_MCQA_ITEM_FIELDS,
        pa.field("meta", pa.string(), nullable=False),
    ]
)
PREFERENCE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("chosen", pa.string(), nullable=False),
        pa.field("rejected", pa.string(), nullable=False),
        pa.field("meta", pa.string(), nullable=False),
    ]
)
SCHEMAS: dict[str, pa.Schema] = {"sft": SFT_SCHEMA, "mcqa": MCQA_SCHEMA, "preference": PREFERENCE_SCHEMA}


class SchemaError(ValueError):
    """A table or row does not match its record kind."""


def schema_for(kind: str) -> pa.Schema:
    """The Arrow schema of a record kind; raises :class:`SchemaError` for an unknown kind."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise SchemaError(f"unknown record kind {kind!r}; expected one of {sorted(SCHEMAS)}") from None


# One encoder per setting, built once: json.dumps with non-default arguments builds a new JSONEncoder on
# every call, which was a fifth of the cost of serialising a record's content.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_META = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def stable_id(*parts: Any) -> str:
    """A 20-hex-digit id from the given parts (strings, or JSON-serialisable values).

    Parts are serialised canonically (sorted keys, no whitespace) so dict ordering never changes an id.
    """
    hasher = hashlib.sha256()
    for part in parts:
        text = part if isinstance(part, str) else canonical_json(part)
        hasher.update(text.encode("utf-8"))
        hasher.update(b"\x1f")
    return hasher.hexdigest()[:20]


def _pair_json(value: Any, first: str, second: str) -> str | None:
    """``{"first":..,"second":..}`` for a dict of exactly those two string fields (in sorted order)."""
    if type(value) is not dict or len(value) != 2:
        return None
    a, b = value.get(first), value.get(second)
    if type(a) is not str or type(b) is not str:
        return None
    return f'{{"{first}":{_string(a)},"{second}":{_string(b)}}}'


def _list_json(values: Any, first: str, second: str) -> str | None:
    """``[pair,...]`` for a list of :func:`_pair_json` dicts (messages, options), else None."""
    if type(values) is not list:
        return None
    parts = [_pair_json(v, first, second) for v in values]
    return None if None in parts else "[" + ",".join(parts) + "]"


def _optional_string(value: Any) -> str | None:
    if value is None:
        return "null"
    return _string(value) if type(value) is str else None


_MCQA_ITEM_KEYS = frozenset(f.name for f in _MCQA_ITEM_FIELDS)


def _mcqa_json(item: Any) -> str | None:
    """The canonical JSON of an MCQA item dict of exactly the five item fields, else None."""
    if item is None:
        return "null"
    if type(item) is not dict or item.keys() != _MCQA_ITEM_KEYS:
        return None
    options = _list_json(item.get("options"), "letter", "text")
    if options is None:
        return None
    fields = [_optional_string(item.get(k)) for k in ("answer", "context", "explanation", "question")]
    if None in fields:
        return None
    answer, context, explanation, question = fields
    return (
        f'{{"answer":{answer},"context":{context},"explanation":{explanation},'
        f'"options":{options},"question":{question}}}'
    )


def _record_content_json(content: Mapping[str, Any]) -> str | None:
    """The canonical JSON of an sft ``{mcqa, messages, task}`` or preference ``{chosen, prompt, rejected}``
    content dict, written directly (the shapes every layout gives); None for any other value."""
    if type(content) is not dict or len(content) != 3:
        return None
    if "messages" in content and "task" in content and "mcqa" in content:
        mcqa, messages, task = (
            _mcqa_json(content["mcqa"]),
            _list_json(content["messages"], "content", "role"),
            content["task"],
        )
        if mcqa is None or messages is None or type(task) is not str:
            return None
        return f'{{"mcqa":{mcqa},"messages":{messages},"task":{_string(task)}}}'
    if "prompt" in content and "chosen" in content and "rejected" in content:
        prompt, chosen, rejected = (
            _list_json(content["prompt"], "content", "role"),
            content["chosen"],
            content["rejected"],
        )
        if prompt is None or type(chosen) is not str or type(rejected) is not str:
            return None
        return f'{{"chosen":{_string(chosen)},"prompt":{prompt},"rejected":{_string(rejected)}}}'
    return None


def canonical_json(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))``, exactly.

    Record contents (the dicts ids hash, one per input row) are written by :func:`_record_content_json`
    from their known shape with the C string escaper json.dumps uses: 3-5x faster than the encoder's
    generic walk, whose sorting of every dict's keys was most of ingest's id cost. Anything else, or a
    content of an unexpected shape, goes through the encoder.
    """
    text = _record_content_json(value)
    return _CANONICAL.encode(value) if text is None else text


def record_id(kind: str, source: str, content: Mapping[str, Any], locator: str = "") -> str:
    """Id of a record: its kind, source, content and (to keep repeated rows distinct) its locator."""
    return stable_id(kind, source, dict(content), locator)


def dumps_meta(meta: Mapping[str, Any]) -> str:
    """Serialise ``meta`` canonically so identical metadata gives identical bytes in Parquet."""
    return _META.encode(dict(meta))


def loads_meta(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def options_to_list(options: Mapping[str, str] | Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """Normalise {letter: text} or [{letter, text}] to the ordered list form used in Arrow."""
    if isinstance(options, Mapping):
        return [{"letter": str(k), "text": "" if v is None else str(v)} for k, v in options.items()]
    return [{"letter": str(o["letter"]), "text": str(o["text"])} for o in options]


def _message_problems(messages: Any, field: str) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{field}: must be a non-empty list of {{role, content}}"]
    problems = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            problems.append(f"{field}[{i}]: must be an object with role and content")
            continue
        if message.get("role") not in ROLES:
            problems.append(f"{field}[{i}].role: must be one of {list(ROLES)}, got {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            problems.append(f"{field}[{i}].content: must be a string")
    return problems


def _mcqa_item_problems(item: Mapping[str, Any], prefix: str = "") -> list[str]:
    problems = []
    if not isinstance(item.get("question"), str) or not item["question"].strip():
        problems.append(f"{prefix}question: must be a non-empty string")
    options = item.get("options")
    if not isinstance(options, list) or len(options) < 2:
        problems.append(f"{prefix}options: must list at least two options")
        return problems
    letters = [o.get("letter") for o in options if isinstance(o, Mapping)]
    if len(set(letters)) != len(options):
        problems.append(f"{prefix}options: letters must be unique")
    if item.get("answer") not in letters:
        problems.append(f"{prefix}answer: {item.get('answer')!r} is not one of the option letters {letters}")
    return problems


@functools.cache
def _required_fields(kind: str) -> tuple[str, ...]:
    """The non-nullable fields of ``kind``, in schema order (cached: walking a pyarrow schema builds a
    Field object per field, which cost more than the rest of a row's check)."""
    return tuple(f.name for f in schema_for(kind) if not f.nullable)


def row_problems(row: Mapping[str, Any], kind: str) -> list[str]:
    """Everything wrong with one row of ``kind`` (empty list = valid). Messages name the field path."""
    problems = [
        f"{name}: required field is missing" for name in _required_fields(kind) if row.get(name) is None
    ]
    if problems:
        return problems
    if kind == "sft":
        problems += _message_problems(row["messages"], "messages")
        if not problems and row["messages"][-1]["role"] != "assistant":
            problems.append("messages: last message must be from the assistant")
        if row.get("mcqa") is not None:
            problems += _mcqa_item_problems(row["mcqa"], "mcqa.")
    elif kind == "mcqa":
        problems += _mcqa_item_problems(row)
    elif kind == "preference":
        problems += _message_problems(row["prompt"], "prompt")
        for field in ("chosen", "rejected"):
            if not isinstance(row[field], str) or not row[field].strip():
                problems.append(f"{field}: must be a non-empty string")
    return problems


def validate_table(table: pa.Table, kind: str) -> pa.Table:
    """Check ``table`` against the schema of ``kind`` and return it cast to exactly that schema.

    Raises:
        SchemaError: a column is missing or cannot be cast; the message names the column.
    """
    schema = schema_for(kind)
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaError(f"{kind} table is missing columns {missing}")
    extra = [name for name in table.column_names if name not in schema.names]
    if extra:
        raise SchemaError(f"{kind} table has unexpected columns {extra}")
    table = table.select(schema.names)
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(f"{kind} table does not match its schema: {exc}") from None


def to_table(rows: list[Mapping[str, Any]], kind: str) -> pa.Table:
    """Build a table of ``kind`` from Python rows (after checking each with :func:`row_problems`)."""
    for i, row in enumerate(rows):
        problems = row_problems(row, kind)
        if problems:
            raise SchemaError(f"row {i}: " + "; ".join(problems))
    return table_from_rows(rows, schema_for(kind))


def table_from_rows(rows: list[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)`` (a missing key is null, extra keys are ignored),
    built one column at a time: the same table in half the time, since from_pylist looks every field
    up in every row through a slower path (ingest builds every block of every source this way)."""
    return pa.Table.from_arrays(
        [pa.array([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema
    )
