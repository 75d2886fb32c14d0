"""Clean and exact-dedup stages on hand-made records, run through the real stage writer on a local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aloe_core.schemas import dumps_meta, record_id, to_table
from aloe_data.pipeline.config import OutputConfig
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.stages.clean import CleanConfig, CleanStage
from aloe_data.stages.exact_dedup import ExactDedupConfig, ExactDedupStage
from aloe_data.stages.pii import find_pii


def chat(question: str, answer: str, n: int, source: str = "hand") -> dict:
    content = {"q": question, "a": answer}
    return {
        "id": record_id("sft", source, content, str(n)),
        "source": source,
        "task": "chat",
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "mcqa": None,
        "meta": dumps_meta({"n": n}),
    }


def write_rows(path, rows):
    path.mkdir(parents=True)
    pq.write_table(to_table(rows, "sft"), path / "part-0.parquet")
    return path


def read_dir(path):
    files = sorted(path.glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def test_phone_pattern_spares_lab_values_and_doses():
    text = "Sodium 135-145 mEq/L, pH 7.35-7.45, 500 mg twice daily, years 2020-2024, HbA1c 6.5%."
    assert find_pii(text) == {}
    found = find_pii("Call (555) 013-2876 or +34 612 345 678, mail a.b@c.org, see https://x.org/a?b=1.")
    assert found == {
        "email": ["a.b@c.org"],
        "url": ["https://x.org/a?b=1"],
        "phone": ["(555) 013-2876", "+34 612 345 678"],
    }


def test_clean_stage_drops_with_named_reasons_and_masks_pii(ray_session, tmp_path):
    answer = "Metformin lowers hepatic glucose output and is the usual first-line drug for type 2 diabetes."
    rows = [
        chat("Which drug is first line for type 2 diabetes?", answer, 0),
        chat("Email me at jane.doe@example.org about insulin dosing please.", answer + " Insulin too.", 1),
        chat("What is the first-line antibiotic for strep throat?", "   ", 2),
        chat("What does ACE stand for in cardiology drug classes?", "ok", 3),
        chat("Why is warfarin monitored with the INR test in adults?", "x" * 30_000, 4),
        chat(
            "¿Cuál es el tratamiento de primera línea para la hipertensión arterial en adultos jóvenes?",
            "Los diuréticos tiazídicos o los inhibidores de la enzima convertidora son opciones iniciales.",
            5,
        ),
        chat("Does aspirin inhibit cyclooxygenase?", "Does aspirin inhibit cyclooxygenase", 6),
        chat(
            "Explain  the\u200b mechanism   of statins.",
            "Statins inhibit HMG-CoA reductase in the liver.  ",
            7,
        ),
    ]
    src = write_rows(tmp_path / "in", rows)
    entry = run_stage_on_files(CleanStage(CleanConfig()), src, tmp_path / "out", OutputConfig(shard_rows=3))
    assert entry["rows_in"] == 8 and entry["rows_out"] == 3
    assert entry["dropped"] == {
        "answer_repeats_question": 1,
        "empty_answer": 1,
        "languages": 1,
        "max_chars": 1,
        "min_answer_chars": 1,
    }
    kept = {json.loads(r["meta"])["n"]: r for r in read_dir(tmp_path / "out")}
    assert sorted(kept) == [0, 1, 7]
    assert kept[1]["messages"][0]["content"] == "Email me at <EMAIL> about insulin dosing please."
    assert json.loads(kept[1]["meta"])["clean"] == {"pii_masked": ["email"]}
    assert kept[7]["messages"][0]["content"] == "Explain the mechanism of statins."
    assert kept[7]["messages"][1]["content"] == "Statins inhibit HMG-CoA reductase in the liver."
    assert [len(pq.read_table(f)) for f in sorted((tmp_path / "out").glob("*.parquet"))] == [3]
    dropped = pq.read_table(next((tmp_path / "out" / "_dropped").glob("*.parquet"))).to_pylist()
    assert {json.loads(r["meta"])["n"]: r["drop_reason"] for r in dropped} == {
        2: "empty_answer",
        3: "min_answer_chars",
        4: "max_chars",
        5: "languages",
        6: "answer_repeats_question",
    }


def test_exact_dedup_keeps_longest_answer_and_records_duplicate_of(ray_session, tmp_path):
    base = "What is the mechanism of action of omeprazole in the stomach?"
    rows = [
        chat(base, "It irreversibly blocks the parietal cell H+/K+ ATPase.", 0),
        chat(base.upper() + "  ", "It irreversibly blocks the parietal cell H+/K+ ATPase proton pump.", 1),
        chat("What is the mechanism of action of ranitidine in the stomach?", "It blocks H2 receptors.", 2),
        chat(base.replace("?", " ??"), "It irreversibly blocks the parietal cell H+/K+ ATPase.", 3),
    ]
    # Rows 0 and 3 differ only in punctuation: exact duplicates of each other; row 1 differs in its answer.
    src = write_rows(tmp_path / "in", rows)
    entry = run_stage_on_files(ExactDedupStage(ExactDedupConfig()), src, tmp_path / "out", ray_cpus=2)
    assert entry["dropped"] == {"exact_duplicate": 1}
    # Equal answer lengths: the smaller id is kept; the output keeps the input order.
    kept_n, dropped_n = (0, 3) if rows[0]["id"] < rows[3]["id"] else (3, 0)
    assert [json.loads(r["meta"])["n"] for r in read_dir(tmp_path / "out")] == sorted([kept_n, 1, 2])
    dropped = pq.read_table(next((tmp_path / "out" / "_dropped").glob("*.parquet"))).to_pylist()
    assert [(r["id"], r["duplicate_of"]) for r in dropped] == [(rows[dropped_n]["id"], rows[kept_n]["id"])]


def test_missing_input_is_a_clear_error(tmp_path):
    from aloe_core.errors import InputError

    with pytest.raises(InputError, match="no such file or folder"):
        run_stage_on_files(CleanStage(CleanConfig()), tmp_path / "nope", tmp_path / "out")


def test_inputs_resolve_runs_command_outputs_folders_and_globs(tmp_path):
    """One resolver for every reader: a run folder reads its last stage, a single command's output reads
    the shards beside its manifest (never ``_dropped/``), and training accepts both."""
    from aloe_core.errors import InputError
    from aloe_core.shards import resolve_inputs

    def shard(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table([chat("Is aspirin an NSAID?", "Yes.", 0)], "sft"), path)
        return str(path)

    def manifest(folder: Path, stages: dict, kind: str = "sft") -> None:
        (folder / "manifest.json").write_text(json.dumps({"kind": kind, "stages": stages}))

    command_out = tmp_path / "dd"
    kept = shard(command_out / "part-0.parquet")
    shard(command_out / "_dropped" / "part-0.parquet")
    manifest(command_out, {"dd": {"key": "k", "rows_out": 1, "files": {"part-0.parquet": {}}}})
    source = resolve_inputs(command_out)
    assert (source.files, source.kind, source.provenance["stage"]) == ([kept], "sft", "dd")
    assert resolve_inputs(str(command_out), kind="sft").files == [kept]

    run = tmp_path / "run"
    shard(run / "01-ingest" / "part-0.parquet")
    last = shard(run / "02-clean" / "part-0.parquet")
    stages = {name: {"files": {"part-0.parquet": {}}} for name in ("01-ingest", "02-clean")}
    manifest(run, stages)
    assert resolve_inputs(run).files == [last]
    with pytest.raises(InputError, match="a 'sft' run; this recipe needs a preference"):
        resolve_inputs(str(run), kind="preference")

    assert resolve_inputs(command_out / "_dropped").files == [
        str(command_out / "_dropped" / "part-0.parquet")
    ]
    assert resolve_inputs(str(run / "0*" / "*.parquet")).files == [
        str(run / "01-ingest" / "part-0.parquet"),
        last,
    ]
    (tmp_path / "empty-run").mkdir()
    manifest(tmp_path / "empty-run", {})
    with pytest.raises(InputError, match="no finished stage"):
        resolve_inputs(tmp_path / "empty-run")
    with pytest.raises(InputError, match="no Parquet files found"):
        resolve_inputs(tmp_path / "empty-run" / "*.parquet")


def test_report_histograms_scores_found_in_meta(ray_session, tmp_path):
    from aloe_core.manifest import Manifest
    from aloe_data.pipeline.report import write_report

    answer = "Metformin is the usual first-line drug for type 2 diabetes in adults."
    rows = [chat(f"Question {i} about metformin use in adults?", answer, i) for i in range(6)]
    scored = [(4.5, [1.5], [3.0]), (5.0, [2.2], [2.27]), (11.9, [3.4], [3.5]), (12.0, [3.0], [4.0])]
    for row, (score, complexity, quality) in zip(rows, scored, strict=False):
        row["meta"] = dumps_meta({"deita": {"score": score, "complexity": complexity, "quality": quality}})
    stage = tmp_path / "02-score"
    write_rows(stage, rows)
    info = {"rows": 6, "sha256": "", "bytes": 0}
    entry = {
        "stage": "02-score",
        "rows_in": 6,
        "rows_out": 6,
        "dropped": {},
        "seconds": 0.1,
        "files": {"part-0.parquet": info},
    }
    manifest = Manifest(tmp_path, {"kind": "sft", "stages": {"02-score": entry}})
    paths = write_report(tmp_path, manifest)
    report = json.loads(paths["json"].read_text())
    # Bins: score width 2, complexity/quality width 0.25 (JSON keys are the bin starts).
    assert report["score_histograms"] == {
        "deita.complexity": {"1.5": 1, "2.0": 1, "3.0": 1, "3.25": 1},
        "deita.quality": {"2.25": 1, "3.0": 1, "3.5": 1, "4.0": 1},
        "deita.score": {"4.0": 2, "10.0": 1, "12.0": 1},
    }
    assert paths["html"].read_text().count("data:image/png;base64,") == 3
