"""Dataset releases (aloe_data.release): what a user loads is what the run produced, checksummed,
documented, split deterministically by stratum, and never overwritten."""

from __future__ import annotations

import json
import math
import random
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aloe_core.cli import main
from aloe_core.errors import InputError
from aloe_data.release import ReleaseConfig, verify_release, write_release
from aloe_data.release.card import parse_front_matter
from aloe_data.release.licenses import combined_license
from aloe_data.release.split import validation_mask

FRACTION = 0.1


def aloe(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the `aloe` command in this process; (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def final_rows(run: Path) -> list[dict]:
    manifest = json.loads((run / "manifest.json").read_text())
    stage, entry = list(manifest["stages"].items())[-1]
    return [r for name in sorted(entry["files"]) for r in pq.read_table(run / stage / name).to_pylist()]


@pytest.fixture(scope="module")
def release(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "aloe-sample-1.0.0"
    args = [
        "data",
        "release",
        str(tiny_run),
        "--out",
        str(out),
        "--name",
        "aloe-sample",
        "--version",
        "1.0.0",
        "--set",
        f"validation_fraction={FRACTION}",
        "--set",
        "default_license=apache-2.0",
        "--set",
        "licenses.medmcqa=mit",
    ]
    main(args)
    return out


def split_rows(release: Path, split: str) -> list[dict]:
    info = json.loads((release / "release.json").read_text())["splits"][split]
    return [r for name in info["files"] for r in pq.read_table(release / name).to_pylist()]


def test_release_loads_with_datasets_and_polars_with_the_manifest_row_counts(release, tiny_run):
    import datasets
    import polars as pl

    manifest = json.loads((tiny_run / "manifest.json").read_text())
    run_rows = list(manifest["stages"].values())[-1]["rows_out"]
    splits = json.loads((release / "release.json").read_text())["splits"]
    loaded = datasets.load_dataset(str(release))
    assert sorted(loaded) == ["train", "validation"]
    assert {s: loaded[s].num_rows for s in loaded} == {s: splits[s]["rows"] for s in splits}
    assert loaded["train"].num_rows + loaded["validation"].num_rows == run_rows == 244
    for split in splits:
        frame = pl.read_parquet(str(release / "data" / f"{split}-*.parquet"))
        assert frame.height == splits[split]["rows"]
    assert sorted(r["id"] for s in splits for r in split_rows(release, s)) == sorted(
        r["id"] for r in final_rows(tiny_run)
    )
    assert verify_release(release) == []


def test_croissant_validates_and_its_records_equal_the_rows(release):
    import mlcroissant as mlc

    from aloe_data.release.croissant import record_to_row

    dataset = mlc.Dataset(str(release / "croissant.json"))
    assert dataset.metadata.issues.errors == set()
    assert (
        json.loads((release / "croissant.json").read_text())["conformsTo"]
        == "http://mlcommons.org/croissant/1.1"
    )
    for split in ("train", "validation"):
        records = list(dataset.records(split))
        rows = split_rows(release, split)
        assert len(records) == len(rows)
        assert [r[f"{split}/id"].decode() for r in records] == [row["id"] for row in rows]
        assert [
            [m[f"{split}/messages/content"].decode() for m in r[f"{split}/messages"]] for r in records
        ] == [[m["content"] for m in row["messages"]] for row in rows]
        assert [record_to_row(r, split) for r in records] == rows


def test_card_front_matter_and_sections(release):
    card = (release / "README.md").read_text()
    front = parse_front_matter(card)
    assert front["license"] == "apache-2.0"  # medmcqa's mit and everyone else's apache-2.0
    assert front["size_categories"] == ["n<1K"]
    assert front["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*.parquet"},
                {"split": "validation", "path": "data/validation-*.parquet"},
            ],
        }
    ]
    assert set(front["source_datasets"]) == {
        "alpaca",
        "medmcqa",
        "medqa",
        "openai_chat",
        "prompt_engine",
        "pubmedqa",
        "sharegpt",
    }
    for heading in (
        "Dataset description",
        "Sources",
        "Uses",
        "Out-of-scope use",
        "Dataset structure",
        "Curation",
        "Statistics",
        "Personal and sensitive information",
        "Bias",
        "Risks and limitations",
        "Provenance",
        "Citation",
    ):
        assert f"## {heading}" in card or f"### {heading}" in card, heading
    assert "| `medmcqa` | `mit` |" in card and "| `medqa` | `apache-2.0` |" in card
    assert "| `02-clean` | 253 | 244 |" in card  # the run's funnel
    for image in ("stats/funnel.png", "stats/lengths.png"):
        assert f"]({image})" in card and (release / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "No scores: the run had no `deita_score` stage." in card
        and not (release / "stats/scores.png").exists()
    )


def test_statistics_count_rows_and_words_per_source_and_task(release, tiny_run):
    stats = json.loads((release / "stats" / "stats.json").read_text())
    expected: Counter = Counter()
    for split in ("train", "validation"):
        for row in split_rows(release, split):
            expected[(split, row["source"], row["task"], "rows")] += 1
            expected[(split, row["source"], row["task"], "tokens")] += sum(
                len(m["content"].split()) for m in row["messages"]
            )
    got = Counter()
    for r in stats["by_source_task"]:
        got[(r["split"], r["source"], r["task"], "rows")] = r["rows"]
        got[(r["split"], r["source"], r["task"], "tokens")] = r["tokens"]
    assert got == expected
    assert stats["token_unit"] == "whitespace-separated words"


def test_split_is_deterministic_and_stratified(release, tiny_run, tmp_path):
    rows = final_rows(tiny_run)
    strata = Counter((r["source"], r["task"]) for r in rows)
    validation = Counter((r["source"], r["task"]) for r in split_rows(release, "validation"))
    train = Counter((r["source"], r["task"]) for r in split_rows(release, "train"))
    # 42 openai_chat rows -> 4 (4.2), 35 -> 4 (3.5 rounds half up), 30 -> 3, 37 -> 4 (3.7)
    assert strata == {
        ("openai_chat", "chat"): 42,
        ("medmcqa", "mcqa"): 37,
        ("medqa", "mcqa"): 35,
        ("sharegpt", "chat"): 35,
        ("alpaca", "chat"): 35,
        ("prompt_engine", "mcqa"): 30,
        ("pubmedqa", "mcqa_context"): 30,
    }
    assert validation == {k: math.floor(n * FRACTION + 0.5) for k, n in strata.items()}
    assert train == {k: n - validation[k] for k, n in strata.items()}
    # Same rows, another order, another shard size: the same split.
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    mask = validation_mask(
        [r["id"] for r in shuffled], [f"{r['source']}\0{r['task']}" for r in shuffled], FRACTION, 0
    )
    assert {r["id"] for r, m in zip(shuffled, mask, strict=True) if m} == {
        r["id"] for r in split_rows(release, "validation")
    }
    again = write_release(
        tiny_run,
        tmp_path / "again",
        name="aloe-sample",
        version="1.0.1",
        config=ReleaseConfig(validation_fraction=FRACTION, shard_rows=50),
    )
    info = json.loads((again / "release.json").read_text())["splits"]
    assert info["train"]["files"] == [
        f"data/train-{i:05d}-of-00005.parquet" for i in range(5)
    ]  # 218 rows / 50
    assert split_rows(again, "validation") == split_rows(release, "validation")
    assert split_rows(again, "train") == split_rows(release, "train")
    assert verify_release(again) == []


def test_verify_release_catches_a_flipped_byte_and_a_deleted_shard(release, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(release, broken)
    shard = broken / "data" / "train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    (broken / "data" / "validation-00000-of-00001.parquet").unlink()
    problems = verify_release(broken)
    assert (
        "data/train-00000-of-00001.parquet: sha256 differs from release.json (the file changed or is corrupt)"
        in problems
    )
    assert "data/validation-00000-of-00001.parquet: missing (listed in release.json)" in problems
    code, out, err = aloe(["data", "verify-release", str(broken)], capsys)
    assert code == 1 and err.splitlines()[: len(problems)] == problems
    code, out, err = aloe(["data", "verify-release", str(release)], capsys)
    assert code == 0 and out.strip() == f"{release}: ok"


def test_a_released_version_is_never_overwritten(release, tiny_run, capsys):
    before = {p: p.read_bytes() for p in release.rglob("*") if p.is_file()}
    with pytest.raises(
        InputError,
        match=r"holds release aloe-sample 1\.0\.0 already; a released version is never overwritten",
    ):
        write_release(tiny_run, release, name="aloe-sample", version="1.0.0")
    code, _, err = aloe(
        [
            "data",
            "release",
            str(tiny_run),
            "--out",
            str(release),
            "--name",
            "aloe-sample",
            "--version",
            "1.0.0",
        ],
        capsys,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "never overwritten" in err
    assert {p: p.read_bytes() for p in release.rglob("*") if p.is_file()} == before
    assert not [p for p in release.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_bad_inputs_are_one_line_errors(tiny_run, tmp_path):
    with pytest.raises(InputError, match=r"--version '1\.0': must be X\.Y\.Z"):
        write_release(tiny_run, tmp_path / "x", name="x", version="1.0")
    with pytest.raises(InputError, match=r"no manifest\.json; a release is made from a pipeline run"):
        write_release(tmp_path, tmp_path / "x", name="x", version="1.0.0")
    with pytest.raises(InputError, match=r"licenses: \['medline'\] name no source of the run"):
        write_release(
            tiny_run,
            tmp_path / "x",
            name="x",
            version="1.0.0",
            config=ReleaseConfig(licenses={"medline": "mit"}),
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("licenses", "expected"),
    [
        (["mit", "mit"], "mit"),
        (["mit", "apache-2.0"], "apache-2.0"),
        (["mit", "cc-by-4.0", "apache-2.0"], "cc-by-4.0"),
        (["mit", "cc-by-sa-4.0"], "cc-by-sa-4.0"),
        (["cc-by-nc-4.0", "cc-by-sa-4.0"], "cc-by-nc-sa-4.0"),
        (["mit", "unknown"], "unknown"),
        (["mit", "llama3.1"], "other"),
        (["odbl", "cc-by-sa-4.0"], "other"),
    ],
)
def test_combined_license(licenses, expected):
    assert combined_license(licenses) == expected
