"""Record schemas: validation messages, casting, and content-derived ids."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aloe_core.schemas import (
    SFT_SCHEMA,
    SchemaError,
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
