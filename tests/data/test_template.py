"""Prompt templating: the shipped library, user template files, deterministic assignment by seed and row
id, the templated share, meta records, and the stage through Ray Data."""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core.errors import ConfigError
from aloe_core.schemas import dumps_meta, loads_meta, to_table
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.sources.records import mcqa_answer_text, mcqa_user_text
from aloe_data.stages.template import TemplateConfig, TemplateStage, row_family
from aloe_data.templates import TemplateLibrary

SHIPPED = {
    "multiple_choice": {"mc-plain", "mc-exam", "mc-clinician", "mc-student", "mc-inline", "mc-letter-only"},
    "yes_no_maybe": {"ynm-options", "ynm-abstract", "ynm-researcher", "ynm-short"},
    "open_qa": {"oqa-plain", "oqa-expert", "oqa-instruction", "oqa-clear"},
    "summarization": {"sum-plain", "sum-clinical", "sum-findings", "sum-after"},
    "cot": {"cot-default", "cot-concise"},
}


def mcqa_row(i: int, options: list[str], answer: str = "A", context: str | None = None, meta=None) -> dict:
    item = {
        "question": f"Question {i}: which option is right?",
        "options": [{"letter": "ABCDE"[k], "text": t} for k, t in enumerate(options)],
        "answer": answer,
        "context": context,
        "explanation": None,
    }
    messages = [
        {"role": "user", "content": mcqa_user_text(item)},
        {"role": "assistant", "content": mcqa_answer_text(item, False)},
    ]
    task = "mcqa_context" if context else "mcqa"
    return {
        "id": f"m{i:05d}",
        "source": "t",
        "task": task,
        "messages": messages,
        "mcqa": item,
        "meta": dumps_meta(meta or {}),
    }


def chat_row(i: int, task: str, turns: int = 1) -> dict:
    messages = []
    for t in range(turns):
        messages += [
            {"role": "user", "content": f"Explain point {i}.{t} about hypertension."},
            {"role": "assistant", "content": f"Point {i}.{t}: lower the pressure."},
        ]
    return {"id": f"c{i:05d}", "source": "t", "task": task, "messages": messages, "mcqa": None, "meta": "{}"}


def user_text(row: dict) -> str:
    return next(m["content"] for m in reversed(row["messages"]) if m["role"] == "user")


def test_shipped_library_has_every_family_and_renders_the_ingest_layout():
    library = TemplateLibrary.load()
    assert {f: {t.id for t in library.family(f)} for f in SHIPPED} == SHIPPED
    plain = library.get("mc-plain")
    for row in (mcqa_row(1, ["Metformin", "Insulin"]), mcqa_row(2, ["x", "y", "z"], context="Ctx para.")):
        rendered = apply(plain, row)
        assert user_text(rendered) == mcqa_user_text(row["mcqa"])  # the ingest layout, byte for byte
        assert rendered["messages"][-1] == row["messages"][-1]


def apply(template, row: dict) -> dict:
    from aloe_data.stages.template import apply_template

    return {**row, "messages": apply_template(row, template)}


def test_templates_without_assistant_keep_the_answer_and_show_letters():
    library = TemplateLibrary.load()
    row = mcqa_row(3, ["Metformin", "Insulin", "Aspirin"], answer="C", context="Some context.")
    for family in ("multiple_choice", "yes_no_maybe"):
        for template in library.family(family):
            out = apply(template, row)
            if template.assistant is None:
                assert out["messages"][-1]["content"] == row["messages"][-1]["content"]
                for option in row["mcqa"]["options"]:
                    assert option["letter"] in user_text(out) and option["text"] in user_text(out)
    letter_only = apply(library.get("mc-letter-only"), row)
    assert letter_only["messages"][-1]["content"] == "C"
    clinician = apply(library.get("mc-clinician"), row)
    assert clinician["messages"][0]["role"] == "system"
    assert [m["role"] for m in clinician["messages"]] == ["system", "user", "assistant"]


def test_row_families():
    families = TemplateConfig().task_families
    assert row_family(mcqa_row(1, ["a", "b", "c", "d"]), families) == "multiple_choice"
    assert row_family(mcqa_row(2, ["Yes", "no", "Maybe"], context="c"), families) == "yes_no_maybe"
    assert row_family(mcqa_row(3, ["yes", "no"]), families) == "yes_no_maybe"
    assert row_family(chat_row(4, "open_qa"), families) == "open_qa"
    assert row_family(chat_row(5, "summarization"), families) == "summarization"
    assert row_family(chat_row(6, "chat"), families) is None
    assert row_family(chat_row(7, "open_qa", turns=2), families) is None  # multi-turn: left alone


def process(stage: TemplateStage, rows: list[dict]) -> list[dict]:
    return stage.process(to_table(rows, "sft"), "sft").to_pylist()


def templated_ids(out: list[dict]) -> dict[str, str]:
    return {
        r["id"]: loads_meta(r["meta"])["template"]["id"] for r in out if "template" in loads_meta(r["meta"])
    }


def test_assignment_is_deterministic_by_seed_and_id_and_share_is_respected():
    rows = [mcqa_row(i, ["alpha", "beta", "gamma", "delta"]) for i in range(2000)]
    stage = TemplateStage(TemplateConfig(share=0.3, seed=1))
    whole = templated_ids(process(stage, rows))
    halves = templated_ids(process(stage, rows[1000:]) + process(stage, rows[:1000]))
    assert whole == halves  # batching and order do not matter
    # Binomial(2000, 0.3): sd 20.5; 5 sd is a failure only if the hash is not uniform.
    assert abs(len(whole) - 600) < 5 * math.sqrt(2000 * 0.3 * 0.7)
    wider = templated_ids(process(TemplateStage(TemplateConfig(share=0.6, seed=1)), rows))
    assert set(whole) < set(wider)  # raising the share only adds rows
    assert all(wider[i] == t for i, t in whole.items())  # and keeps their templates
    other_seed = templated_ids(process(TemplateStage(TemplateConfig(share=0.3, seed=2)), rows))
    assert len(set(other_seed) & set(whole)) < 0.5 * len(whole)
    # Picks follow the weights: mc-letter-only has weight 0.5, the five others 1 each.
    every = Counter(templated_ids(process(TemplateStage(TemplateConfig(seed=1)), rows)).values())
    assert sum(every.values()) == 2000
    for template_id, count in every.items():
        expected = 2000 * (0.5 if template_id == "mc-letter-only" else 1.0) / 5.5
        assert abs(count - expected) < 5 * math.sqrt(expected), (template_id, count)


def test_meta_records_template_and_cot_rows_keep_their_reasoning():
    reasoning = "Step 1... Step 2...\n\nAnswer: A"
    cot_row = mcqa_row(1, ["alpha", "beta"], meta={"cot": {"status": "verified"}})
    cot_row["messages"][-1]["content"] = reasoning
    rows = [cot_row, *[mcqa_row(i, ["alpha", "beta", "gamma"], meta={"k": i}) for i in range(2, 200)]]
    rows.append(chat_row(500, "chat"))
    stage = TemplateStage(TemplateConfig(seed=0))
    out = {r["id"]: r for r in process(stage, rows)}
    for row in rows:
        meta = loads_meta(out[row["id"]]["meta"])
        if row["task"] == "chat":
            assert out[row["id"]]["messages"] == row["messages"] and "template" not in meta
            continue
        template = stage.families[meta["template"]["family"]]
        chosen = next(t for t in template if t.id == meta["template"]["id"])
        assert out[row["id"]]["messages"] == apply(chosen, row)["messages"]
        assert {k: v for k, v in meta.items() if k != "template"} == loads_meta(row["meta"])
    assert out[cot_row["id"]]["messages"][-1]["content"] == reasoning
    used = Counter(loads_meta(r["meta"])["template"]["id"] for r in out.values() if r["task"] != "chat")
    assert used["mc-letter-only"] > 0  # the plain rows do get the answer-rewriting template


def test_user_templates_add_to_the_library_and_filters_select(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text(
        "family: multiple_choice\n"
        "templates:\n"
        "  - id: my-quiz\n"
        "    user: |\n"
        "      QUIZ: {{ question }}\n"
        "      {% for o in options %}\n"
        "      [{{ o.letter }}] {{ o.text }}\n"
        "      {% endfor %}\n"
    )
    stage = TemplateStage(TemplateConfig(template_files=[str(tmp_path)], include=["my-*"]))
    out = process(stage, [mcqa_row(1, ["alpha", "beta"])])
    assert user_text(out[0]) == "QUIZ: Question 1: which option is right?\n[A] alpha\n[B] beta"
    assert loads_meta(out[0]["meta"])["template"] == {"id": "my-quiz", "family": "multiple_choice"}
    excluded = TemplateStage(TemplateConfig(exclude=["mc-*"]))
    assert "multiple_choice" not in excluded.families
    with pytest.raises(ConfigError, match="select no template"):
        TemplateStage(TemplateConfig(include=["nothing-*"]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("family: multiple_choice\ntemplates:\n  - {id: mc-plain, user: hi}\n", "already defined in"),
        (
            "family: open_qa\ntemplates:\n  - {id: x1, user: '{% if input %}'}\n",
            r"x1\)\.user: Jinja syntax error",
        ),
        (
            "family: open_qa\ntemplates:\n  - {id: x2, user: '{{ question }}'}\n",
            "does not render for a open_qa row",
        ),
        (
            "family: open_qa\ntemplates:\n  - {id: x3, user: '{{ input }}', weigth: 2}\n",
            r"weigth: unknown key",
        ),
        ("family: open_qa\ntemplates: []\n", "templates: List should have at least 1 item"),
    ],
)
def test_bad_template_files_fail_at_load_naming_file_and_template(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        TemplateLibrary.load([path])
    assert str(path) in str(info.value)


def test_template_stage_through_ray(ray_session, tmp_path):
    rows = [mcqa_row(i, ["alpha", "beta", "gamma"]) for i in range(30)] + [
        chat_row(i, "open_qa") for i in range(10)
    ]
    pq.write_table(to_table(rows, "sft"), tmp_path / "in.parquet")
    config = TemplateConfig(share=0.5, seed=3)
    entry = run_stage_on_files(TemplateStage(config), tmp_path / "in.parquet", tmp_path / "out")
    assert entry["rows_in"] == entry["rows_out"] == 40 and entry["dropped"] == {}
    got = pa.concat_tables(pq.read_table(tmp_path / "out" / f) for f in entry["files"]).to_pylist()
    expected = process(TemplateStage(config), rows)  # the same function without Ray: same rows, same order
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["messages"] for r in got] == [r["messages"] for r in expected]
    assert [r["meta"] for r in got] == [r["meta"] for r in expected]
    assert 0 < sum("template" in loads_meta(r["meta"]) for r in got) < 40
