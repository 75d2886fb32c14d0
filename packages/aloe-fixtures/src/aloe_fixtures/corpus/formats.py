"""Source formats: items -> raw records of each public format, records -> their dedup matching text.

Files and formats written by :func:`~aloe_fixtures.corpus.sample.write_sample`:

* ``prompt_engine/sample_mcqa.json`` and ``benchmarks/aloebench_test.json``: prompt-engine JSON
  ``{uid: {id, question, options {A..}, correct_answer, context?}}``;
* ``medmcqa/train.jsonl``: MedMCQA as on the HF hub (``cop`` is the 0-based index of the correct option);
* ``medqa/train.jsonl``: MedQA ``{question, answer, options {A..}, meta_info, answer_idx}``;
* ``pubmedqa/ori_pqal.json``: PubMedQA ``{pmid: {QUESTION, CONTEXTS, LABELS, MESHES, YEAR,
  reasoning_required_pred, reasoning_free_pred, final_decision, LONG_ANSWER}}``;
* ``chat/openai.jsonl``, ``chat/sharegpt.jsonl``, ``chat/alpaca.jsonl``; ``preference/pairs.jsonl``.

:data:`FILE_FORMATS` names the layout each file is written in. Reading a record back
(:func:`parse_record`, :func:`record_matching_text`, :func:`record_full_text`) goes through aloe-data's own
readers (``aloe_data.sources.LAYOUTS``), so ground-truth Jaccard values are computed on exactly the
text dedup will see and the parsing rules exist once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aloe_core.layouts import LAYOUTS, MEDMCQA_OPTIONS
from aloe_core.text import matching_text
from aloe_fixtures.corpus.defects import CHAT_FILES, PREFERENCE, PUBMEDQA
from aloe_fixtures.corpus.items import ChatItem, Item, McqaItem, PreferenceItem, YesNoItem

BENCHMARK_FILE = "benchmarks/aloebench_test.json"
JSON_OBJECT_FILES = ("prompt_engine/sample_mcqa.json", PUBMEDQA, BENCHMARK_FILE)
# The speaker names this corpus writes (ShareGPT readers also accept user/assistant and others).
SHAREGPT_SPEAKERS = {"system": "system", "user": "human", "assistant": "gpt"}
# (source name, file, aloe-data layout) of every training file write_sample makes, in reading order.
SOURCE_FILES = (
    ("prompt_engine", "prompt_engine/sample_mcqa.json", "prompt_engine_mcqa"),
    ("medmcqa", "medmcqa/train.jsonl", "medmcqa"),
    ("medqa", "medqa/train.jsonl", "medqa"),
    ("pubmedqa", PUBMEDQA, "pubmedqa"),
    ("openai_chat", CHAT_FILES[0], "openai_chat"),
    ("sharegpt", CHAT_FILES[1], "sharegpt"),
    ("alpaca", CHAT_FILES[2], "alpaca"),
    ("preference", PREFERENCE, "preference"),
)
# The layout (``format:`` of a source) each file is written in, the held-out benchmark included.
FILE_FORMATS = {path: fmt for _, path, fmt in SOURCE_FILES} | {BENCHMARK_FILE: "prompt_engine_mcqa"}


def prompt_engine_record(item: McqaItem, uid: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": uid,
        "question": item.question,
        "options": item.option_map(),
        "correct_answer": item.answer_letter,
    }
    if item.context:
        record["context"] = list(item.context)
    return record


def medmcqa_record(item: McqaItem, row_id: str) -> dict[str, Any]:
    if len(item.options) != 4:
        raise ValueError(f"MedMCQA rows have exactly 4 options, got {len(item.options)}")
    return {
        "id": row_id,
        "question": item.question,
        **{key: text for (_, key), text in zip(MEDMCQA_OPTIONS, item.options, strict=True)},
        "cop": item.answer,
        "choice_type": "single",
        "exp": item.explanation,
        "subject_name": item.subject,
        "topic_name": item.topic,
    }


def medqa_record(item: McqaItem) -> dict[str, Any]:
    return {
        "question": item.question,
        "answer": item.answer_text,
        "options": item.option_map(),
        "meta_info": "step1"
        if item.subject in ("Pharmacology", "Anatomy", "Physiology", "Microbiology", "Biochemistry")
        else "step2&3",
        "answer_idx": item.answer_letter,
    }


def pubmedqa_record(item: YesNoItem) -> dict[str, Any]:
    return {
        "QUESTION": item.question,
        "CONTEXTS": list(item.contexts),
        "LABELS": list(item.labels),
        "MESHES": list(item.meshes),
        "YEAR": str(item.year),
        "reasoning_required_pred": item.decision,
        "reasoning_free_pred": item.decision,
        "final_decision": item.decision,
        "LONG_ANSWER": item.long_answer,
    }


def openai_record(item: ChatItem) -> dict[str, Any]:
    return {"messages": [{"role": r, "content": c} for r, c in item.messages]}


def sharegpt_record(item: ChatItem) -> dict[str, Any]:
    return {"conversations": [{"from": SHAREGPT_SPEAKERS[r], "value": c} for r, c in item.messages]}


def alpaca_record(item: ChatItem) -> dict[str, Any]:
    if len(item.messages) != 2 or item.messages[0][0] != "user":
        raise ValueError("Alpaca rows are single-turn without a system prompt")
    return {"instruction": item.instruction, "input": item.alpaca_input or "", "output": item.messages[1][1]}


def preference_record(item: PreferenceItem) -> dict[str, Any]:
    return {
        "prompt": item.prompt,
        "chosen": item.chosen,
        "rejected": item.rejected,
        "category": item.category,
    }


def to_record(path: str, item: Item, row_id: str) -> dict[str, Any]:
    """The raw record of ``item`` in the format of ``path`` (``row_id`` is used where the format has ids)."""
    if path in ("prompt_engine/sample_mcqa.json", BENCHMARK_FILE):
        return prompt_engine_record(item, row_id)  # type: ignore[arg-type]
    if path == "medmcqa/train.jsonl":
        return medmcqa_record(item, row_id)  # type: ignore[arg-type]
    if path == "medqa/train.jsonl":
        return medqa_record(item)  # type: ignore[arg-type]
    if path == PUBMEDQA:
        return pubmedqa_record(item)  # type: ignore[arg-type]
    if path == PREFERENCE:
        return preference_record(item)  # type: ignore[arg-type]
    writer = {CHAT_FILES[0]: openai_record, CHAT_FILES[1]: sharegpt_record, CHAT_FILES[2]: alpaca_record}[
        path
    ]
    return writer(item)  # type: ignore[arg-type]


def medmcqa_id(rng_bits: int) -> str:
    """A UUID4-looking id as in MedMCQA, from 128 random bits."""
    return str(uuid.UUID(int=rng_bits, version=4))


# -- reading back ---------------------------------------------------------------------------------------


def parse_record(path: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised content aloe-data's reader builds from a raw record of ``path``: an MCQA item
    (``question``, ``options``, ``context``, ``explanation``), ``messages``, or a preference pair."""
    return LAYOUTS[FILE_FORMATS[path]](record).content


def record_matching_text(path: str, record: Mapping[str, Any]) -> str:
    """The dedup matching text (:func:`aloe_core.text.matching_text`) of a raw record of ``path``."""
    return matching_text(parse_record(path, record))


def record_full_text(path: str, record: Mapping[str, Any]) -> str:
    """Every text of a raw record of ``path`` as read (context, question, options, explanation; turns;
    prompt, chosen, rejected), newline-joined."""
    content = parse_record(path, record)
    if "question" in content:
        parts = [
            content.get("context"),
            content["question"],
            *(o["text"] for o in content["options"]),
            content.get("explanation"),
        ]
    elif "messages" in content:
        parts = [m["content"] for m in content["messages"]]
    else:
        parts = [*(m["content"] for m in content["prompt"]), content["chosen"], content["rejected"]]
    return "\n".join(p for p in parts if p)


# -- writing --------------------------------------------------------------------------------------------


# One encoder for all rows: json.dumps with keyword arguments builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def write_json_object(path: Path, records: dict[str, Any]) -> None:
    """One JSON object, one top-level entry per line (readable, and fast: each entry uses the C encoder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encode = _ENCODER.encode
    with path.open("w", encoding="utf-8") as handle:
        handle.write("{\n")
        last = len(records) - 1
        for i, (key, value) in enumerate(records.items()):
            handle.write(f" {encode(key)}: {encode(value)}{',' if i < last else ''}\n")
        handle.write("}\n")


def write_jsonl(path: Path, lines: list[dict[str, Any] | str]) -> None:
    """One JSON object per line; a ``str`` entry is written as is (planted malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encode = _ENCODER.encode
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else encode(line)) + "\n")
