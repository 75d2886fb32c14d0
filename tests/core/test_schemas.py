"""Record schemas: validation messages, casting, and content-derived ids."""

from __future__ import annotations

import hashlib
import json
import random

import pyarrow as pa
import pytest

from aloe_core.schemas import (
    SFT_SCHEMA,
    SchemaError,
    canonical_json,
    dumps_meta,
    record_id,
    row_problems,
    stable_id,
    to_table,
    validate_table,
)


def sft_row(**overrides):
    row = {
        "id": "x",
        "source": "s",
        "task": "mcqa",
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
        "mcqa": {
            "question": "Q?",
            "options": [{"letter": "A", "text": "a"}, {"letter": "B", "text": "b"}],
            "answer": "B",
            "context": None,
            "explanation": None,
        },
        "meta": "{}",
    }
    row.update(overrides)
    return row


def test_valid_rows_build_a_table_with_the_exact_schema():
    table = to_table([sft_row()], "sft")
    assert table.schema.equals(SFT_SCHEMA)
    assert validate_table(table, "sft").num_rows == 1


def test_row_problems_name_the_field():
    assert row_problems(sft_row(messages=[]), "sft") == [
        "messages: must be a non-empty list of {role, content}"
    ]
    bad_role = sft_row(messages=[{"role": "bot", "content": "x"}])
    assert row_problems(bad_role, "sft")[0].startswith("messages[0].role: must be one of")
    last_user = sft_row(messages=[{"role": "user", "content": "x"}])
    assert row_problems(last_user, "sft") == ["messages: last message must be from the assistant"]
    wrong_answer = sft_row()
    wrong_answer["mcqa"]["answer"] = "E"
    assert row_problems(wrong_answer, "sft") == [
        "mcqa.answer: 'E' is not one of the option letters ['A', 'B']"
    ]
    assert row_problems(
        {
            "id": "1",
            "source": "s",
            "prompt": [{"role": "user", "content": "q"}],
            "chosen": " ",
            "rejected": "r",
            "meta": "{}",
        },
        "preference",
    ) == ["chosen: must be a non-empty string"]
    assert row_problems({"id": "1"}, "mcqa")[0] == "source: required field is missing"


def test_validate_table_errors():
    with pytest.raises(SchemaError, match=r"missing columns \['mcqa'\]"):
        validate_table(pa.table({n: [None] for n in SFT_SCHEMA.names if n != "mcqa"}), "sft")
    with pytest.raises(SchemaError, match="unknown record kind 'chat'"):
        validate_table(pa.table({"a": [1]}), "chat")


def test_ids_are_content_derived_and_order_independent():
    a = record_id("sft", "src", {"q": "What?", "opts": {"A": "x", "B": "y"}}, "f.jsonl:3")
    b = record_id("sft", "src", {"opts": {"B": "y", "A": "x"}, "q": "What?"}, "f.jsonl:3")
    assert a == b and len(a) == 20
    assert a != record_id("sft", "src", {"q": "What?", "opts": {"A": "x", "B": "z"}}, "f.jsonl:3")
    assert a != record_id("sft", "src", {"q": "What?", "opts": {"A": "x", "B": "y"}}, "f.jsonl:4")
    # Separator matters: ("ab", "c") and ("a", "bc") must not collide.
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert dumps_meta({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


# Characters json.dumps escapes in different ways: quotes and backslashes, the short escapes, other C0
# controls and DEL (\u00XX), non-ASCII in and beyond the BMP (a surrogate pair), a lone surrogate.
TRICKY = [
    "a",
    '"',
    "\\",
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x07",
    "\x1f",
    "\x7f",
    "é",
    "°",
    "\u2028",
    "😀",
    "\ud800",
    " ",
    "/",
]


def _random_content(rng: random.Random) -> dict:
    """An sft or preference content dict, mostly of the shapes layouts give, sometimes not (other value
    types, a missing or extra key anywhere), so both the direct writer and its fallback are exercised."""

    def text():
        return "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 8)))

    def value(v):
        return v if rng.random() < 0.93 else rng.choice([None, 1, 1.5, True, [v], {"x": v}])

    def pair(a, b):
        d = {a: value(text()), b: value(text())}
        if rng.random() < 0.05:
            d["extra"] = text()
        if rng.random() < 0.05:
            del d[a]
        return d

    def pairs(a, b):
        return value([pair(a, b) for _ in range(rng.randint(0, 3))])

    if rng.random() < 0.5:
        mcqa = None
        if rng.random() < 0.5:
            mcqa = {k: value(text()) for k in ("question", "answer", "explanation")}
            mcqa |= {"options": pairs("letter", "text"), "context": None if rng.random() < 0.5 else text()}
            if rng.random() < 0.1:
                mcqa.pop(rng.choice(sorted(mcqa)))
                mcqa["zz"] = 1
        content = {"task": value(text()), "messages": pairs("content", "role"), "mcqa": mcqa}
    else:
        content = {"prompt": pairs("content", "role"), "chosen": value(text()), "rejected": value(text())}
    if rng.random() < 0.03:
        content.pop(rng.choice(sorted(content)))
    if rng.random() < 0.03:
        content["extra"] = 1
    return content


def test_canonical_json_is_json_dumps_exactly():
    """The direct writer of record contents gives json.dumps's bytes for every content, so ids (which hash
    them) are unchanged; 20,000 seeded contents, about half through the direct path."""
    rng = random.Random(7)
    for _ in range(20_000):
        content = _random_content(rng)
        assert canonical_json(content) == json.dumps(content, sort_keys=True, separators=(",", ":")), content
    assert canonical_json({"b": [1, 2.5], "a": None}) == '{"a":null,"b":[1,2.5]}'


def test_record_id_is_the_documented_hash():
    content = {"task": "chat", "messages": [{"role": "user", "content": "é\n"}], "mcqa": None}
    text = '{"mcqa":null,"messages":[{"content":"\\u00e9\\n","role":"user"}],"task":"chat"}'
    expected = hashlib.sha256("\x1f".join(["sft", "src", text, "f.jsonl:3", ""]).encode()).hexdigest()[:20]
    assert record_id("sft", "src", content, "f.jsonl:3") == expected
