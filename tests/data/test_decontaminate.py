"""Benchmark decontamination: benchmark loading, the n-gram rule against a brute-force oracle, the stage on a
real local Ray (hand-made rows, the embedded corpus's planted leaks), and the real medical test sets.

The oracle (:func:`oracle_match`) is written here from the rule as documented, with Python sets of word
tuples: no hashing, no numpy, none of the index code.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core.config import validate_config
from aloe_core.errors import InputError
from aloe_core.schemas import dumps_meta, record_id, schema_for, to_table
from aloe_core.text import mcqa_matching_text, words
from aloe_data.benchmarks import (
    BenchmarkIndex,
    BenchmarkItem,
    _bitmap_test,
    bitmap_bits_for,
    build_bitmap,
    build_index,
    load_benchmarks,
    ngram_hash,
    token_hashes,
    window_hashes,
)
from aloe_data.dedup.normalize import words_of_strings
from aloe_data.pipeline.annotations import DROP_REASON
from aloe_data.pipeline.config import OutputConfig, PipelineConfig
from aloe_data.pipeline.runner import run_pipeline
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.sources.records import mcqa_answer_text, mcqa_user_text
from aloe_data.stages.decontaminate import (
    DecontaminateConfig,
    DecontaminateStage,
    batch_texts,
    match_rows,
    row_texts,
)

LONG_Q = (
    "A 58-year-old man with long-standing type 2 diabetes reports burning pain in both feet that is worse "
    "at night and has slowly progressed over two years. Which drug is the most appropriate first choice?"
)
LONG_OPTIONS = {"A": "Duloxetine", "B": "Tramadol", "C": "Morphine", "D": "Carbamazepine"}
SHORT_Q = "Which vitamin deficiency classically causes bleeding and swollen gums?"  # 9 words
TINY_Q = "Muscle spindles detect:"  # 3 words: below min_short_words, matched only with its options
TINY_OPTIONS = {
    "A": "Changes in muscle length and the rate of stretch",
    "B": "Tension developed in the tendon during contraction",
    "C": "Joint position through capsular receptors only",
    "D": "Pain from ischaemic muscle fibres",
}
VAL_Q = "Which enzyme is inhibited by allopurinol in the treatment of chronic gout in adults?"


# -- helpers -------------------------------------------------------------------------------------------


def pe_item(item_id: str, question: str, options: dict[str, str] | None, answer: str = "A") -> dict:
    item: dict = {"id": item_id, "question": question, "correct_answer": answer}
    if options is not None:
        item["options"] = options
    return item


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def chat_row(n: int, *turns: tuple[str, str]) -> dict:
    messages = [{"role": r, "content": c} for r, c in turns]
    return {
        "id": record_id("sft", "hand", {"m": messages}, str(n)),
        "source": "hand",
        "task": "chat",
        "messages": messages,
        "mcqa": None,
        "meta": dumps_meta({"n": n}),
    }


def mcqa_row(n: int, question: str, options: dict[str, str], answer: str = "A") -> dict:
    item = {
        "question": question,
        "options": [{"letter": k, "text": v} for k, v in options.items()],
        "answer": answer,
        "context": None,
        "explanation": None,
    }
    row = chat_row(n, ("user", mcqa_user_text(item)), ("assistant", mcqa_answer_text(item, False)))
    return {**row, "task": "mcqa", "mcqa": item}


def write_rows(path: Path, rows: list[dict], kind: str = "sft") -> Path:
    path.mkdir(parents=True)
    pq.write_table(to_table(rows, kind), path / "part-0.parquet")
    return path


def read_kept(path: Path) -> list[dict]:
    return [r for f in sorted(path.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def read_dropped(path: Path) -> dict[str, dict]:
    files = sorted((path / "_dropped").glob("*.parquet"))
    return {r["id"]: r for f in files for r in pq.read_table(f).to_pylist()}


# -- the oracle ----------------------------------------------------------------------------------------


def oracle_entries(items: list[BenchmarkItem], n: int, min_short: int) -> list[tuple[int, str, set]]:
    """(item index, text name, set of shingles) per indexed text, in index order, from the documented rule."""
    entries = []
    for i, item in enumerate(items):
        question = words(item.question)
        texts = [("question", question, None)]
        if item.options:
            shown = "\n".join(f"{o['letter']}. {o['text']}" for o in item.options)
            texts.append(("question+options", words(f"{item.question}\n{shown}"), len(question)))
            sorted_text = words(mcqa_matching_text(item.question, item.options))
            texts.append(("question+sorted options", sorted_text, len(question)))
        for name, toks, question_words in texts:
            if len(toks) >= n:
                last = len(toks) - n
                if question_words is not None:  # must hold min(question words, n // 3) question words
                    last = min(last, question_words - min(question_words, n // 3))
                grams = {tuple(toks[s : s + n]) for s in range(last + 1)}
            elif len(toks) >= min_short:
                grams = {tuple(toks)}
            else:
                continue
            entries.append((i, name, grams))
    return entries


def oracle_match(texts: list[str], entries, items, min_overlap: int = 1, min_fraction: float = 0.0):
    """(benchmark, id, text name, overlap) of the best qualifying entry for one row's texts, or None."""
    row_tokens = [words(t) for t in texts]
    lengths = {len(g) for _, _, grams in entries for g in grams}
    present = {
        tuple(toks[s : s + k]) for toks in row_tokens for k in lengths for s in range(len(toks) - k + 1)
    }
    best, best_key = None, None
    for order, (i, name, grams) in enumerate(entries):
        overlap = len(grams & present)
        fraction = overlap / len(grams)
        if overlap and overlap >= min_overlap and fraction >= min_fraction:
            key = (-overlap, -fraction, order)
            if best_key is None or key < best_key:
                best_key, best = key, (items[i].benchmark, items[i].item_id, name, overlap)
    return best


def oracle_row_texts(row: dict) -> list[str]:
    texts = [m["content"] for m in row["messages"]]
    if row.get("mcqa"):
        texts.append(mcqa_matching_text(row["mcqa"]["question"], row["mcqa"]["options"]))
    return texts


# -- hashing and loading -------------------------------------------------------------------------------


def test_vectorised_window_hashes_equal_the_reference_hash():
    toks = words("The quick brown fox jumps over the lazy dog; the dog sleeps. Short one.")
    split = [0, 11, len(toks)]
    hashes, piece, start, length = window_hashes(token_hashes(toks), split, [1, 3, 11])
    expected = []
    for p in range(2):
        piece_toks = toks[split[p] : split[p + 1]]
        for k in (1, 3, 11):
            expected += [(p, s, k, ngram_hash(piece_toks[s : s + k])) for s in range(len(piece_toks) - k + 1)]
    got = list(zip(piece.tolist(), start.tolist(), length.tolist(), hashes.tolist(), strict=True))
    assert sorted(got) == sorted(expected)
    assert len(got) == 11 + 9 + 1 + 3 + 1  # piece 0: 11 words; piece 1: "short one" (2 words)
    # Stable across processes and versions: a fixed value, not Python's salted hash().
    assert ngram_hash(["muscle", "spindle"]) == ngram_hash(("muscle", "spindle"))
    assert ngram_hash(["a", "b"]) != ngram_hash(["b", "a"])


@pytest.mark.parametrize("count", [0, 1, 5_000, 300_000])
def test_index_contains_equals_exact_membership(count):
    """The Bloom bitmap is only a prefilter: contains() must equal exact set membership (np.isin)."""
    rng = np.random.default_rng(count)
    members = np.unique(rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False))
    bits = bitmap_bits_for(len(members))
    assert (1 << bits) >= 32 * len(members)
    empty = np.zeros(0, np.int32)
    index = BenchmarkIndex(
        n=13, lengths=(13,), hashes=members, entry_of=np.zeros(len(members), np.int32), entry_item=empty,
        entry_variant=empty.astype(np.int8), entry_size=empty, items=(),
        bitmap=build_bitmap(members, bits), bitmap_bits=bits,
    )  # fmt: skip
    queries = np.concatenate([members, rng.integers(0, 2**64, 200_000, dtype=np.uint64), members[:7] + 1])
    assert np.array_equal(index.contains(queries), np.isin(queries, members))
    if count:  # the prefilter rejects most absent hashes (<= ~3% pass at 32 bits per member)
        absent = queries[len(members) : len(members) + 200_000]
        assert _bitmap_test(index.bitmap, bits, absent).mean() < 0.05


def test_load_benchmarks_reads_every_format_and_names_items(tmp_path):
    root = tmp_path / "bench"
    write_json(
        root / "pe" / "handbench_test.json",
        {
            "u1": pe_item("hb-1", LONG_Q, LONG_OPTIONS),
            "u2": {"question": SHORT_Q, "options": {"A": "C", "B": "D"}, "correct_answer": "A"},
        },
    )
    write_json(root / "pe" / "handbench_val.json", {"v": pe_item("hb-val", VAL_Q, LONG_OPTIONS)})
    write_json(
        root / "open" / "open_test.json", {"o1": pe_item("op-1", VAL_Q, None, answer="Xanthine oxidase")}
    )
    medmcqa = {"id": "mm-7", "question": TINY_Q, "opa": "w", "opb": "x", "opc": "y", "opd": "z", "cop": 2}
    (root / "medmcqa").mkdir()
    (root / "medmcqa" / "dev_test.jsonl").write_text(json.dumps(medmcqa) + "\n")
    medqa = {"question": LONG_Q, "options": LONG_OPTIONS, "answer_idx": "A", "answer": "Duloxetine"}
    (root / "medqa").mkdir()
    (root / "medqa" / "us_test.jsonl").write_text("\n" + json.dumps(medqa) + "\n")
    pubmed = {"2151": {"QUESTION": SHORT_Q, "CONTEXTS": ["First.", "Second."], "final_decision": "yes"}}
    write_json(root / "pubmedqa" / "pqal_test.json", pubmed)

    items = load_benchmarks([str(root)])
    assert [(i.benchmark, i.item_id, i.question) for i in items] == [
        ("medmcqa/dev_test", "mm-7", TINY_Q),
        ("medqa/us_test", "2", LONG_Q),  # no id field: the 1-based line number
        ("open/open_test", "op-1", VAL_Q),
        ("pe/handbench_test", "hb-1", LONG_Q),
        ("pe/handbench_test", "u2", SHORT_Q),  # no id field: the object key
        ("pubmedqa/pqal_test", "2151", SHORT_Q),
    ]
    assert items[0].options == [{"letter": k, "text": v} for k, v in zip("ABCD", "wxyz", strict=True)]
    assert items[2].options == []
    assert [o["text"] for o in items[5].options] == ["yes", "no", "maybe"]
    assert items[5].context == "First.\n\nSecond."
    # A file named explicitly is used whatever its name, and named by its stem.
    val = load_benchmarks([str(root / "pe" / "handbench_val.json")])
    assert [(i.benchmark, i.item_id) for i in val] == [("handbench_val", "hb-val")]
    assert len(load_benchmarks([str(root / "pe")], glob="*")) == 3


def test_load_benchmarks_reads_save_to_disk_folders(tmp_path):
    datasets = pytest.importorskip("datasets")
    medqa = {"question": LONG_Q, "options": LONG_OPTIONS, "answer_idx": "A", "answer": "Duloxetine"}
    datasets.Dataset.from_list([medqa, {**medqa, "question": SHORT_Q}]).save_to_disk(tmp_path / "usmle_test")
    splits = {
        "test": datasets.Dataset.from_list([{**medqa, "question": TINY_Q}]),
        "train": datasets.Dataset.from_list([{**medqa, "question": VAL_Q}]),
    }
    datasets.DatasetDict(splits).save_to_disk(tmp_path / "hub" / "medqa")
    items = load_benchmarks([str(tmp_path / "usmle_test"), str(tmp_path / "hub")])
    # A save_to_disk folder is one benchmark named by its folder; only the test split of the dict is read.
    assert [(i.benchmark, i.item_id, i.question) for i in items] == [
        ("usmle_test", "0", LONG_Q),
        ("usmle_test", "1", SHORT_Q),
        ("medqa/test", "0", TINY_Q),
    ]


def test_fingerprint_follows_the_benchmark_bytes(tmp_path):
    path = write_json(tmp_path / "b" / "x_test.json", {"k": pe_item("1", LONG_Q, LONG_OPTIONS)})
    write_json(tmp_path / "b" / "x_val.json", {"k": pe_item("1", SHORT_Q, LONG_OPTIONS)})
    stage = DecontaminateStage(DecontaminateConfig(benchmarks=[str(tmp_path / "b")]))
    before = stage.fingerprint()
    write_json(tmp_path / "b" / "x_val.json", {"k": pe_item("1", VAL_Q, LONG_OPTIONS)})  # not a test file
    assert stage.fingerprint() == before
    write_json(path, {"k": pe_item("1", LONG_Q, LONG_OPTIONS, answer="B")})
    assert stage.fingerprint() != before


def test_load_benchmarks_errors_name_the_file_and_row(tmp_path):
    bad = write_json(tmp_path / "a" / "x_test.json", {"k1": pe_item("1", LONG_Q, LONG_OPTIONS, answer="Z")})
    with pytest.raises(
        InputError, match=r"x_test.json, row k1 \(read as prompt_engine_mcqa\): correct_answer"
    ):
        load_benchmarks([str(bad)])
    write_json(tmp_path / "b" / "y_test.json", {"k": {"text": "no question here"}})
    with pytest.raises(InputError, match=r"y_test.json, row k: cannot tell the benchmark format"):
        load_benchmarks([str(tmp_path / "b")])
    write_json(tmp_path / "c" / "train.json", {"k": pe_item("1", LONG_Q, LONG_OPTIONS)})
    with pytest.raises(InputError, match=r"has no data file whose path matches '\*test\*'"):
        load_benchmarks([str(tmp_path / "c")])
    with pytest.raises(InputError, match="does not exist"):
        load_benchmarks([str(tmp_path / "nowhere")])
    write_json(tmp_path / "d" / "one" / "t_test.json", {"k": pe_item("1", LONG_Q, LONG_OPTIONS)})
    write_json(tmp_path / "d" / "two" / "t_test.json", {"k": pe_item("2", SHORT_Q, LONG_OPTIONS)})
    with pytest.raises(InputError, match="would both be named 't_test'"):
        load_benchmarks([str(tmp_path / "d" / "one"), str(tmp_path / "d" / "two")])
    assert [i.benchmark for i in load_benchmarks([str(tmp_path / "d")])] == ["one/t_test", "two/t_test"]
    with pytest.raises(InputError, match=r"t_test.json, row k \(read as medqa\): answer_idx: required field"):
        load_benchmarks([str(tmp_path / "d")], fmt="medqa")


# -- the stage on hand-made rows -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hand_bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hand-bench")
    write_json(
        root / "handbench" / "handbench_test.json",
        {
            "u1": pe_item("hb-long", LONG_Q, LONG_OPTIONS),
            "u2": pe_item("hb-short", SHORT_Q, {"A": "Vitamin C", "B": "Vitamin D"}),
            "u3": pe_item("hb-tiny", TINY_Q, TINY_OPTIONS),
        },
    )
    # Not a test file: the default glob skips it, so a row holding its question stays.
    write_json(root / "handbench" / "handbench_val.json", {"v": pe_item("hb-val", VAL_Q, LONG_OPTIONS)})
    return root


def hand_rows() -> list[dict]:
    reordered = dict(zip("ABCD", [TINY_OPTIONS[k] for k in "DCBA"], strict=True))
    return [
        mcqa_row(0, LONG_Q, LONG_OPTIONS),  # verbatim leak
        mcqa_row(1, TINY_Q.upper(), reordered),  # leak with options reordered (and case changed)
        chat_row(  # leak with case and punctuation changes, in an assistant turn
            2,
            ("user", "Can you write me a practice question on neuropathic pain?"),
            ("assistant", LONG_Q.upper().replace(",", " ;").replace("-", " ").replace("?", "!!")),
        ),
        chat_row(  # near miss: 12 consecutive words of LONG_Q, then different words
            3,
            ("user", "Note: " + " ".join(words(LONG_Q)[:12]) + " while the rest here is different."),
            ("assistant", "That describes painful diabetic neuropathy."),
        ),
        chat_row(4, ("user", f"Quick quiz: {SHORT_Q} Answer in one word."), ("assistant", "Vitamin C.")),
        chat_row(5, ("user", "What do muscle spindles detect?"), ("assistant", "Muscle stretch, mainly.")),
        chat_row(6, ("user", VAL_Q), ("assistant", "Xanthine oxidase is the enzyme allopurinol inhibits.")),
    ]


def test_stage_drops_leaks_and_keeps_near_misses(ray_session, hand_bench, tmp_path):
    rows = hand_rows()
    src = write_rows(tmp_path / "in", rows)
    stage = DecontaminateStage(DecontaminateConfig(benchmarks=[str(hand_bench)]))
    entry = run_stage_on_files(stage, src, tmp_path / "out", OutputConfig(shard_rows=2))
    assert (entry["rows_in"], entry["rows_out"], entry["dropped"]) == (7, 3, {"benchmark_overlap": 4})
    assert [r["id"] for r in read_kept(tmp_path / "out")] == [rows[i]["id"] for i in (3, 5, 6)]

    q_words = len(words(LONG_Q))
    dropped = read_dropped(tmp_path / "out")
    got = {
        rows.index(next(r for r in rows if r["id"] == i)): (
            d["matched_benchmark"],
            d["matched_id"],
            d["overlap_ngrams"],
            d["overlap_fraction"],
        )
        for i, d in dropped.items()
    }
    assert got == {
        # Every question+options 13-gram: each holds >= 4 question words, and the 8 words of the options
        # ("a duloxetine b tramadol ...") end the text, so windows start at 0 .. q_words - 5.
        0: ("handbench/handbench_test", "hb-long", q_words - 4, 1.0),
        1: ("handbench/handbench_test", "hb-tiny", 1, 1.0),  # its one sorted-options 13-gram
        2: ("handbench/handbench_test", "hb-long", q_words - 13 + 1, 1.0),  # every question 13-gram
        4: ("handbench/handbench_test", "hb-short", 1, 1.0),  # the whole 9-word question
    }
    details = {
        rows.index(next(r for r in rows if r["id"] == i)): d["drop_detail"] for i, d in dropped.items()
    }
    first_13 = " ".join(words(LONG_Q)[:13])
    assert details[0] == (
        f"shares {q_words - 4} of the {q_words - 4} 13-grams of the question+options of "
        f"handbench/handbench_test item hb-long, e.g. {first_13!r}"
    )
    assert details[1].startswith("shares 1 of the 1 13-grams of the question+sorted options of ")
    assert details[2].endswith(f"item hb-long, e.g. {first_13!r}")
    assert details[4] == (
        "contains the question of handbench/handbench_test item hb-short (9 words): "
        "'which vitamin deficiency classically causes bleeding and swollen gums'"
    )
    assert {d["drop_reason"] for d in dropped.values()} == {"benchmark_overlap"}


def test_flag_mode_keeps_rows_and_roles_limit_what_is_checked(ray_session, hand_bench, tmp_path):
    rows = hand_rows()
    src = write_rows(tmp_path / "in", rows)
    config = DecontaminateConfig(benchmarks=[str(hand_bench)], action="flag", roles=("system", "user"))
    entry = run_stage_on_files(DecontaminateStage(config), src, tmp_path / "out")
    assert (entry["rows_out"], entry["dropped"]) == (7, {})
    kept = read_kept(tmp_path / "out")
    assert [r["id"] for r in kept] == [r["id"] for r in rows]
    flags = {i: json.loads(r["meta"]).get("decontam") for i, r in enumerate(kept)}
    # Row 2 leaks only in an assistant turn, which roles=(system, user) does not check.
    assert {i: (f["id"], f["text"]) for i, f in flags.items() if f} == {
        0: ("hb-long", "question+options"),
        1: ("hb-tiny", "question+sorted options"),
        4: ("hb-short", "question"),
    }
    assert flags[4] == {
        "benchmark": "handbench/handbench_test",
        "id": "hb-short",
        "text": "question",
        "overlap_ngrams": 1,
        "overlap_fraction": 1.0,
        "ngram": 13,
        "example": "which vitamin deficiency classically causes bleeding and swollen gums",
    }
    assert json.loads(kept[4]["meta"])["n"] == 4  # the row's own meta is kept


def test_preference_rows_are_checked_whole(ray_session, hand_bench, tmp_path):
    def pair(n: int, prompt: str, chosen: str, rejected: str) -> dict:
        content = {"prompt": [{"role": "user", "content": prompt}], "chosen": chosen, "rejected": rejected}
        return {"id": record_id("preference", "h", content, str(n)), "source": "h", **content, "meta": "{}"}

    rows = [
        pair(0, LONG_Q, "Duloxetine, an SNRI.", "Morphine."),
        pair(1, "Give me a hard question.", "Sure.", f"Here is one: {SHORT_Q}"),
        pair(2, "Explain gout.", "Uric acid crystals deposit in joints.", "Gout is an infection."),
    ]
    src = write_rows(tmp_path / "in", rows, kind="preference")
    stage = DecontaminateStage(DecontaminateConfig(benchmarks=[str(hand_bench)]))
    entry = run_stage_on_files(stage, src, tmp_path / "out")
    assert (entry["rows_out"], entry["dropped"]) == (1, {"benchmark_overlap": 2})
    dropped = read_dropped(tmp_path / "out")
    assert {d["matched_id"] for d in dropped.values()} == {"hb-long", "hb-short"}


def test_thresholds_on_count_and_fraction(hand_bench):
    items = load_benchmarks([str(hand_bench)])
    index = build_index(items)
    half = " ".join(words(LONG_Q)[:20])  # the first 20 words: 8 of the question's 13-grams
    texts = [[half], [SHORT_Q], [LONG_Q]]
    total = len(words(LONG_Q)) - 12
    at = {
        (k, f): [
            m and (items[index.entry_item[m.entry]].item_id, m.overlap)
            for m in match_rows(index, texts, k, f)
        ]
        for k, f in [(1, 0.0), (8, 0.0), (9, 0.0), (1, 8 / total), (1, 8 / total + 1e-9)]
    }
    assert at[1, 0.0] == [("hb-long", 8), ("hb-short", 1), ("hb-long", total)]
    assert at[8, 0.0] == [("hb-long", 8), None, ("hb-long", total)]
    assert at[9, 0.0] == [None, None, ("hb-long", total)]
    assert at[1, 8 / total] == [("hb-long", 8), ("hb-short", 1), ("hb-long", total)]
    assert at[1, 8 / total + 1e-9] == [None, ("hb-short", 1), ("hb-long", total)]


# -- brute-force oracle --------------------------------------------------------------------------------

VOCAB = [f"w{i}" for i in range(30)]


def random_benchmark(rng: random.Random, root: Path) -> list[BenchmarkItem]:
    """60 MCQA items (alpha_test.json) and 20 open items (beta_test.json) of random vocabulary words."""
    items: list[BenchmarkItem] = []
    files: dict[str, dict] = {"alpha_test": {}, "beta_test": {}}
    for i in range(80):
        name = "alpha_test" if i < 60 else "beta_test"
        question = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(2, 24)))
        options = (
            {
                L: " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 3)))
                for L in "ABCD"[: rng.randint(2, 4)]
            }
            if name == "alpha_test"
            else None
        )
        files[name][f"k{i}"] = pe_item(f"{name}-{i}", question, options, answer="A" if options else "w0")
        opts = [{"letter": k, "text": v} for k, v in (options or {}).items()]
        items.append(BenchmarkItem(name, f"{name}-{i}", question, opts))
    for name, records in files.items():
        write_json(root / f"{name}.json", records)
    return items


def random_piece(rng: random.Random, items: list[BenchmarkItem]) -> str:
    """Random words around a random slice (1-25 words, case changed) of a random item's shown text."""
    item = rng.choice(items)
    shown = item.question + "".join(f"\n{o['letter']}. {o['text']}" for o in item.options)
    toks = words(shown)
    start = rng.randrange(len(toks))
    piece = toks[start : start + rng.randint(1, 25)]
    noise = lambda: [rng.choice(VOCAB) for _ in range(rng.randint(0, 6))]  # noqa: E731
    text = " ".join(noise() + piece + noise())
    return text.upper() if rng.random() < 0.3 else text


def random_rows(rng: random.Random, items: list[BenchmarkItem], count: int) -> list[dict]:
    rows = []
    mcqa_items = [it for it in items if it.options]
    for n in range(count):
        if rng.random() < 0.3:
            item = rng.choice(mcqa_items)
            texts = [o["text"] for o in item.options]
            rng.shuffle(texts)
            q = words(item.question)
            if rng.random() < 0.5 and len(q) > 1:  # drop one question word: a near miss
                del q[rng.randrange(len(q))]
            rows.append(mcqa_row(n, " ".join(q), dict(zip("ABCD", texts, strict=False))))
        else:
            turns = [
                (rng.choice(["user", "assistant"]), random_piece(rng, items))
                for _ in range(rng.randint(0, 3))
            ]
            rows.append(chat_row(n, *turns, ("assistant", "ok")))
    return rows


# ASCII word and non-word characters (including the \x1c-\x1f that str.split treats as whitespace) and
# non-ASCII ones that NFKC, case folding or Unicode \w treat specially: ligature, no-break space,
# Roman numeral, Arabic-Indic digit, titlecase digraph, degree sign, accented letter, sharp s.
CHARS = [
    "a",
    "B",
    "Q",
    "q",
    " ",
    "\n",
    "_",
    "1",
    "-",
    "\x1c",
    "\x1f",
    "é",
    "°",
    "\u00a0",
    "ﬁ",
    "Ⅻ",
    "٣",
    "ǅ",
    "ß",
]


def test_words_of_strings_equals_words_per_text():
    """Batches mixing texts the kernel normalises with those it leaves to Python, empty texts and
    texts of punctuation only (no words), in any order."""
    rng = random.Random(0)
    for _ in range(3000):
        texts = [
            "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(0, 6))
        ]
        tokens, counts = words_of_strings(pa.array(texts, pa.string()))
        expected = [words(t) for t in texts]
        assert tokens.to_pylist() == [w for e in expected for w in e], texts
        assert counts.tolist() == [len(e) for e in expected], texts


def edge_rows(rng: random.Random, count: int) -> list[dict]:
    """sft rows with what row_texts skips (no messages, empty and null contents, other roles, no mcqa
    item, an empty question, no options) and texts the normaliser sends to Python; not valid records,
    so the table is built without validation."""
    rows = []
    for n in range(count):
        turns = [
            (
                rng.choice(["system", "user", "assistant"]),
                rng.choice(["", "Ｆｕｌｌ ﬁt", "a b", "Q  q!", "é°"]),
            )
            for _ in range(rng.randint(0, 3))
        ]
        row = chat_row(n, *turns)
        if rng.random() < 0.5:
            options = {k: rng.choice(["Zed", "alpha", "", "ǅx"]) for k in "ABCD"[: rng.randint(0, 4)]}
            item = {
                "question": rng.choice(["", "Why, then?", "ⅫB"]),
                "options": [{"letter": k, "text": v} for k, v in options.items()],
                "answer": "A",
                "context": None,
                "explanation": None,
            }
            row = {**row, "mcqa": item}
        rows.append(row)
    return rows


@pytest.mark.parametrize("roles", [("system", "user", "assistant"), ("user",), ("assistant", "system")])
def test_batch_texts_equal_row_texts_per_row(roles):
    """The Arrow path gives every row's texts in the definition's order, skipping rows dropped upstream;
    batches with a null the definition raises on take the definition itself."""
    rng = random.Random(str(roles))
    rows = edge_rows(rng, 300)
    table = pa.Table.from_pylist(rows, schema=schema_for("sft"))
    dropped = [rng.choice([None, None, "clean"]) for _ in rows]
    table = table.append_column(DROP_REASON, pa.array(dropped, pa.string()))
    for start, size in [(0, 300), (17, 120), (299, 1)]:  # slices start mid-array
        batch = table.slice(start, size)
        texts, text_row = batch_texts(batch, "sft", roles)
        expected = [
            row_texts(row, "sft", roles) if old is None else []
            for row, old in zip(rows[start : start + size], dropped[start : start + size], strict=True)
        ]
        assert texts.to_pylist() == [t for e in expected for t in e]
        assert text_row.tolist() == [r for r, e in enumerate(expected) for _ in e]

    pairs = [
        {"prompt": [{"role": "user", "content": p}], "chosen": c, "rejected": r}
        for p, c, r in [("Why?", "Because.", ""), ("", "x", "y"), ("Hm", "", "No")]
    ]
    prefs = pa.Table.from_pylist(
        [{"id": str(i), "source": "h", **p, "meta": "{}"} for i, p in enumerate(pairs)],
        schema=schema_for("preference"),
    )
    texts, text_row = batch_texts(prefs, "preference", roles)
    expected = [row_texts(p, "preference", roles) for p in pairs]
    assert texts.to_pylist() == [t for e in expected for t in e]
    assert text_row.tolist() == [r for r, e in enumerate(expected) for _ in e]


def test_batch_texts_raise_as_the_definition_does_on_a_null_option_text():
    row = mcqa_row(0, "Which one?", {"A": "x", "B": "y"})
    row["mcqa"]["options"][1]["text"] = None
    table = pa.Table.from_pylist([row], schema=schema_for("sft"))
    with pytest.raises(TypeError):
        row_texts(row, "sft", ("user",))
    with pytest.raises(TypeError):
        batch_texts(table, "sft", ("user",))


@pytest.mark.parametrize(
    ("n", "min_short", "min_overlap", "min_fraction"),
    [(13, 8, 1, 0.0), (5, 3, 2, 0.3), (4, 1, 1, 0.5), (6, 6, 3, 0.0)],
)
def test_match_rows_equals_brute_force_oracle(tmp_path, n, min_short, min_overlap, min_fraction):
    rng = random.Random(f"{n}-{min_short}")
    items = random_benchmark(rng, tmp_path)
    assert load_benchmarks([str(tmp_path)]) == items
    rows = random_rows(rng, items, 400)
    index = build_index(items, n, min_short)
    entries = oracle_entries(items, n, min_short)
    assert len(index.entry_size) == len(entries)
    texts = [row_texts(r, "sft", ("system", "user", "assistant")) for r in rows]
    assert texts == [oracle_row_texts(r) for r in rows]
    got = []
    for m in match_rows(index, texts, min_overlap, min_fraction):
        if m is None:
            got.append(None)
            continue
        item = items[index.entry_item[m.entry]]
        variant = ("question", "question+options", "question+sorted options")[index.entry_variant[m.entry]]
        got.append((item.benchmark, item.item_id, variant, m.overlap))
    expected = [oracle_match(t, entries, items, min_overlap, min_fraction) for t in texts]
    assert got == expected
    matched = sum(e is not None for e in expected)
    assert 40 < matched < 360, f"the random rows should mix matches and misses, got {matched} of 400"


def test_stage_equals_brute_force_oracle_on_ray(ray_session, tmp_path):
    rng = random.Random("stage")
    items = random_benchmark(rng, tmp_path / "bench")
    rows = random_rows(rng, items, 300)
    src = write_rows(tmp_path / "in", rows)
    config = DecontaminateConfig(benchmarks=[str(tmp_path / "bench")], ngram=6, min_short_words=4)
    entry = run_stage_on_files(DecontaminateStage(config), src, tmp_path / "out", OutputConfig(shard_rows=50))
    entries = oracle_entries(items, 6, 4)
    expected = {r["id"]: oracle_match(oracle_row_texts(r), entries, items) for r in rows}
    dropped = read_dropped(tmp_path / "out")
    assert {
        i: (d["matched_benchmark"], d["matched_id"], d["overlap_ngrams"]) for i, d in dropped.items()
    } == {i: e[:2] + e[3:] for i, e in expected.items() if e is not None}
    assert [r["id"] for r in read_kept(tmp_path / "out")] == [
        r["id"] for r in rows if expected[r["id"]] is None
    ]
    assert entry["dropped"] == {"benchmark_overlap": len(dropped)} and 30 < len(dropped) < 270


# -- the embedded corpus -------------------------------------------------------------------------------


def ingest(out: Path, sources: list[dict]) -> Path:
    """Read sources into record shards with the pipeline's own ingest (no stages); returns its folder."""
    config = validate_config(PipelineConfig, {"kind": "sft", "sources": sources, "report": False}, "test")
    run_pipeline(config, out)
    return out / "01-ingest"


def test_sample_corpus_planted_leaks_are_exactly_dropped(ray_session, tmp_path):
    from aloe_fixtures import corpus
    from aloe_fixtures.demo import SAMPLE_SFT_SOURCES, sample_pipeline

    corpus.write_sample(tmp_path / "sample", rows=1500, seed=6)  # a seed whose leaks show all 4 variants
    truth = json.loads((tmp_path / "sample" / "ground_truth.json").read_text())
    planted = {
        (d["file"], str(d["row"])): (d["benchmark_file"], d["benchmark_id"])
        for d in truth["defects"]
        if d["kind"] == "benchmark_leak"
    }
    assert len(planted) >= 10 and {v for v, _ in planted.values()} == {"benchmarks/aloebench_test.json"}
    ingested = ingest(tmp_path / "run", sample_pipeline(tmp_path / "sample", stages=[])["sources"])
    # The whole sample folder: only benchmarks/aloebench_test.json matches the default *test* glob.
    stage = DecontaminateStage(DecontaminateConfig(benchmarks=[str(tmp_path / "sample")]))
    entry = run_stage_on_files(stage, ingested, tmp_path / "out")
    prefix = {name: str(Path(path).parent) for name, path, _ in SAMPLE_SFT_SOURCES}
    caught = {}
    for row in read_dropped(tmp_path / "out").values():
        meta = json.loads(row["meta"])
        caught[f"{prefix[row['source']]}/{meta['file']}", str(meta["row"])] = (
            row["matched_benchmark"] + ".json",
            row["matched_id"],
        )
    assert caught == planted
    assert entry["dropped"] == {"benchmark_overlap": len(planted)}
    variants = {
        (d["variant"], d["options_reordered"]) for d in truth["defects"] if d["kind"] == "benchmark_leak"
    }
    assert len(variants) == 4  # verbatim / case-and-space changes, options in order / reordered: all caught


# -- the real medical test sets ------------------------------------------------------------------------


def test_medqa_test_rows_are_all_caught_as_themselves(ray_session, shared_mcqa, tmp_path):
    source = {"name": "medqa", "format": "prompt_engine_mcqa", "path": str(shared_mcqa / "medqa_4opt")}
    ingested = ingest(
        tmp_path / "run", [{**source, "path": str(shared_mcqa / "medqa_4opt/medqa_4opt_test.json")}]
    )
    stage = DecontaminateStage(DecontaminateConfig(benchmarks=[str(shared_mcqa / "medqa_4opt")]))
    entry = run_stage_on_files(stage, ingested, tmp_path / "out")
    assert (entry["rows_in"], entry["rows_out"], entry["dropped"]) == (1273, 0, {"benchmark_overlap": 1273})
    dropped = read_dropped(tmp_path / "out").values()
    assert {r["matched_benchmark"] for r in dropped} == {"medqa_4opt_test"}
    assert all(r["matched_id"] == json.loads(r["meta"])["original_id"] for r in dropped)
    assert all(r["overlap_fraction"] == 1.0 for r in dropped)


# The 12 rows of medmcqa_val.json (rows of MedMCQA's train split) that the default rule (13-grams, one
# shared n-gram) finds in medmcqa_test.json (MedMCQA's validation split): measured with this stage, then
# each pair read by eye (question, options and correct answer of both sides) on 2026-11-21:
# * 8 are the same question with the same answer, re-typed or reworded in the other split;
# * 3 are siblings: the same stem and option list asking an adjacent fact, with a different answer
#   (WHO insecticide colour for "highly" vs "extremely" toxic; branch of which artery; helminth ovum);
# * 1 is a false positive: a training vignette ending in "Which of the following is a false statement?",
#   which is the whole (8-word) text of test question validation_2513.
MEDMCQA_TRAIN_TEST_OVERLAPS = {
    "medmcqa_train_18313": "medmcqa_validation_1747",  # sibling: WHO insecticide colour codes
    "medmcqa_train_149962": "medmcqa_validation_2105",  # P. falciparum schizonts not in peripheral smear
    "medmcqa_train_35760": "medmcqa_validation_1565",  # ceftriaxone 180 mg syringe divisions
    "medmcqa_train_126529": "medmcqa_validation_1980",  # "All (of the following) are true about Ifosfamide"
    "medmcqa_train_138849": "medmcqa_validation_3054",  # GALT located in lamina propria
    "medmcqa_train_50865": "medmcqa_validation_414",  # etching porcelain with HF, options reordered
    "medmcqa_train_80987": "medmcqa_validation_2818",  # sibling: branch of which artery, options reordered
    "medmcqa_train_103395": "medmcqa_validation_4010",  # sibling: helminth ovum, one option changed
    "medmcqa_train_180583": "medmcqa_validation_1639",  # Gaucher "crumpled tissue paper" vignette
    "medmcqa_train_145632": "medmcqa_validation_4080",  # starry-sky lymphoma in a 10-year-old boy
    "medmcqa_train_155594": "medmcqa_validation_2513",  # false positive (generic stem, see above)
    "medmcqa_train_30288": "medmcqa_validation_1539",  # "Muscle spindle is", same options
}


def test_medmcqa_train_rows_against_the_medmcqa_test_set(ray_session, shared_mcqa, tmp_path):
    path = str(shared_mcqa / "medmcqa/medmcqa_val.json")
    ingested = ingest(tmp_path / "run", [{"name": "medmcqa", "format": "prompt_engine_mcqa", "path": path}])
    stage = DecontaminateStage(DecontaminateConfig(benchmarks=[str(shared_mcqa / "medmcqa")]))
    entry = run_stage_on_files(stage, ingested, tmp_path / "out")
    assert (entry["rows_in"], entry["dropped"]) == (10_000, {"benchmark_overlap": 12})
    found = {
        json.loads(r["meta"])["original_id"]: r["matched_id"] for r in read_dropped(tmp_path / "out").values()
    }
    assert found == MEDMCQA_TRAIN_TEST_OVERLAPS


def test_contexts_are_matched_only_when_asked():
    context = (
        "Dyschesia can be provoked by inappropriate defecation movements and the aim of this prospective "
        "study was to demonstrate dysfunction of the anal sphincter in such patients."
    )
    item = BenchmarkItem("pqa_test", "p1", "Is anorectal endosonography valuable in dyschesia?", [], context)
    row = [[f"Abstract: {context} Summarise it."]]
    assert match_rows(build_index([item]), row) == [None]
    index = build_index([item], with_context=True)
    (match,) = match_rows(index, row)
    assert (index.entry_variant[match.entry], match.overlap, match.fraction) == (
        3,
        len(words(context)) - 12,
        1.0,
    )


def test_index_from_the_derived_cache_equals_a_fresh_build(hand_bench, tmp_path, monkeypatch):
    """The driver's index comes from the derived cache on the next run; a changed test file (same
    path) or setting builds and stores another."""
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    bench = tmp_path / "bench"
    shutil.copytree(hand_bench, bench)
    config = DecontaminateConfig(benchmarks=[str(bench)])

    def entries():
        return sorted(p.name for p in (tmp_path / "cache" / "derived").glob("decontaminate-index-*"))

    def assert_same(got, built):
        for name in built.__dataclass_fields__:
            want, have = getattr(built, name), getattr(got, name)
            assert np.array_equal(have, want) if isinstance(want, np.ndarray) else have == want, name

    first = DecontaminateStage(config).load_index()  # builds and stores
    assert len(entries()) == 1
    again = DecontaminateStage(config).load_index()  # reads back
    built = DecontaminateStage(config)._build_index()
    assert_same(first, built)
    assert_same(again, built)
    assert [i for _, i in again.items] == ["hb-long", "hb-short", "hb-tiny"]

    test_file = bench / "handbench" / "handbench_test.json"
    test_file.write_text(test_file.read_text().replace("Vitamin C", "Vitamin K"))
    changed = DecontaminateStage(config).load_index()
    assert len(entries()) == 2
    assert_same(changed, DecontaminateStage(config)._build_index())
    DecontaminateStage(config.model_copy(update={"ngram": 8})).load_index()
    assert len(entries()) == 3
