"""fuzzy_dedup on a real local Ray against brute-force oracles (datasketch signatures, all-pairs Jaccard),
the cluster and row helpers it is built from, the ``fuzzy_dedup`` stage and ``aloe data dedup`` command,
recall and precision on the embedded corpus's ground truth, and the real MedMCQA files."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ray
from datasketch import MinHash
from typer.testing import CliRunner

from aloe_core.config import validate_config
from aloe_core.errors import InputError
from aloe_core.schemas import PREFERENCE_SCHEMA, SFT_SCHEMA, dumps_meta, loads_meta
from aloe_core.text import jaccard, matching_text, word_ngrams
from aloe_data.cli import app as data_app
from aloe_data.dedup import MinHashConfig, UnionFind, choose_kept, fuzzy_dedup, matching_texts
from aloe_data.dedup.clusters import union_verified_buckets
from aloe_data.dedup.exchange import group_by_key
from aloe_data.dedup.rows import answer_lengths, quality_scores
from aloe_data.pipeline.broadcast import IdIndex
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.stage import StageContext
from aloe_data.sources import read_sources
from aloe_data.stages.exact_dedup import answer_length
from aloe_data.stages.fuzzy_dedup import FuzzyDedupConfig, FuzzyDedupStage
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import SAMPLE_PREFERENCE_SOURCES, SAMPLE_SFT_SOURCES, sample_pipeline

THRESHOLD = 0.8


# ---------------------------------------------------------------- synthetic data with planted duplicates


def _row(
    row_id: str, question: str, answer: str, score: float | None = None, mcqa: dict | None = None
) -> dict:
    # Scores where the deita_score stage writes them (the keep rule's default score_key, deita.score).
    meta = {"origin": "synthetic"} if score is None else {"origin": "synthetic", "deita": {"score": score}}
    return {
        "id": row_id,
        "source": "synthetic",
        "task": "qa",
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "mcqa": mcqa,
        "meta": dumps_meta(meta),
    }


def _words(rng: random.Random, vocab: list[str], count: int) -> list[str]:
    return [rng.choice(vocab) for _ in range(count)]


def _planted_rows(seed: int = 11) -> list[dict]:
    """Unrelated docs; clusters of near-copies at Jaccard >= 0.97 planted so that each level of the keep
    rule decides some cluster; half-copies (Jaccard ~0.3-0.5); docs without shingles; an MCQA item with
    shuffled options. Ids are shuffled so the smallest id is not always the original."""
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(4000)
    ]
    docs: list[tuple[str, str, float | None, dict | None]] = []
    for base in range(90):
        question, answer = " ".join(_words(rng, vocab, 12)), _words(rng, vocab, rng.randint(80, 110))
        docs.append((question, " ".join(answer), None, None))
        if base < 10:  # same normalised text, same answer length: the smallest id is kept
            docs.append((question.upper() + "?", " ".join(answer), None, None))
        elif base < 20:  # the longest answer is kept
            docs.append((question, " ".join([*answer[:-1], "changedword"]), None, None))
            docs.append((question, " ".join([*answer, "appended"]), None, None))
        elif base < 30:  # the highest score is kept, although its answer is the shortest
            docs.append((question, " ".join(answer[:-1]), 0.9, None))
            docs.append((question, " ".join([*answer, "extra"]), 0.5, None))
        elif base < 45:  # half-copies: share a prefix, then diverge
            half = len(answer) // 2
            docs.append(
                (question, " ".join(answer[:half] + _words(rng, vocab, len(answer) - half)), None, None)
            )
    for text in ["", "!!!", "?"]:  # no shingles: never candidates, however many there are
        docs.append((text, "...", None, None))
    options = [{"letter": k, "text": " ".join(_words(rng, vocab, 3))} for k in "ABCD"]
    stem = " ".join(_words(rng, vocab, 15))
    for i, order in enumerate([[0, 1, 2, 3], [2, 0, 3, 1]]):
        shuffled = [{"letter": "ABCD"[j], "text": options[k]["text"]} for j, k in enumerate(order)]
        item = {"question": stem, "options": shuffled, "answer": "A", "context": None, "explanation": None}
        docs.append((stem, f"A. explanation {'long ' * i}", None, item))
    ids = [f"row-{i:04d}" for i in rng.sample(range(len(docs)), len(docs))]
    return [_row(i, q, a, s, m) for i, (q, a, s, m) in zip(ids, docs, strict=True)]


def _dataset(rows: list[dict], schema: pa.Schema = SFT_SCHEMA) -> ray.data.Dataset:
    table = pa.Table.from_pylist(rows, schema=schema)
    return ray.data.from_arrow([table.slice(i, 60) for i in range(0, len(table), 60)])


# ---------------------------------------------------------------- brute-force oracles


def _components(nodes: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[set[str]]:
    """Connected components with >= 2 nodes (plain graph search, independent of UnionFind)."""
    neighbours: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen: set[str] = set()
    out = []
    for start in neighbours:
        if start in seen:
            continue
        stack, comp = [start], set()
        while stack:
            node = stack.pop()
            if node not in comp:
                comp.add(node)
                stack.extend(neighbours[node] - comp)
        seen |= comp
        if len(comp) > 1:
            out.append(comp)
    return sorted(out, key=min)


def _datasketch_signatures(rows: list[dict]) -> dict[str, MinHash]:
    out = {}
    for row in rows:
        minhash = MinHash(num_perm=128, seed=1)
        minhash.update_batch([s.encode() for s in word_ngrams(matching_text(row), 5)])
        out[row["id"]] = minhash
    return out


def _band_sharing_pairs(signatures: dict[str, MinHash], bands: int, rows: int) -> set[tuple[str, str]]:
    """All pairs with an identical band (LSH candidates), rows without shingles excluded."""
    pairs = set()
    for band in range(bands):
        buckets: dict[bytes, list[str]] = {}
        for row_id, minhash in signatures.items():
            if not minhash.is_empty():
                buckets.setdefault(minhash.hashvalues[band * rows : (band + 1) * rows].tobytes(), []).append(
                    row_id
                )
        for members in buckets.values():
            pairs.update(itertools.combinations(sorted(members), 2))
    return pairs


def _expected_drops(rows: list[dict], clusters: list[set[str]]) -> dict[str, str]:
    """dropped id -> kept id: highest meta deita.score, then longest answer (exact dedup's measure),
    then smallest id."""
    by_id = {r["id"]: r for r in rows}

    def rank(row_id: str) -> tuple[float, int, str]:
        score = _score(by_id[row_id])
        return (-score if score is not None else np.inf, -answer_length(by_id[row_id]), row_id)

    expected = {}
    for cluster in clusters:
        kept = min(cluster, key=rank)
        expected.update({row_id: kept for row_id in cluster - {kept}})
    return expected


def _score(row: dict) -> float | None:
    return loads_meta(row["meta"]).get("deita", {}).get("score")


def _to_table(ds: ray.data.Dataset) -> pa.Table:
    return pa.concat_tables(ray.get(ds.to_arrow_refs()))


def _run(ds: ray.data.Dataset, config: MinHashConfig) -> tuple[pa.Table, pa.Table]:
    kept, dropped = fuzzy_dedup(ds, config, batch_size=64, num_partitions=3)
    return _to_table(kept), _to_table(dropped)


# ---------------------------------------------------------------- end to end on Ray


@pytest.fixture(scope="module")
def planted() -> list[dict]:
    return _planted_rows()


@pytest.fixture(scope="module")
def default_run(ray_session, planted) -> tuple[pa.Table, pa.Table]:
    return _run(_dataset(planted), MinHashConfig())


def test_clusters_match_brute_force_lsh_and_similarity_oracles(planted, default_run) -> None:
    kept, dropped = default_run
    signatures = _datasketch_signatures(planted)
    ids = [r["id"] for r in planted]
    lsh_clusters = _components(ids, _band_sharing_pairs(signatures, 9, 13))
    # On this data (duplicates at Jaccard >= 0.97, the rest far below) LSH candidates and "estimated
    # similarity >= threshold" give the same clusters, so both definitions are checked at once.
    # Rows without shingles are excluded: their empty MinHashes are all-equal (estimate 1.0), never similar.
    non_empty = [i for i in ids if not signatures[i].is_empty()]
    assert len(non_empty) == len(ids) - 3
    similar = [
        (a, b)
        for a, b in itertools.combinations(non_empty, 2)
        if signatures[a].jaccard(signatures[b]) >= THRESHOLD
    ]
    assert lsh_clusters == _components(ids, similar)
    assert len(lsh_clusters) == 31  # 30 planted clusters + the MCQA item with shuffled options

    expected = _expected_drops(planted, lsh_clusters)
    got = dict(zip(dropped["id"].to_pylist(), dropped["duplicate_of"].to_pylist(), strict=True))
    assert got == expected
    for row_id, kept_id, similarity in zip(
        *(dropped[c].to_pylist() for c in ("id", "duplicate_of", "similarity")), strict=True
    ):
        assert similarity == signatures[row_id].jaccard(signatures[kept_id])
    assert set(dropped["drop_reason"].to_pylist()) == {"near_duplicate"}
    assert sorted(kept["id"].to_pylist() + dropped["id"].to_pylist()) == sorted(ids)


def test_output_schemas(planted, default_run) -> None:
    kept, dropped = default_run
    assert kept.schema.names == SFT_SCHEMA.names
    assert kept.schema.remove_metadata().equals(SFT_SCHEMA.remove_metadata())
    assert dropped.schema.names == [*SFT_SCHEMA.names, "drop_reason", "duplicate_of", "similarity"]
    assert dropped.schema.field("similarity").type == pa.float64()
    by_id = {r["id"]: r for r in planted}
    for row in dropped.to_pylist()[:5]:  # dropped rows keep their content untouched
        assert {k: row[k] for k in SFT_SCHEMA.names} == by_id[row["id"]]


def test_keep_rule_cases_are_present(planted, default_run) -> None:
    """The data really exercises each tie-break level of the keep rule."""
    _, dropped = default_run
    by_id = {r["id"]: r for r in planted}
    pairs = zip(dropped["id"].to_pylist(), dropped["duplicate_of"].to_pylist(), strict=True)
    reasons = set()
    for row_id, kept_id in pairs:
        score_d, score_k = _score(by_id[row_id]), _score(by_id[kept_id])
        len_d, len_k = (answer_length(by_id[i]) for i in (row_id, kept_id))
        if score_k is not None and len_k < len_d:
            reasons.add("score beats length")
        elif score_k is None and score_d is None and len_k > len_d:
            reasons.add("length")
        elif score_k is None and len_k == len_d and kept_id < row_id:
            reasons.add("smallest id")
    assert reasons == {"score beats length", "length", "smallest id"}


def test_verify_removes_lsh_false_positives(ray_session, planted) -> None:
    """Loose banding (32 bands x 2 rows) makes half-copies LSH candidates; verify keeps only pairs
    whose exact Jaccard is >= threshold, and reports that exact Jaccard."""
    config = MinHashConfig(bands=32, rows=2, verify=True)
    kept, dropped = _run(_dataset(planted), config)
    ids = [r["id"] for r in planted]
    shingles = {r["id"]: word_ngrams(matching_text(r), 5) for r in planted}
    exact = {
        (a, b)
        for a, b in itertools.combinations(sorted(ids), 2)
        if jaccard(shingles[a], shingles[b]) >= THRESHOLD
    }
    candidates = _band_sharing_pairs(_datasketch_signatures(planted), 32, 2)
    assert exact <= candidates  # the oracle's pairs are all LSH candidates here...
    false_positives = candidates - exact
    assert len(_components(ids, false_positives)) >= 10  # ...and without verify many more would merge

    expected = _expected_drops(planted, _components(ids, exact))
    got = dict(zip(dropped["id"].to_pylist(), dropped["duplicate_of"].to_pylist(), strict=True))
    assert got == expected
    for row_id, kept_id, similarity in zip(
        *(dropped[c].to_pylist() for c in ("id", "duplicate_of", "similarity")), strict=True
    ):
        assert similarity == jaccard(shingles[row_id], shingles[kept_id])
    assert kept.num_rows + dropped.num_rows == len(planted)


@pytest.mark.parametrize("num_partitions", [1, 3])
def test_group_by_key_puts_every_key_in_exactly_one_partition(ray_session, num_partitions) -> None:
    rng = np.random.default_rng(9)
    keys = rng.choice(np.array([3, 2**63 + 5, 17, 40, 41, 2**64 - 1], dtype=np.uint64), 500)
    table = pa.table({"band_key": keys, "id": [f"r{i}" for i in range(500)]})
    ds = ray.data.from_arrow([table.slice(i, 37) for i in range(0, 500, 37)])
    parts = group_by_key(ds, "band_key", num_partitions, lambda t: t, blocks_per_task=3)
    assert len(parts) <= num_partitions
    key_sets = [set(p["band_key"].to_pylist()) for p in parts]
    assert sum(len(k) for k in key_sets) == len(set(keys.tolist()))  # no key split across partitions
    rows = sorted(
        itertools.chain.from_iterable(
            zip(*(p[c].to_pylist() for c in p.column_names), strict=True) for p in parts
        )
    )
    assert rows == sorted(zip(keys.tolist(), table["id"].to_pylist(), strict=True))


def test_repeated_id_among_candidates_is_an_input_error(ray_session) -> None:
    answer = "the same answer text repeated for all three rows of this test case"
    rows = [
        _row("same-id", "question", answer),
        _row("same-id", "question", answer),
        _row("other", "question", answer),
    ]
    with pytest.raises(InputError, match="'same-id' occurs 2 times"):
        fuzzy_dedup(_dataset(rows), MinHashConfig(), num_partitions=2)


def test_no_duplicates_returns_everything_kept(ray_session) -> None:
    rows = [
        _row(f"r{i}", f"question number {i}", f"a completely different answer {i} " * (i + 1))
        for i in range(5)
    ]
    kept, dropped = _run(_dataset(rows), MinHashConfig())
    assert sorted(kept["id"].to_pylist()) == [f"r{i}" for i in range(5)]
    assert dropped.num_rows == 0


# ---------------------------------------------------------------- building blocks


def test_id_index_positions() -> None:
    ids = pa.array(["b-2", "a-10", "ü-1", "a-1", "c"])
    index = IdIndex(ids)
    queries = pa.array(["a-1", "zz", "c", "a-100", "a", "ü-1", "b-2", "longer-than-any-indexed-id"])
    assert index.positions(queries).tolist() == [3, -1, 4, -1, -1, 2, 0, -1]
    assert IdIndex(pa.array([], pa.string())).positions(queries).tolist() == [-1] * 8
    assert index.positions(pa.chunked_array([["c"], ["b-2"]])).tolist() == [4, 0]


def test_union_find_components_equal_graph_search() -> None:
    rng = np.random.default_rng(5)
    n = 300
    src, dst = rng.integers(0, n, 250), rng.integers(0, n, 250)
    uf = UnionFind(n)
    uf.union_edges(src, dst)
    roots = uf.roots()
    got = sorted((set(np.flatnonzero(roots == r).astype(str)) for r in np.unique(roots)), key=min)
    expected = _components(map(str, range(n)), zip(src.astype(str), dst.astype(str), strict=True))
    assert [c for c in got if len(c) > 1] == expected


def test_choose_kept_ranks_score_then_length_then_node() -> None:
    roots = np.array([0, 0, 0, 3, 3, 3, 6, 6, 8])
    score = np.array([np.nan, 0.2, 0.1, np.nan, np.nan, np.nan, 0.5, 0.5, np.nan])
    length = np.array([99, 1, 50, 10, 30, 30, 7, 7, 1])
    assert choose_kept(roots, score, length).tolist() == [1, 1, 1, 4, 4, 4, 6, 6, 8]


def test_union_verified_buckets_finds_pairs_behind_a_false_positive_center() -> None:
    """Bucket (0, 1, 2): the center 0 matches nobody, but 1~2 must still be merged. A pair already
    connected is not checked ((4, 5) after 3~4 and 3~5), and a pair repeated across buckets is checked
    once."""
    similar_pairs = {(1, 2), (3, 4), (3, 5)}
    calls = []

    def similar(a: int, b: int) -> bool:
        calls.append((a, b))
        return (a, b) in similar_pairs

    uf = UnionFind(6)
    checked = union_verified_buckets(uf, [(0, 1, 2), (0, 1, 2), (3, 4, 5)], similar)
    roots = uf.roots()
    assert roots[1] == roots[2] != roots[0]
    assert roots[3] == roots[4] == roots[5]
    assert calls == [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5)]
    assert checked == 5


def test_row_helpers_match_per_row_definitions() -> None:
    rows = _planted_rows()[-6:]  # includes MCQA items and rows without shingles
    multi_turn = _row("multi", "first question", "a first answer")
    multi_turn["messages"] += [
        {"role": "user", "content": "and a follow-up question"},
        {"role": "assistant", "content": "the second answer, longer than the first one"},
    ]
    rows.insert(2, multi_turn)
    table = pa.Table.from_pylist(rows, schema=SFT_SCHEMA)
    sliced = pa.concat_tables([table, table]).slice(3, 7)  # non-zero offsets into the list arrays
    for t in (table, sliced):
        expected_rows = t.to_pylist()
        assert matching_texts(t) == [matching_text(r) for r in expected_rows]
        assert answer_lengths(t).tolist() == [answer_length(r) for r in expected_rows]
    assert answer_lengths(table)[2] == len("a first answer") + len(
        "the second answer, longer than the first one"
    )
    pref = pa.Table.from_pylist(
        [
            {
                "id": "p",
                "source": "s",
                "prompt": [{"role": "user", "content": "Q?"}],
                "chosen": "good answer",
                "rejected": "bad",
                "meta": dumps_meta({"quality_score": 3, "other": True, "deita": {"score": 2.5}}),
            }
        ],
        schema=PREFERENCE_SCHEMA,
    )
    assert matching_texts(pref) == ["Q?\ngood answer"]
    assert answer_lengths(pref).tolist() == [11]
    assert quality_scores(pref, "quality_score").tolist() == [3.0]
    assert quality_scores(pref, "deita.score").tolist() == [2.5]  # dotted path into meta
    assert np.isnan(quality_scores(pref, "deita.missing")).all()
    assert np.isnan(quality_scores(pref, "quality_score.deeper")).all()
    assert np.isnan(quality_scores(pref, "other")).all()  # booleans are not scores
    with_column = pa.table({"id": ["a", "b"], "q": pa.array([0.5, None], pa.float64())})
    assert quality_scores(with_column, "q")[0] == 0.5 and np.isnan(quality_scores(with_column, "q")[1])


# ---------------------------------------------------------------- the pipeline stage


def _stage_output(rows: list[dict], config: FuzzyDedupConfig | None = None) -> pa.Table:
    stage = FuzzyDedupStage(config or FuzzyDedupConfig())
    context = StageContext("sft", Path("unused"), "04-fuzzy-dedup", cluster_cpus=2)
    return _to_table(stage.apply(_dataset(rows), context))


@pytest.fixture(scope="module")
def preserve_order(ray_session) -> None:
    # As the pipeline runner does: the stage keeps input order only when Ray Data is asked to.
    ray.data.DataContext.get_current().execution_options.preserve_order = True


def test_stage_marks_the_library_drops_in_input_order(preserve_order, planted, default_run) -> None:
    _, dropped = default_run
    out = _stage_output(planted)
    assert out["id"].to_pylist() == [r["id"] for r in planted]  # every row, in input order
    assert out.column_names == [*SFT_SCHEMA.names, "drop_reason", "drop_detail", "duplicate_of", "similarity"]
    expected = {
        i: (k, s)
        for i, k, s in zip(
            *(dropped[c].to_pylist() for c in ("id", "duplicate_of", "similarity")), strict=True
        )
    }
    marked = out.filter(pc.is_valid(out["drop_reason"]))
    assert set(marked["drop_reason"].to_pylist()) == {"near_duplicate"}
    got = dict(
        zip(
            marked["id"].to_pylist(),
            zip(marked["duplicate_of"].to_pylist(), marked["similarity"].to_pylist(), strict=True),
            strict=True,
        )
    )
    assert got == expected
    first = marked.slice(0, 1).to_pylist()[0]
    assert first["drop_detail"] == (
        f"near duplicate of {first['duplicate_of']} (estimated Jaccard {first['similarity']:.3f})"
    )
    kept = out.filter(pc.is_null(out["drop_reason"]))
    assert kept["duplicate_of"].null_count == kept["similarity"].null_count == kept.num_rows
    assert kept["drop_detail"].null_count == kept.num_rows


def test_stage_on_empty_short_and_punctuation_only_texts(preserve_order) -> None:
    """No shingles (empty or punctuation only): never duplicates, however many. Fewer words than the
    n-gram: one shingle, the whole normalised text, so equal short texts match and others do not."""
    rows = [
        _row("empty-1", "", ""),
        _row("empty-2", "", ""),
        _row("punct-1", "?!", "..."),
        _row("punct-2", "...", "?"),
        _row("short-1", "Fever?", "Rest."),
        _row("short-2", "fever", "rest!!"),  # normalises to the same text as short-1: "fever\nrest"
        _row("short-3", "Fever", "Rest and fluids"),
        _row("four-words", "Fever and cough now", ""),
    ]
    out = _stage_output(rows)
    marked = {
        i: (k, s)
        for i, k, s, r in zip(
            *(out[c].to_pylist() for c in ("id", "duplicate_of", "similarity", "drop_reason")), strict=True
        )
        if r is not None
    }
    # short-1 and short-2 are the same text; short-2's answer is longer ("rest!!": 6 characters vs 5).
    assert marked == {"short-1": ("short-2", 1.0)}


def test_stage_rejects_text_that_is_not_utf8(preserve_order) -> None:
    """Arrow does not validate strings read from Parquet; invalid bytes must name the row and column."""
    rows = [_row(f"r{i}", f"question {i}", f"answer number {i} with enough words") for i in range(3)]
    table = pa.Table.from_pylist(rows, schema=SFT_SCHEMA)
    messages = table["messages"].combine_chunks()
    contents = pc.struct_field(messages.values, "content").cast(pa.binary()).to_pylist()
    contents[3] = b"answer \xff\xfe number 1"  # row r1's assistant message
    struct = pa.StructArray.from_arrays(
        [pc.struct_field(messages.values, "role"), pa.array(contents, pa.binary()).view(pa.string())],
        ["role", "content"],
    )
    bad = table.set_column(
        table.column_names.index("messages"),
        "messages",
        pa.ListArray.from_arrays(messages.offsets, struct).cast(SFT_SCHEMA.field("messages").type),
    )
    with pytest.raises(InputError, match=r"row 'r1': column 'messages' holds bytes that are not valid UTF-8"):
        FuzzyDedupStage(FuzzyDedupConfig()).apply(
            ray.data.from_arrow(bad), StageContext("sft", Path("unused"), "x", cluster_cpus=2)
        )


def test_dedup_command_writes_identical_shards_on_rerun(preserve_order, planted, default_run, tmp_path):
    """`aloe data dedup` (in process, on the session's Ray): kept and dropped shards, the manifest, and
    byte-identical files when run again."""
    _, dropped = default_run
    table = pa.Table.from_pylist(planted, schema=SFT_SCHEMA)
    (tmp_path / "in").mkdir()
    for i, start in enumerate(range(0, table.num_rows, 80)):
        pq.write_table(table.slice(start, 80), tmp_path / "in" / f"part-{i}.parquet")
    runner = CliRunner()
    for out in ("a", "b"):
        args = [
            "dedup",
            "--input",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / out),
            "--shard-rows",
            "50",
        ]
        result = runner.invoke(data_app, args)
        assert result.exit_code == 0, result.output
    assert f"dropped: near_duplicate={dropped.num_rows};" in result.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())["stages"]["a"]
    assert manifest["rows_in"] == len(planted)
    assert manifest["dropped"] == {"near_duplicate": dropped.num_rows}
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.parquet"))
    assert len(files) > 3 and files == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.parquet")
    )
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    written = pq.read_table(tmp_path / "a" / "_dropped")
    assert sorted(written["id"].to_pylist()) == sorted(dropped["id"].to_pylist())


# ---------------------------------------------------------------- ground truth of the embedded corpus

CORPUS_ROWS, CORPUS_SEED = 6000, 0


def _ingested(sample_dir: Path, kind: str) -> pa.Table:
    """The rows the readers accept (malformed ones removed), as the pipeline's first stage keeps them."""
    config = validate_config(PipelineConfig, sample_pipeline(sample_dir, kind, stages=[]))
    table = _to_table(read_sources(config.sources, kind))
    return table.filter(pc.is_null(table["drop_reason"])).drop_columns(["drop_reason", "drop_detail"])


def _truth_components(truth: dict) -> tuple[dict, list[tuple[tuple, tuple]]]:
    """(root of every planted duplicate's (file, row) over exact + near duplicate relations, planted
    near-duplicate pairs)."""
    parent: dict = {}

    def find(x: tuple) -> tuple:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    near = []
    for d in truth["defects"]:
        if d["kind"] in ("exact_duplicate", "near_duplicate"):
            a, b = (d["file"], str(d["row"])), (d["of"]["file"], str(d["of"]["row"]))
            parent[find(a)] = find(b)
            if d["kind"] == "near_duplicate":
                near.append((a, b))
    return {x: find(x) for x in list(parent)}, near


def test_recall_and_precision_on_the_corpus_ground_truth(preserve_order, tmp_path) -> None:
    """Planted near-duplicate pairs (5-gram Jaccard 0.88-0.97) at the default settings: recall = planted
    pairs that end up in one cluster; precision = dropped rows whose kept row is a planted duplicate of
    them (exact or near, transitively)."""
    write_sample(tmp_path, rows=CORPUS_ROWS, seed=CORPUS_SEED)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    prefix = {
        name: str(Path(path).parent) for name, path, _ in SAMPLE_SFT_SOURCES + SAMPLE_PREFERENCE_SOURCES
    }
    cluster_of: dict = {}  # (file, row) -> (file, row) of its kept row, for every dropped row
    pairs = []
    for kind in ("sft", "preference"):
        table = _ingested(tmp_path, kind)
        where = {
            r["id"]: (
                f"{prefix[r['source']]}/{loads_meta(r['meta'])['file']}",
                str(loads_meta(r["meta"])["row"]),
            )
            for r in table.select(["id", "source", "meta"]).to_pylist()
        }
        out = FuzzyDedupStage(FuzzyDedupConfig()).apply(
            ray.data.from_arrow(table), StageContext(kind, tmp_path, "x", cluster_cpus=2)
        )
        out = _to_table(out)
        marked = out.filter(pc.is_valid(out["drop_reason"]))
        for row_id, kept_id in zip(marked["id"].to_pylist(), marked["duplicate_of"].to_pylist(), strict=True):
            cluster_of[where[row_id]] = where[kept_id]
            pairs.append((where[row_id], where[kept_id]))
    root, near = _truth_components(truth)
    found = [(a, b) for a, b in near if cluster_of.get(a, a) == cluster_of.get(b, b)]
    correct = [(a, b) for a, b in pairs if a in root and root[a] == root.get(b)]
    recall, precision = len(found) / len(near), len(correct) / len(pairs)
    print(
        f"\nground truth ({CORPUS_ROWS} rows, seed {CORPUS_SEED}): recall {len(found)}/{len(near)} = "
        f"{recall:.4f}, precision {len(correct)}/{len(pairs)} = {precision:.4f}"
    )
    assert len(near) == 240
    assert recall >= 0.95
    assert precision >= 0.98


# ---------------------------------------------------------------- the real MedMCQA files

# Pairs found in medmcqa_val.json (rows of MedMCQA train) + medmcqa_test.json (its validation split),
# read by eye (question, options and keyed answer of both sides) on 2026-11-22. Of 86 dropped rows, 79
# keep the same answer text; the others are re-typed copies whose answer differs only in case or
# punctuation, plus two that are not the same item: a sibling question ("Split impedence based apex
# locator" vs "Impedence based apex locator", different answers) and one item keyed differently in
# two rows (subantimicrobial doxycycline dose, 20 vs 60 mg).
MEDMCQA_PAIRS = {  # dropped row -> kept row, by the source's original ids
    "medmcqa_train_131055": "medmcqa_train_108712",  # jaundice in a newborn, "Except –" vs "Except"
    "medmcqa_train_93388": "medmcqa_train_159084",  # "Histopathologv" typo in a long vignette (J 0.78)
    "medmcqa_validation_1539": "medmcqa_train_30288",  # across the two files; decontamination finds it too
    "medmcqa_validation_3408": "medmcqa_validation_2914",  # sibling with a different answer
    "medmcqa_validation_455": "medmcqa_validation_2966",  # same item, keyed 20 mg in one row, 60 mg in other
}


def test_medmcqa_files_dedup_cleanly(preserve_order, shared_mcqa) -> None:
    sources = [{"name": "medmcqa", "format": "prompt_engine_mcqa", "path": str(shared_mcqa / "medmcqa")}]
    config = validate_config(PipelineConfig, {"kind": "sft", "sources": sources, "report": False})
    table = _to_table(read_sources(config.sources, "sft"))
    assert table.num_rows == 14_183 and table["drop_reason"].null_count == table.num_rows
    table = table.drop_columns(["drop_reason", "drop_detail"])
    out = _to_table(
        FuzzyDedupStage(FuzzyDedupConfig()).apply(
            ray.data.from_arrow(table), StageContext("sft", Path("unused"), "x", cluster_cpus=2)
        )
    )
    marked = out.filter(pc.is_valid(out["drop_reason"]))
    original = {
        r["id"]: loads_meta(r["meta"])["original_id"] for r in table.select(["id", "meta"]).to_pylist()
    }
    found = {
        original[i]: original[k]
        for i, k in zip(marked["id"].to_pylist(), marked["duplicate_of"].to_pylist(), strict=True)
    }
    assert (len(found), len(set(found.values()))) == (86, 85)  # 86 dropped rows in 85 clusters
    assert {k: found[k] for k in MEDMCQA_PAIRS} == MEDMCQA_PAIRS
    by_id = {
        r["id"]: r
        for r in table.filter(
            pc.is_in(
                table["id"],
                pa.concat_arrays([marked["id"].combine_chunks(), marked["duplicate_of"].combine_chunks()]),
            )
        ).to_pylist()
    }
    signatures = _datasketch_signatures(list(by_id.values()))
    for row_id, kept_id, similarity in zip(
        *(marked[c].to_pylist() for c in ("id", "duplicate_of", "similarity")), strict=True
    ):
        assert similarity == signatures[row_id].jaccard(signatures[kept_id])
