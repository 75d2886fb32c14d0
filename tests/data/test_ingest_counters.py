"""Layout sniffing for sources without a format, ingest as a stage of the runner, and stage counters
(clean's PII counts) summed across Ray tasks into the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aloe_core.errors import InputError
from aloe_data.cli import app as data_app
from aloe_data.pipeline.config import OutputConfig, PipelineConfig
from aloe_data.pipeline.counters import add_counters, pop_counters
from aloe_data.pipeline.runner import run_pipeline
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.sources import SourceConfig, sniff_format
from aloe_data.stages.clean import CleanConfig, CleanStage

FIXTURES = Path(__file__).parent / "fixtures" / "sources"

LAYOUT_FILES = {
    "prompt_engine/sample.json": "prompt_engine_mcqa",
    "prompt_engine/list.json": "prompt_engine_mcqa",
    "open/openmedqa.json": "prompt_engine_open",
    "medmcqa/train.jsonl": "medmcqa",
    "medqa/dev.jsonl": "medqa",
    "pubmedqa/ori_pqal.json": "pubmedqa",
    "chat/openai.jsonl": "openai_chat",
    "chat/sharegpt.jsonl": "sharegpt",
    "chat/alpaca.jsonl": "alpaca",
    "preference/pairs.jsonl": "preference",
}


def source(path: Path | str) -> SourceConfig:
    return SourceConfig(name="s", path=str(path))


@pytest.mark.parametrize(("file", "layout"), sorted(LAYOUT_FILES.items()))
def test_sniffing_picks_each_layout_of_the_fixture_files(file, layout):
    assert sniff_format(source(FIXTURES / file)) == layout


def test_sniffing_a_hub_style_pubmedqa_row(tmp_path):
    row = {
        "pubid": 1,
        "question": "q?",
        "context": {"contexts": ["c"]},
        "long_answer": "a",
        "final_decision": "no",
    }
    (tmp_path / "hub.jsonl").write_text(json.dumps(row) + "\n")
    assert sniff_format(source(tmp_path / "hub.jsonl")) == "pubmedqa"


def test_unknown_and_ambiguous_layouts_are_one_line_errors(tmp_path):
    (tmp_path / "unknown.jsonl").write_text('{"text": "a note", "label": 1}\n' * 3)
    with pytest.raises(InputError) as unknown:
        sniff_format(source(tmp_path / "unknown.jsonl"))
    message = str(unknown.value)
    assert "\n" not in message and "unknown layout" in message and "[text, label]" in message
    assert "medmcqa {cop, opa, opb, question}" in message and "--format" in message
    both = {
        "messages": [{"role": "user", "content": "hi"}],
        "conversations": [{"from": "human", "value": "hi"}],
    }
    (tmp_path / "both.jsonl").write_text(json.dumps(both) + "\n")
    with pytest.raises(InputError) as ambiguous:
        sniff_format(source(tmp_path / "both.jsonl"))
    message = str(ambiguous.value)
    assert "\n" not in message and "ambiguous layout" in message
    assert "openai_chat (1 of 1 rows)" in message and "sharegpt (1 of 1 rows)" in message
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.jsonl").write_text(json.dumps({"instruction": "i", "output": "o"}) + "\n")
    (mixed / "b.jsonl").write_text(json.dumps({"chosen": "c", "rejected": "r", "prompt": "p"}) + "\n")
    with pytest.raises(InputError, match=r"ambiguous layout: the first rows fit alpaca .*preference"):
        sniff_format(source(mixed))


def test_counters_ride_on_rows_and_sum():
    import pyarrow as pa

    table = add_counters(pa.table({"x": [1, 2, 3]}), {"a": 2, "zero": 0})
    table = add_counters(table, {"a": 1, "b": 5})
    bare, counts = pop_counters(pa.concat_tables([table, add_counters(pa.table({"x": [4]}), {"b": 1})]))
    assert bare.column_names == ["x"] and counts == {"a": 3, "b": 6}


def chat(n: int, question: str, answer: str) -> dict:
    from aloe_core.schemas import dumps_meta, record_id

    return {
        "id": record_id("sft", "hand", {"q": question, "a": answer}, str(n)),
        "source": "hand",
        "task": "chat",
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "mcqa": None,
        "meta": dumps_meta({"n": n}),
    }


def test_clean_counts_the_pii_it_masks_in_the_manifest(ray_session, tmp_path):
    import pyarrow.parquet as pq

    from aloe_core.schemas import to_table

    answer = "Metformin lowers hepatic glucose output and is the usual first-line drug for type 2 diabetes."
    rows = [
        chat(0, "Email jane.doe@example.org or j.roe@example.com about insulin dosing.", answer),
        chat(1, "Call (555) 013-2876 about the statin prescription for my father.", answer),
        chat(
            2,
            "See https://example.org/guide and www.example.com/dm for the guideline.",
            answer + " Also (555) 013-2877.",
        ),
        chat(3, "Which drug is first line for type 2 diabetes in adults?", answer),
    ] * 3  # 12 rows in 4 files of 3: the counts are summed over several write tasks
    (tmp_path / "in").mkdir()
    for i in range(4):
        pq.write_table(to_table(rows[3 * i : 3 * i + 3], "sft"), tmp_path / "in" / f"part-{i}.parquet")
    entry = run_stage_on_files(
        CleanStage(CleanConfig()), tmp_path / "in", tmp_path / "out", OutputConfig(shard_rows=2)
    )
    assert entry["rows_in"] == 12 and entry["rows_out"] == 12
    assert entry["counters"] == {"pii_masked.email": 6, "pii_masked.phone": 6, "pii_masked.url": 6}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["stages"]["out"]["counters"] == entry["counters"]
    kept = [r for f in sorted((tmp_path / "out").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert "_counters" not in kept[0]
    assert sum("<EMAIL>" in r["messages"][0]["content"] for r in kept) == 3
    # The command prints them beside the drop reasons.
    result = CliRunner().invoke(data_app, ["clean", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "counters: pii_masked.email=6, pii_masked.phone=6, pii_masked.url=6;" in result.output


def test_ingest_runs_through_the_runner_with_a_sniffed_format(ray_session, tmp_path):
    pipeline = PipelineConfig.model_validate(
        {
            "sources": [{"name": "medqa", "path": str(FIXTURES / "medqa" / "dev.jsonl")}],
            "stages": [{"type": "clean", "languages": []}],
            "report": False,
            "num_cpus": 2,  # the old name of ray_cpus still validates
        }
    )
    assert pipeline.ray_cpus == 2 and pipeline.sources[0].format is None
    manifest = run_pipeline(pipeline, tmp_path / "run")
    ingest = manifest.stages["01-ingest"]
    assert ingest["config"]["type"] == "ingest"
    assert ingest["config"]["sources"][0]["format"] == "medqa"  # the manifest says what was read
    assert ingest["rows_in"] == ingest["rows_out"] + sum(ingest["dropped"].values()) > 0
    assert ingest["counters"] == {}
    assert manifest.stages["02-clean"]["rows_in"] == ingest["rows_out"]
    again = run_pipeline(pipeline, tmp_path / "run")  # resumes: same keys, nothing rerun
    assert again.stages["01-ingest"]["key"] == ingest["key"]
    assert again.stages["01-ingest"]["seconds"] == ingest["seconds"]


def test_ingest_command_without_format_says_what_it_chose(ray_session, tmp_path):
    result = CliRunner().invoke(
        data_app, ["ingest", "-i", str(FIXTURES / "chat" / "sharegpt.jsonl"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "format: sharegpt (guessed from the first rows" in result.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["stages"]["01-ingest"]["config"]["sources"][0] == {
        "name": "sharegpt",
        "format": "sharegpt",
        "path": str(FIXTURES / "chat" / "sharegpt.jsonl"),
        "container": "auto",
        "task": None,
        "include_explanation": True,
    }
