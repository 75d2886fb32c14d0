"""Source readers on a real local Ray: every layout and container, quarantine of broken rows with the
right file, locator and field, path expansion, pre-flight errors, determinism, and the real benchmarks.

Fixture files live in tests/data/fixtures/sources (hand-written; medmcqa/train.jsonl holds invalid UTF-8
bytes on purpose). Parquet, Arrow and gzip inputs are written by the tests from the same kind of rows.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core.containers import iter_json, iter_jsonl
from aloe_core.errors import InputError
from aloe_core.schemas import record_id, stable_id
from aloe_data.pipeline.annotations import annotated_schema
from aloe_data.sources import LAYOUTS, RowError, SourceConfig, check_sources, mcqa_answer_text, read_sources

FIXTURES = Path(__file__).parent / "fixtures" / "sources"

SFT_SOURCES = [
    ("medmcqa", "medmcqa", "medmcqa/train.jsonl"),
    ("medqa", "medqa", "medqa/dev.jsonl"),
    ("prompt_engine", "prompt_engine_mcqa", "prompt_engine/*.json"),
    ("pubmedqa", "pubmedqa", "pubmedqa/ori_pqal.json"),
    ("openai", "openai_chat", "chat/openai.jsonl"),
    ("sharegpt", "sharegpt", "chat/sharegpt.jsonl"),
    ("alpaca", "alpaca", "chat/alpaca.jsonl"),
    ("open", "prompt_engine_open", "open/openmedqa.json"),
]


def source(name: str, fmt: str, path: str | list[str], **kw) -> SourceConfig:
    return SourceConfig(name=name, format=fmt, path=path, **kw)


def fixture_sources() -> list[SourceConfig]:
    return [source(n, f, str(FIXTURES / p)) for n, f, p in SFT_SOURCES]


def meta(row: dict) -> dict:
    return json.loads(row["meta"])


def outcomes(rows: list[dict]) -> list[tuple[str, object, str | None]]:
    """(file, locator, drop_detail without its "file:locator: " prefix) per row, in Dataset order."""
    result = []
    for row in rows:
        m = meta(row)
        detail = row["drop_detail"]
        if detail is not None:
            prefix = f"{m['file']}:{m['row']}: "
            assert detail.startswith(prefix), detail
            detail = detail[len(prefix) :]
        result.append((m["file"], m["row"], detail))
    return result


def by_row(rows: list[dict]) -> dict[object, dict]:
    return {meta(r)["row"]: r for r in rows}


@pytest.fixture(scope="module")
def sft_rows(ray_session) -> dict[str, list[dict]]:
    """Every sft fixture source read in one run, rows grouped by source (in Dataset order)."""
    rows = read_sources(fixture_sources(), "sft").take_all()
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["source"], []).append(row)
    return grouped


# -- quarantine and layouts ----------------------------------------------------------------------------


def test_rows_have_the_annotated_schema_and_sources_keep_config_order(ray_session, sft_rows):
    ds = read_sources(fixture_sources()[:2], "sft")
    assert ds.schema().base_schema.names == annotated_schema("sft").names
    rows = ds.take_all()
    assert [r["source"] for r in rows] == ["medmcqa"] * len(sft_rows["medmcqa"]) + ["medqa"] * len(
        sft_rows["medqa"]
    )


def test_medmcqa_jsonl_quarantines_broken_lines_with_line_numbers(sft_rows):
    lines = (FIXTURES / "medmcqa/train.jsonl").read_bytes().split(b"\n")
    try:
        json.loads(lines[3])
    except json.JSONDecodeError as exc:
        bad_json = f"$: invalid JSON: {exc.msg} (column {exc.colno})"
    bad_byte = lines[7].index(b"\xe9") + 1
    cop = "cop: must be the 0-based index 0-3 of the correct option (opa..opd), got"
    # Lines 2 and 9 are blank (skipped, but counted); line 11 ends with CRLF; line 12 has no newline.
    assert outcomes(sft_rows["medmcqa"]) == [
        ("train.jsonl", 1, None),
        ("train.jsonl", 3, None),
        ("train.jsonl", 4, bad_json),
        ("train.jsonl", 5, f"{cop} 4"),
        ("train.jsonl", 6, "opc: required field is missing"),
        ("train.jsonl", 7, f"{cop} '2'"),
        ("train.jsonl", 8, f"question: invalid UTF-8 bytes (byte {bad_byte} of the line)"),
        ("train.jsonl", 10, "$: must be a JSON object, got list"),
        ("train.jsonl", 11, None),
        ("train.jsonl", 12, None),
    ]


def test_malformed_rows_keep_only_id_source_and_raw_meta(sft_rows):
    row = by_row(sft_rows["medmcqa"])[8]
    assert row["drop_reason"] == "malformed"
    assert row["id"] == stable_id("sft", "medmcqa", "malformed", "train.jsonl:8")
    assert row["source"] == "medmcqa"
    assert {k for k, v in row.items() if v is not None} == {
        "id",
        "source",
        "meta",
        "drop_reason",
        "drop_detail",
    }
    line = (FIXTURES / "medmcqa/train.jsonl").read_bytes().split(b"\n")[7]
    assert meta(row) == {"file": "train.jsonl", "row": 8, "raw": line.decode("utf-8", "replace")}


def test_mcqa_row_messages_struct_meta_and_id(sft_rows):
    row = by_row(sft_rows["medmcqa"])[1]
    options = [
        {"letter": "A", "text": "Axillary"},
        {"letter": "B", "text": "Radial"},
        {"letter": "C", "text": "Ulnar"},
        {"letter": "D", "text": "Median"},
    ]
    explanation = "The axillary nerve (C5, C6) supplies the deltoid."
    assert row["task"] == "mcqa"
    assert row["mcqa"] == {
        "question": "Which nerve supplies the deltoid?",
        "options": options,
        "answer": "A",
        "context": None,
        "explanation": explanation,
    }
    assert row["messages"] == [
        {
            "role": "user",
            "content": "Which nerve supplies the deltoid?\n\nA. Axillary\nB. Radial\nC. Ulnar\nD. Median",
        },
        {"role": "assistant", "content": f"The answer is A: Axillary.\n\n{explanation}"},
    ]
    assert meta(row) == {
        "file": "train.jsonl",
        "row": 1,
        "format": "medmcqa",
        "original_id": "mm-1",
        "subject": "Anatomy",
        "topic": "Upper limb",
        "choice_type": "single",
    }
    content = {"task": row["task"], "messages": row["messages"], "mcqa": row["mcqa"]}
    assert row["id"] == record_id("sft", "medmcqa", content, locator="train.jsonl:1")
    # cop 3 -> D; a null explanation adds nothing to the answer.
    assert by_row(sft_rows["medmcqa"])[3]["messages"][1]["content"] == "The answer is D: Ethosuximide."


def test_medqa_checks_answer_text_against_the_indexed_option(sft_rows):
    assert outcomes(sft_rows["medqa"]) == [
        ("dev.jsonl", 1, None),
        ("dev.jsonl", 2, "answer: 'Valproate' does not match option A ('Phenytoin') named by answer_idx"),
        ("dev.jsonl", 3, "answer_idx: 'E' is not one of the option letters ['A', 'B', 'C', 'D']"),
        ("dev.jsonl", 5, "options: must have at least two options, got 1"),
        ("dev.jsonl", 6, None),
    ]
    rows = by_row(sft_rows["medqa"])
    assert (
        rows[1]["messages"][1]["content"] == "The answer is A: Staphylococcus aureus."
    )  # case/space tolerated
    assert rows[6]["mcqa"]["answer"] == "B"  # answer_idx "b" matched case-insensitively
    assert [o["letter"] for o in rows[6]["mcqa"]["options"]] == ["A", "B", "C", "D", "E"]
    assert meta(rows[6])["meta_info"] == "step2&3"


def test_prompt_engine_json_objects_lists_and_a_syntax_error(sft_rows):
    rows = sft_rows["prompt_engine"]
    got = outcomes(rows)
    # Files in sorted order: broken.json, list.json, sample.json.
    assert got[0] == ("broken.json", "k1", None)
    file, locator, detail = got[1]
    assert (file, locator) == ("broken.json", "#1")
    assert detail.startswith("$: invalid JSON: parse error: ")
    assert detail.endswith("items from here to the end of the file were not read")
    assert got[2:] == [
        ("list.json", 0, None),
        ("list.json", 1, "question: must not be empty"),
        ("list.json", 2, None),
        ("sample.json", "uid-1", None),
        ("sample.json", "uid-2", None),
        ("sample.json", "uid-3", None),
        ("sample.json", "uid-4", "correct_answer: 'E' is not one of the option letters ['A', 'B', 'C', 'D']"),
        ("sample.json", "uid-5", "$: must be a JSON object, got string"),
        ("sample.json", "uid-6", "options: required field is missing"),
        ("sample.json", "uid-7", "options.B: must be a string, got list"),
    ]
    keyed = {(meta(r)["file"], meta(r)["row"]): r for r in rows}
    assert meta(keyed["sample.json", "uid-5"])["raw"] == '"not an object"'
    context_row = keyed["sample.json", "uid-2"]
    assert context_row["task"] == "mcqa_context"
    assert context_row["messages"][0]["content"] == (
        "Background paragraph.\n\nResults paragraph.\n\n"
        "Does the study support the use of statins?\n\nA. yes\nB. no\nC. maybe"
    )
    assert context_row["messages"][1]["content"] == "The answer is B: no."
    careqa = keyed["sample.json", "uid-3"]
    assert careqa["mcqa"]["context"] == "A single context string."
    assert meta(careqa) == {
        "file": "sample.json",
        "row": "uid-3",
        "format": "prompt_engine_mcqa",
        "exam_id": 26,
        "year": 2024,
        "category": "Medicine",
    }
    explained = keyed["list.json", 2]
    assert explained["messages"][1]["content"] == (
        "The answer is A: Furosemide.\n\nFurosemide blocks NKCC2 in the thick ascending limb."
    )


def test_pubmedqa_becomes_a_yes_no_maybe_item_with_context(sft_rows):
    assert outcomes(sft_rows["pubmedqa"]) == [
        ("ori_pqal.json", "21645374", None),
        ("ori_pqal.json", "16418930", None),
        ("ori_pqal.json", "9488747", "final_decision: must be one of yes, no, maybe; got 'perhaps'"),
        ("ori_pqal.json", "17208539", "CONTEXTS: required field is missing"),
    ]
    row = by_row(sft_rows["pubmedqa"])["21645374"]
    assert row["task"] == "mcqa_context"
    assert row["mcqa"]["options"] == [
        {"letter": "A", "text": "yes"},
        {"letter": "B", "text": "no"},
        {"letter": "C", "text": "maybe"},
    ]
    assert row["mcqa"]["context"] == (
        "Programmed cell death (PCD) is the regulated death of cells.\n\n"
        "The lace plant forms perforations by PCD."
    )
    assert row["messages"][1]["content"] == (
        "The answer is A: yes.\n\nResults depicted mitochondrial dynamics in vivo as PCD progresses."
    )
    assert meta(row)["context_labels"] == ["BACKGROUND", "RESULTS"]
    assert by_row(sft_rows["pubmedqa"])["16418930"]["mcqa"]["answer"] == "C"  # "Maybe"


def test_openai_chat_layout(sft_rows):
    assert outcomes(sft_rows["openai"]) == [
        ("openai.jsonl", 1, None),
        ("openai.jsonl", 2, None),
        ("openai.jsonl", 3, "messages[1].role: must be one of ['system', 'user', 'assistant'], got 'tool'"),
        ("openai.jsonl", 4, "messages: last message must be from the assistant"),
        ("openai.jsonl", 5, None),
        ("openai.jsonl", 6, "messages[0].content: must be a string, got number"),
        ("openai.jsonl", 7, "messages: must be a non-empty list of messages, got string"),
    ]
    rows = by_row(sft_rows["openai"])
    assert {r["task"] for r in rows.values() if r["drop_reason"] is None} == {"chat"}
    assert [m["role"] for m in rows[2]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert rows[5]["messages"][0] == {"role": "user", "content": "Define tachycardia."}  # text parts joined
    assert rows[1]["mcqa"] is None
    assert meta(rows[1])["original_id"] == "c1"


def test_sharegpt_layout(sft_rows):
    assert outcomes(sft_rows["sharegpt"]) == [
        ("sharegpt.jsonl", 1, None),
        ("sharegpt.jsonl", 2, None),
        (
            "sharegpt.jsonl",
            3,
            "conversations[1].from: unknown speaker 'bot'; expected one of "
            "['assistant', 'chatgpt', 'gpt', 'human', 'model', 'system', 'user']",
        ),
        ("sharegpt.jsonl", 4, "conversations[1].value: required field is missing"),
        ("sharegpt.jsonl", 5, "conversations: must be a non-empty list of turns, got an empty list"),
    ]
    rows = by_row(sft_rows["sharegpt"])
    assert rows[1]["messages"] == [
        {"role": "user", "content": "What causes gout?"},
        {"role": "assistant", "content": "Deposition of monosodium urate crystals."},
    ]
    assert [m["role"] for m in rows[2]["messages"]] == ["system", "user", "assistant"]


def test_alpaca_layout(sft_rows):
    assert outcomes(sft_rows["alpaca"]) == [
        ("alpaca.jsonl", 1, None),
        ("alpaca.jsonl", 2, None),
        ("alpaca.jsonl", 3, "output: required field is missing"),
        ("alpaca.jsonl", 4, "instruction: must be a string, got number"),
    ]
    rows = by_row(sft_rows["alpaca"])
    assert rows[1]["messages"] == [
        {"role": "user", "content": "Summarise the text.\n\nAspirin irreversibly inhibits COX-1."},
        {"role": "assistant", "content": "Aspirin blocks COX-1 permanently."},
    ]
    assert rows[2]["messages"][0]["content"] == "Name the largest artery."  # empty input adds nothing


def test_prompt_engine_open_layout(sft_rows):
    assert outcomes(sft_rows["open"]) == [
        ("openmedqa.json", "o1", None),
        ("openmedqa.json", "o2", "correct_answer: required field is missing"),
    ]
    row = sft_rows["open"][0]
    assert row["task"] == "open_qa"
    assert row["messages"][1]["content"] == "Tell the attending that the mistake must be disclosed"


def test_preference_layout(ray_session):
    rows = read_sources(
        [source("pairs", "preference", str(FIXTURES / "preference/pairs.jsonl"))], "preference"
    )
    rows = rows.take_all()
    assert outcomes(rows) == [
        ("pairs.jsonl", 1, None),
        ("pairs.jsonl", 2, None),
        ("pairs.jsonl", 3, None),
        ("pairs.jsonl", 4, "rejected: required field is missing"),
        ("pairs.jsonl", 5, "chosen: has no assistant message"),
        (
            "pairs.jsonl",
            6,
            "prompt: missing, and chosen and rejected do not share the same conversation before the answer",
        ),
    ]
    good = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows[:3]]
    assert good == [
        {
            "prompt": [{"role": "user", "content": "Is ibuprofen safe in late pregnancy?"}],
            "chosen": "No: avoid NSAIDs after 20 weeks; they can affect fetal kidneys and the ductus "
            "arteriosus.",
            "rejected": "Yes, it is always safe.",
        },
        {
            "prompt": [
                {"role": "system", "content": "Be concise."},
                {"role": "user", "content": "First-line drug for type 2 diabetes?"},
            ],
            "chosen": "Metformin.",
            "rejected": "Insulin for everyone.",
        },
        {
            "prompt": [{"role": "user", "content": "Treat a mild burn?"}],
            "chosen": "Cool running water for 20 minutes.",
            "rejected": "Apply butter.",
        },
    ]
    assert set(rows[0]) == set(annotated_schema("preference").names)
    assert rows[0]["id"] == record_id("preference", "pairs", good[0], locator="pairs.jsonl:1")


def test_task_override_no_explanation_and_mcqa_kind(ray_session):
    path = str(FIXTURES / "prompt_engine/list.json")
    sources = [source("pe", "prompt_engine_mcqa", path, task="mcqa_exam", include_explanation=False)]
    row = read_sources(sources, "sft").take_all()[2]
    assert row["task"] == "mcqa_exam"
    assert row["messages"][1]["content"] == "The answer is A: Furosemide."
    assert row["mcqa"]["explanation"] == "Furosemide blocks NKCC2 in the thick ascending limb."
    bench = read_sources([source("pe", "prompt_engine_mcqa", path)], "mcqa").take_all()
    assert [r["drop_reason"] for r in bench] == [None, "malformed", None]
    assert bench[0]["options"] == [
        {"letter": "A", "text": "120-130"},
        {"letter": "B", "text": "135-145"},
        {"letter": "C", "text": "150-160"},
    ]
    assert (bench[0]["question"], bench[0]["answer"], bench[2]["context"]) == (
        "Normal serum sodium (mmol/L)?",
        "B",
        "Diuretics act on different nephron segments.",
    )


# -- layouts and containers as plain functions (no Ray) ------------------------------------------------


def test_layout_variants_and_edge_cases():
    hub_pubmedqa = {
        "pubid": 25429730,
        "question": "Is it effective?",
        "context": {"contexts": ["Para one.", "Para two."], "labels": ["A", "B"]},
        "long_answer": "It was.",
        "final_decision": "yes",
    }
    parsed = LAYOUTS["pubmedqa"](hub_pubmedqa)
    assert (parsed.content["context"], parsed.content["answer"], parsed.content["explanation"]) == (
        "Para one.\n\nPara two.",
        "A",
        "It was.",
    )
    assert parsed.meta == {"original_id": "25429730", "context_labels": ["A", "B"]}
    # Options as Arrow map pairs or [{letter, text}], numbers as text, answer letter case-insensitive.
    for options in ([("A", 10), ("B", 20)], [{"letter": "A", "text": 10}, {"letter": "B", "text": 20}]):
        item = LAYOUTS["prompt_engine_mcqa"]({"question": "Q?", "options": options, "correct_answer": "b"})
        assert item.content["options"] == [{"letter": "A", "text": "10"}, {"letter": "B", "text": "20"}]
        assert item.content["answer"] == "B"
    medmcqa = {"question": "Q", "opa": "a", "opb": "b", "opc": "c", "opd": "d"}
    with pytest.raises(RowError) as caught:
        LAYOUTS["medmcqa"]({**medmcqa, "cop": True})
    assert (
        str(caught.value) == "cop: must be the 0-based index 0-3 of the correct option (opa..opd), got True"
    )
    turns = [{"from": "Human", "value": "hi"}, {"from": "GPT", "value": "hello"}]
    assert [m["role"] for m in LAYOUTS["sharegpt"]({"conversations": turns}).content["messages"]] == [
        "user",
        "assistant",
    ]
    with pytest.raises(RowError) as caught:
        LAYOUTS["preference"]({"prompt": "p", "chosen": "  ", "rejected": "r"})
    assert (caught.value.field, caught.value.message) == ("chosen", "must not be empty")


def test_answer_text_never_doubles_the_final_punctuation():
    item = {
        "options": [{"letter": "A", "text": "Yes."}, {"letter": "B", "text": "Is it?"}],
        "explanation": "E.",
    }
    assert (
        mcqa_answer_text({**item, "answer": "A"}, include_explanation=True) == "The answer is A: Yes.\n\nE."
    )
    assert mcqa_answer_text({**item, "answer": "B"}, include_explanation=False) == "The answer is B: Is it?"


def test_lines_split_across_read_chunks():
    data = b"\xef\xbb\xbf" + b'{"a": "\xc3\xa9t\xc3\xa9"}\r\n\n   \n{"b": 1}\n[2]\n{"c": "x"}'
    expected = [(1, {"a": "été"}), (4, {"b": 1}), (5, None), (6, {"c": "x"})]
    for chunk_size in (1, 2, 3, 7, 1 << 20):
        rows = list(iter_jsonl(io.BytesIO(data), chunk_size))
        assert [(r.locator, r.value) for r in rows] == expected
        assert rows[2].error == "$: must be a JSON object, got list"


def test_json_invalid_bytes_quarantine_one_item_and_reading_goes_on():
    data = b'\xef\xbb\xbf{"k1": {"q": "caf\xc3\xa9"}, "k2": {"q": "ok", "opts": ["x", "caf\xe9"]}, '
    data += b'"k3": {"q": 1.5}}'
    for chunk_size in (1, 3, 1 << 20):
        rows = list(iter_json(io.BytesIO(data), chunk_size))
        assert [(r.locator, r.value, r.error) for r in rows] == [
            ("k1", {"q": "café"}, None),
            ("k2", None, "opts[1]: invalid UTF-8 bytes"),
            ("k3", {"q": 1.5}, None),
        ]
        assert rows[1].raw == '{"q": "ok", "opts": ["x", "caf\ufffd"]}'
    assert [r.error for r in iter_json(io.BytesIO(b"  "))] == [
        "$: expected a top-level JSON object {key: item} or list of items, got an empty file"
    ]


# -- containers ----------------------------------------------------------------------------------------

MEDMCQA_GOOD = {
    "question": "Antidote for paracetamol poisoning",
    "opa": "Naloxone",
    "opb": "N-acetylcysteine",
    "opc": "Flumazenil",
    "opd": "Atropine",
    "cop": 1,
    "exp": None,
    "id": "x",
}


def test_parquet_rows_are_located_by_0_based_index(ray_session, tmp_path):
    rows = [
        MEDMCQA_GOOD,
        {**MEDMCQA_GOOD, "cop": 7},
        {**MEDMCQA_GOOD, "question": None},
        {**MEDMCQA_GOOD, "exp": "NAC replenishes glutathione."},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet", row_group_size=2)
    got = read_sources([source("mm", "medmcqa", str(tmp_path / "train.parquet"))], "sft").take_all()
    assert outcomes(got) == [
        ("train.parquet", 0, None),
        ("train.parquet", 1, "cop: must be the 0-based index 0-3 of the correct option (opa..opd), got 7"),
        ("train.parquet", 2, "question: required field is missing"),
        ("train.parquet", 3, None),
    ]
    assert (
        got[3]["messages"][1]["content"]
        == "The answer is B: N-acetylcysteine.\n\nNAC replenishes glutathione."
    )
    assert json.loads(meta(got[1])["raw"])["cop"] == 7


def test_hf_save_to_disk_folders_read_from_their_arrow_shards(ray_session, tmp_path):
    datasets = pytest.importorskip("datasets")
    items = [
        {"question": "Q1?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "correct_answer": "D"},
        {
            "question": "Q2?",
            "options": {"A": "yes", "B": "no", "C": "maybe", "D": None},
            "correct_answer": "C",
        },
        {"question": "Q3?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "correct_answer": "Z"},
    ]
    ds = datasets.Dataset.from_list(items)
    ds.save_to_disk(str(tmp_path / "single"), num_shards=2)
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "splits"))
    sources = [
        source("single", "prompt_engine_mcqa", str(tmp_path / "single")),
        source("splits", "prompt_engine_mcqa", str(tmp_path / "splits"), container="hf_disk"),
    ]
    got = read_sources(sources, "sft").take_all()
    bad = "correct_answer: 'Z' is not one of the option letters ['A', 'B', 'C', 'D']"
    assert outcomes(got) == [
        ("data-00000-of-00002.arrow", 0, None),
        ("data-00000-of-00002.arrow", 1, None),
        ("data-00001-of-00002.arrow", 0, bad),
        ("test/data-00000-of-00001.arrow", 0, None),
        ("train/data-00000-of-00001.arrow", 0, None),
        ("train/data-00000-of-00001.arrow", 1, None),
        ("train/data-00000-of-00001.arrow", 2, bad),
    ]
    # The struct column holds D for every row; Q2's null D is not an option.
    assert [o["letter"] for o in got[1]["mcqa"]["options"]] == ["A", "B", "C"]
    assert got[1]["messages"][1]["content"] == "The answer is C: maybe."


def test_folders_globs_compression_and_skipped_names(ray_session, tmp_path):
    good = (FIXTURES / "chat/alpaca.jsonl").read_text().splitlines()[0]
    (tmp_path / "a").mkdir()
    (tmp_path / "b/c").mkdir(parents=True)
    (tmp_path / "a/part-0.jsonl").write_text(good + "\n" + good + "\n")
    with gzip.open(tmp_path / "a/part-1.jsonl.gz", "wt") as f:
        f.write("\n" + good + "\n{broken\n")
    (tmp_path / "b/c/part-2.jsonl").write_text(good + "\n")
    for skipped in (".hidden.jsonl", "_SUCCESS", "README.md", "a/_tmp.jsonl"):
        (tmp_path / skipped).write_text("{broken\n")

    def read(path, **kw):
        return outcomes(read_sources([source("al", "alpaca", path, **kw)], "sft").take_all())

    bad = "$: invalid JSON: Expecting property name enclosed in double quotes (column 2)"
    assert read(str(tmp_path)) == [
        ("a/part-0.jsonl", 1, None),
        ("a/part-0.jsonl", 2, None),
        ("a/part-1.jsonl.gz", 2, None),
        ("a/part-1.jsonl.gz", 3, bad),
        ("b/c/part-2.jsonl", 1, None),
    ]
    assert read(str(tmp_path / "**/part-*.jsonl")) == [
        ("a/part-0.jsonl", 1, None),
        ("a/part-0.jsonl", 2, None),
        ("b/c/part-2.jsonl", 1, None),
    ]
    assert read(str(tmp_path / "a/part-*")) == [
        ("part-0.jsonl", 1, None),
        ("part-0.jsonl", 2, None),
        ("part-1.jsonl.gz", 2, None),
        ("part-1.jsonl.gz", 3, bad),
    ]
    # A list of paths keeps its order; a file named explicitly is read whatever its name with `container`.
    (tmp_path / "extra.txt").write_text(good + "\n")
    listed = [str(tmp_path / "b/c/part-2.jsonl"), str(tmp_path / "extra.txt")]
    assert read(listed, container="jsonl") == [("part-2.jsonl", 1, None), ("extra.txt", 1, None)]


def test_order_is_file_then_line_across_many_blocks_and_tasks(ray_session, tmp_path):
    # 3 files x 2,500 rows: more rows than one block, more files than one read task.
    for f in range(3):
        lines = [
            json.dumps({"instruction": f"file {f} question {i}", "output": f"answer {i}"})
            for i in range(2500)
        ]
        (tmp_path / f"part-{f}.jsonl").write_text("\n".join(lines) + "\n")
    ds = read_sources([source("al", "alpaca", str(tmp_path))], "sft", cpus=3)
    got = [(meta(r)["file"], meta(r)["row"]) for r in ds.take_all()]
    assert got == [(f"part-{f}.jsonl", i) for f in range(3) for i in range(1, 2501)]


def test_two_reads_give_identical_rows(ray_session, sft_rows):
    again = read_sources(fixture_sources(), "sft", cpus=4).take_all()
    first = [r for rows in sft_rows.values() for r in rows]
    assert again == first
    assert len({r["id"] for r in first}) == len(first)


# -- pre-flight errors ---------------------------------------------------------------------------------


def test_check_sources_lists_files_without_ray():
    plan = check_sources(fixture_sources()[:3], "sft")
    assert [(u.source_index, u.rel, u.container) for u in plan.units] == [
        (0, "train.jsonl", "jsonl"),
        (1, "dev.jsonl", "jsonl"),
        (2, "broken.json", "json"),
        (2, "list.json", "json"),
        (2, "sample.json", "json"),
    ]


@pytest.mark.parametrize(
    ("sources", "kind", "message"),
    [
        (
            [("gone", "medmcqa", "{tmp}/missing.jsonl")],
            "sft",
            "source 'gone': path '{tmp}/missing.jsonl': does not exist",
        ),
        ([("g", "medmcqa", "{tmp}/*.parquet")], "sft", "source 'g': path '{tmp}/*.parquet': matches no file"),
        (
            [("empty", "medmcqa", "{tmp}/empty")],
            "sft",
            "source 'empty': path '{tmp}/empty': matches no readable",
        ),
        ([("txt", "alpaca", "{tmp}/notes.txt")], "sft", "cannot tell how {tmp}/notes.txt is stored"),
        (
            [("p", "preference", "{fx}/preference/pairs.jsonl")],
            "sft",
            "source 'p': format 'preference' gives",
        ),
        ([("m", "medmcqa", "{fx}/medmcqa/train.jsonl")], "preference", "source 'm': format 'medmcqa' gives"),
        ([("hf", "prompt_engine_mcqa", "{tmp}/hf")], "sft", "{tmp}/hf/state.json is unreadable"),
        (
            [("a", "alpaca", "{fx}/chat/alpaca.jsonl"), ("b", "alpaca", "{fx}/chat/*.jsonl")],
            "sft",
            "is matched twice (sources 'a' and 'b')",
        ),
        (
            [("a", "alpaca", ["{tmp}/x/same.jsonl", "{tmp}/y/same.jsonl"])],
            "sft",
            "both hold a file named 'same.jsonl'",
        ),
        ([("a", "alpaca", "{tmp}/x"), ("a", "alpaca", "{tmp}/y")], "sft", "source names ['a'] repeat"),
    ],
)
def test_check_sources_errors_name_the_source_and_path(tmp_path, sources, kind, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/README.md").write_text("no data here")
    (tmp_path / "notes.txt").write_text("{}\n")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf/state.json").write_text("{not json")
    (tmp_path / "hf/data-00000-of-00001.arrow").write_bytes(b"")
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.jsonl").write_text("{}\n")

    def fill(text):
        return text.format(tmp=tmp_path, fx=FIXTURES)

    configs = [
        source(n, f, [fill(p) for p in path] if isinstance(path, list) else fill(path))
        for n, f, path in sources
    ]
    with pytest.raises(InputError) as caught:
        check_sources(configs, kind)
    assert fill(message) in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder, so permissions cannot be denied")
def test_unreadable_folder_is_an_input_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.jsonl").write_text("{}\n")
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match="is not readable"):
            check_sources([source("l", "alpaca", str(locked))], "sft")
    finally:
        locked.chmod(0o755)


# -- real benchmark files ------------------------------------------------------------------------------


def test_real_benchmarks_ingest_completely(ray_session, shared_mcqa):
    mcqa_dirs = ["careqa", "medmcqa", "medqa_4opt", "mmlu", "pubmedqa"]
    sources = [
        source("mcqa", "prompt_engine_mcqa", [str(shared_mcqa / d) for d in mcqa_dirs]),
        source("open", "prompt_engine_open", str(shared_mcqa / "openmedqa")),
    ]
    rows = read_sources(sources, "sft").take_all()
    assert [r["drop_detail"] for r in rows if r["drop_reason"] is not None] == []
    # Oracle: the keys of every file, json-loaded whole here, in file order.
    expected = []
    for name, d in [("mcqa", d) for d in mcqa_dirs] + [("open", "openmedqa")]:
        for path in sorted((shared_mcqa / d).glob("*.json")):
            expected += [(name, path.name, key) for key in json.loads(path.read_text())]
    assert [(r["source"], meta(r)["file"], meta(r)["row"]) for r in rows] == expected
    assert len({r["id"] for r in rows}) == len(rows)

    keyed = {(meta(r)["file"], meta(r)["row"]): r for r in rows}
    medqa = json.loads((shared_mcqa / "medqa_4opt/medqa_4opt_val.json").read_text())
    key, item = next(iter(medqa.items()))
    row = keyed["medqa_4opt_val.json", key]
    option_lines = "\n".join(f"{letter}. {text}" for letter, text in item["options"].items())
    answer_text = item["options"][item["correct_answer"]]
    assert row["messages"] == [
        {"role": "user", "content": f"{item['question']}\n\n{option_lines}"},
        {"role": "assistant", "content": f"The answer is {item['correct_answer']}: {answer_text}."},
    ]
    assert meta(row)["original_id"] == item["id"]
    pubmed = json.loads((shared_mcqa / "pubmedqa/pubmedqa_test.json").read_text())
    key, item = next(iter(pubmed.items()))
    row = keyed["pubmedqa_test.json", key]
    assert row["task"] == "mcqa_context"
    assert row["messages"][0]["content"].startswith("\n\n".join(item["context"]) + "\n\n" + item["question"])


# -- the embedded corpus -------------------------------------------------------------------------------


def test_sample_corpus_malformed_rows_are_exactly_quarantined(ray_session, tmp_path):
    from aloe_fixtures import corpus
    from aloe_fixtures.demo import SAMPLE_PREFERENCE_SOURCES, SAMPLE_SFT_SOURCES

    # 3,000 rows plant 30 malformed rows: every variant (truncated line, missing field, wrong type,
    # invalid value) of every JSONL format at least once.
    corpus.write_sample(tmp_path, rows=3000, seed=0)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    # Ground truth reasons are "truncated_json" or "<what>:<field>"; the reader must name that field.
    planted = {
        (d["file"], str(d["row"])): "$" if d["reason"] == "truncated_json" else d["reason"].split(":")[1]
        for d in truth["defects"]
        if d["kind"] == "malformed"
    }
    assert len(planted) == 30
    seen: dict[tuple[str, str], str] = {}
    for kind, table in (("sft", SAMPLE_SFT_SOURCES), ("preference", SAMPLE_PREFERENCE_SOURCES)):
        sources = [source(n, f, str(tmp_path / p)) for n, p, f in table]
        prefix = {n: str(Path(p).parent) for n, p, _ in table}
        rows = read_sources(sources, kind).take_all()
        files = {f"{prefix[n]}/{Path(p).name}" for n, p, _ in table}
        assert len(rows) == sum(n for f, n in truth["files"].items() if f in files)
        assert {r["drop_reason"] for r in rows} == {None, "malformed"}
        for (file, row, detail), r in zip(outcomes(rows), rows, strict=True):
            if detail is not None:
                seen[f"{prefix[r['source']]}/{file}", str(row)] = detail.split(":")[0]
    assert seen == planted


def test_block_reader_gives_the_per_row_reference_rows(tmp_path):
    """Every layout of the embedded corpus (planted defects included), read by the block reader
    (:func:`read_units_in_process`: direct content serialisation for ids, column-wise tables), equals
    the rows built one by one with ``to_row`` and ``json.dumps``-based ids, as ``from_pylist`` makes them."""
    from aloe_core.containers import READERS
    from aloe_data.sources.datasource import read_units_in_process
    from aloe_data.sources.records import to_row
    from aloe_data.sources.sniff import resolve_formats
    from aloe_fixtures.corpus import FILE_SHARES, write_sample

    write_sample(tmp_path, 1500, seed=5)
    malformed = 0
    sources = resolve_formats(
        [SourceConfig(name=p.split("/")[0], path=str(tmp_path / p)) for p in FILE_SHARES]
    )
    for source in sources:
        kind = "preference" if source.format == "preference" else "sft"
        plan = check_sources([source], kind)
        got = pa.concat_tables(read_units_in_process(plan.units, [source], kind, plan.filesystem))
        rows = []
        for unit in plan.units:
            with plan.filesystem.open_input_stream(unit.path) as handle:
                rows += [to_row(raw, unit.rel, source, kind) for raw in READERS[unit.container](handle)]
        assert got.equals(pa.Table.from_pylist(rows, schema=annotated_schema(kind))), source.name
        assert len({r["id"] for r in rows}) == len(rows), source.name
        malformed += sum(r["drop_reason"] is not None for r in rows)
    assert malformed > 0  # the planted defects were read through both paths too
