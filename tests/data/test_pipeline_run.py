"""The data pipeline end to end on the embedded corpus, checked against its ground truth.

One sample (3,000 rows) and one run per module; a real local Ray executes every stage.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasketch import MinHash

from aloe_core.config import validate_config
from aloe_core.text import matching_text, word_ngrams
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.report import write_report
from aloe_data.pipeline.runner import run_pipeline
from aloe_data.stages.exact_dedup import answer_length
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import SAMPLE_PREFERENCE_SOURCES, SAMPLE_SFT_SOURCES, sample_pipeline

PREFIX = {name: str(Path(path).parent) for name, path, _ in SAMPLE_SFT_SOURCES + SAMPLE_PREFERENCE_SOURCES}
# Ground-truth defect kind -> the drop reason of the stage that must catch it.
CLEAN_REASONS = {
    "empty_answer": "empty_answer",
    "short_answer": "min_answer_chars",
    "non_english": "languages",
    "too_long": "max_chars",
    "answer_repeats_question": "answer_repeats_question",
}
PII_KINDS = {"pii_email": "email", "pii_phone": "phone", "pii_url": "url"}


def locator(row: dict) -> tuple[str, str]:
    meta = json.loads(row["meta"])
    return f"{PREFIX[row['source']]}/{meta['file']}", str(meta["row"])


def rows_of(directory: Path) -> list[dict]:
    return [r for f in sorted(directory.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def dropped_of(directory: Path) -> list[dict]:
    return rows_of(directory / "_dropped") if (directory / "_dropped").is_dir() else []


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sample")
    write_sample(directory, rows=3000, seed=0)
    truth = json.loads((directory / "ground_truth.json").read_text())
    return directory, truth


def planted(truth: dict, kind: str, files: set[str]) -> set[tuple[str, str]]:
    return {(d["file"], str(d["row"])) for d in truth["defects"] if d["kind"] == kind and d["file"] in files}


def run(kind: str, sample_dir: Path, out: Path):
    config = validate_config(PipelineConfig, sample_pipeline(sample_dir, kind))
    manifest = run_pipeline(config, out)
    write_report(out, manifest)
    return manifest


@pytest.fixture(scope="module")
def sft_run(ray_session, sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft-run")
    return out, run("sft", sample[0], out)


def sft_files(truth: dict) -> set[str]:
    return {f for f in truth["files"] if f.split("/")[0] in {PREFIX[n] for n, _, _ in SAMPLE_SFT_SOURCES}}


def test_stage_layout_and_invariant(sft_run):
    out, manifest = sft_run
    assert list(manifest.stages) == [
        "01-ingest",
        "02-clean",
        "03-exact-dedup",
        "04-fuzzy-dedup",
        "05-decontaminate",
    ]
    previous_out = None
    for entry in manifest.stages.values():
        assert entry["rows_in"] == entry["rows_out"] + sum(entry["dropped"].values())
        if previous_out is not None:
            assert entry["rows_in"] == previous_out
        previous_out = entry["rows_out"]
        stage_dir = out / entry["stage"]
        assert sorted(p.name for p in stage_dir.glob("*.parquet")) == sorted(entry["files"])
        for name, info in entry["files"].items():
            assert pq.ParquetFile(stage_dir / name).metadata.num_rows == info["rows"]
        assert sum(i["rows"] for i in entry["files"].values()) == entry["rows_out"]


def test_ingest_quarantines_exactly_the_malformed_rows(sft_run, sample):
    out, manifest = sft_run
    _, truth = sample
    quarantined = dropped_of(out / "01-ingest")
    assert {r["drop_reason"] for r in quarantined} == {"malformed"}
    assert {locator(r) for r in quarantined} == planted(truth, "malformed", sft_files(truth))
    files = sft_files(truth)
    assert manifest.stages["01-ingest"]["rows_in"] == sum(truth["files"][f] for f in files)


def test_clean_drops_exactly_the_planted_rows(sft_run, sample):
    out, manifest = sft_run
    _, truth = sample
    by_reason = defaultdict(set)
    for row in dropped_of(out / "02-clean"):
        by_reason[row["drop_reason"]].add(locator(row))
    files = sft_files(truth)
    expected = {reason: planted(truth, kind, files) for kind, reason in CLEAN_REASONS.items()}
    expected = {reason: rows for reason, rows in expected.items() if rows}
    assert dict(by_reason) == expected
    assert manifest.stages["02-clean"]["dropped"] == {r: len(v) for r, v in sorted(expected.items())}


def test_every_planted_pii_item_is_masked(sft_run, sample):
    out, _ = sft_run
    _, truth = sample
    files = sft_files(truth)
    kept = {locator(r): r for r in rows_of(out / "02-clean")}
    masked = {
        loc: set(json.loads(r["meta"]).get("clean", {}).get("pii_masked", [])) for loc, r in kept.items()
    }
    expected = defaultdict(set)
    for d in truth["defects"]:
        if d["kind"] in PII_KINDS and d["file"] in files:
            expected[(d["file"], str(d["row"]))].add(PII_KINDS[d["kind"]])
    assert expected, "the sample has no PII in sft files"
    assert {loc: kinds for loc, kinds in masked.items() if kinds} == dict(expected)
    values = [d["value"] for d in truth["defects"] if d["kind"] in PII_KINDS and d["file"] in files]
    text = json.dumps(rows_of(out / "05-decontaminate"))
    assert [v for v in values if json.dumps(v)[1:-1] in text] == []


def test_exact_dedup_drops_one_of_each_planted_pair(sft_run, sample):
    out, manifest = sft_run
    _, truth = sample
    files = sft_files(truth)
    ids = {locator(r): r["id"] for r in rows_of(out / "02-clean")}
    # Planted copies form clusters with their originals; each cluster keeps exactly one row.
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for d in truth["defects"]:
        if d["kind"] == "exact_duplicate" and d["file"] in files:
            parent[find((d["file"], str(d["row"])))] = find((d["of"]["file"], str(d["of"]["row"])))
    clusters = defaultdict(set)
    for member in list(parent):
        clusters[find(member)].add(ids[member])
    dropped = {r["id"]: r["duplicate_of"] for r in dropped_of(out / "03-exact-dedup")}
    expected_drops = sum(len(c) - 1 for c in clusters.values())
    assert manifest.stages["03-exact-dedup"]["dropped"] == {"exact_duplicate": expected_drops}
    for members in clusters.values():
        kept = members - set(dropped)
        assert len(kept) == 1
        assert {dropped[m] for m in members - kept} == kept


def lsh_clusters(rows: list[dict], bands: int = 9, band_rows: int = 13) -> list[set[str]]:
    """Oracle for fuzzy dedup's defaults: ids whose datasketch MinHashes (128 permutations, seed 1, word
    5-grams of the matching text) share a band, grouped into connected components (size >= 2)."""
    parent = {r["id"]: r["id"] for r in rows}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    buckets: dict[tuple[int, bytes], str] = {}
    for row in rows:
        shingles = word_ngrams(matching_text(row), 5)
        if not shingles:
            continue
        minhash = MinHash(num_perm=128, seed=1)
        minhash.update_batch([s.encode() for s in shingles])
        for band in range(bands):
            key = (band, minhash.hashvalues[band * band_rows : (band + 1) * band_rows].tobytes())
            parent[find(row["id"])] = find(buckets.setdefault(key, row["id"]))
    clusters = defaultdict(set)
    for row_id in parent:
        clusters[find(row_id)].add(row_id)
    return [c for c in clusters.values() if len(c) > 1]


def test_fuzzy_dedup_drops_exactly_the_caught_planted_near_duplicates(sft_run, sample):
    out, manifest = sft_run
    _, truth = sample
    files = sft_files(truth)
    rows = rows_of(out / "03-exact-dedup")  # the stage's input
    where = {r["id"]: locator(r) for r in rows}
    by_id = {r["id"]: r for r in rows}
    expected = {}  # every LSH cluster keeps its longest answer (the demo has no scores), then smallest id
    for cluster in lsh_clusters(rows):
        kept = min(cluster, key=lambda i: (-answer_length(by_id[i]), i))
        expected.update({i: kept for i in cluster - {kept}})
    dropped = {r["id"]: r["duplicate_of"] for r in dropped_of(out / "04-fuzzy-dedup")}
    assert dropped == expected
    assert manifest.stages["04-fuzzy-dedup"]["dropped"] == {"near_duplicate": len(expected)}
    # Every drop is one side of a planted near-duplicate pair, and nearly all planted pairs are caught
    # (LSH at 9 bands x 13 rows finds a pair of Jaccard 0.9 with probability 0.93, of 0.95 with 0.999).
    planted_pairs = {
        frozenset({(d["file"], str(d["row"])), (d["of"]["file"], str(d["of"]["row"]))})
        for d in truth["defects"]
        if d["kind"] == "near_duplicate" and d["file"] in files
    }
    caught = {frozenset({where[i], where[k]}) for i, k in dropped.items()}
    assert caught <= planted_pairs
    reachable = {p for p in planted_pairs if p <= set(where.values())}
    assert len(caught) >= 0.95 * len(reachable) and len(reachable) >= 0.95 * len(planted_pairs)


def test_decontamination_drops_exactly_the_planted_leaks(sft_run, sample):
    out, manifest = sft_run
    _, truth = sample
    leaks = {
        (d["file"], str(d["row"])): d["benchmark_id"]
        for d in truth["defects"]
        if d["kind"] == "benchmark_leak" and d["file"] in sft_files(truth)
    }
    dropped = dropped_of(out / "05-decontaminate")
    assert {locator(r): r["matched_id"] for r in dropped} == leaks
    assert {r["drop_reason"] for r in dropped} == {"benchmark_overlap"}
    assert manifest.stages["05-decontaminate"]["dropped"] == {"benchmark_overlap": len(leaks)}


def test_shards_read_with_pyarrow_polars_and_datasets(sft_run):
    import datasets
    import polars as pl

    out, manifest = sft_run
    final = out / "05-decontaminate"
    expected = manifest.stages["05-decontaminate"]["rows_out"]
    assert pq.read_table(final, ignore_prefixes=["_"]).num_rows == expected
    assert pl.read_parquet(str(final / "*.parquet")).height == expected
    loaded = datasets.load_dataset("parquet", data_files=str(final / "*.parquet"), split="train")
    assert loaded.num_rows == expected
    assert set(loaded.column_names) == {"id", "source", "task", "messages", "mcqa", "meta"}


def test_report_shows_the_funnel(sft_run):
    out, manifest = sft_run
    report = json.loads((out / "report.json").read_text())
    assert [f["stage"] for f in report["funnel"]] == list(manifest.stages)
    assert report["rows_out"] == manifest.stages["05-decontaminate"]["rows_out"]
    assert sum(sum(bins.values()) for bins in report["length_histograms"].values()) == report["rows_out"]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "exact_duplicate" in page


def test_preference_run_against_ground_truth(ray_session, sample, tmp_path):
    sample_dir, truth = sample
    manifest = run("preference", sample_dir, tmp_path)
    files = {f for f in truth["files"] if f.startswith(PREFIX["preference"] + "/")}
    quarantined = {locator(r) for r in dropped_of(tmp_path / "01-ingest")}
    assert quarantined == planted(truth, "malformed", files)
    dropped = defaultdict(set)
    for row in dropped_of(tmp_path / "02-clean"):
        dropped[row["drop_reason"]].add(locator(row))
    expected = {reason: planted(truth, kind, files) for kind, reason in CLEAN_REASONS.items()}
    assert dict(dropped) == {r: v for r, v in expected.items() if v}
    exact = sum(1 for d in truth["defects"] if d["kind"] == "exact_duplicate" and d["file"] in files)
    assert manifest.stages["03-exact-dedup"]["dropped"].get("exact_duplicate", 0) == exact
