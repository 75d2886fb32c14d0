"""The embedded corpus: determinism, planted defects match the ground truth, clean rows are clean.

One corpus of 3000 rows is written per test module; oracles are computed independently here (brute-force
Jaccard over candidate pairs, 13-gram sets, lingua, regular expressions) rather than with the generator's
own guard.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from aloe_core.text import jaccard, normalize_for_matching, word_ngrams
from aloe_fixtures.corpus import (
    BENCHMARK_FILE,
    FILE_SHARES,
    KINDS,
    DefectRates,
    expected_count,
    record_full_text,
    record_matching_text,
    tokenizer_training_texts,
    write_sample,
)
from aloe_fixtures.corpus.defects import ELIGIBLE, MCQA_FILES
from aloe_fixtures.corpus.facts import fact_count

ROWS = 3000
SEED = 7
JSON_FILES = ("prompt_engine/sample_mcqa.json", "pubmedqa/ori_pqal.json")
# Phone-number shapes (optional +country code, optional bracketed area code, then groups of digits joined by
# single separators) with at least seven digits; lab ranges ("135-145") and decimals ("7.35") do not qualify.
PHONE_LIKE = re.compile(
    r"(?<![\w.,])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?"  # optional country code, bracketed area code
    r"\d{2,4}(?:[.-]\d{2,4}|[ ]\d{3,4}){1,3}(?![\w]|[.,]\d)"  # digit groups joined by single separators
)


def looks_like_phone(text: str) -> bool:
    return any(sum(c.isdigit() for c in m.group()) >= 7 for m in PHONE_LIKE.finditer(text))


def load(out: Path, path: str) -> dict[Any, Any]:
    """{locator: record or None} in file order; None marks a line that is not a JSON object."""
    if path in JSON_FILES:
        return json.loads((out / path).read_text(encoding="utf-8"))
    rows: dict[Any, Any] = {}
    for i, line in enumerate((out / path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = None
        rows[i] = value if isinstance(value, dict) else None
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("corpus")
    started = time.perf_counter()
    summary = write_sample(out, rows=ROWS, seed=SEED)
    seconds = time.perf_counter() - started
    truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    files = {path: load(out, path) for path in FILE_SHARES}
    planted = {(d["file"], d["row"]): d for d in truth["defects"]}
    return {
        "out": out,
        "summary": summary,
        "truth": truth,
        "files": files,
        "planted": planted,
        "seconds": seconds,
    }


def clean_records(corpus) -> list[tuple[str, Any, dict[str, Any]]]:
    return [
        (path, loc, rec)
        for path, rows in corpus["files"].items()
        for loc, rec in rows.items()
        if (path, loc) not in corpus["planted"]
    ]


def test_tokenizer_texts_are_deterministic_fast_and_clean():
    tokenizer_training_texts(seed=1, rows=50)  # warm imports
    started = time.process_time()  # CPU time: the test machine's other jobs must not fail this test
    texts = tokenizer_training_texts(seed=3)
    seconds = time.process_time() - started
    assert len(texts) == 3000 and texts == tokenizer_training_texts(seed=3)
    assert texts != tokenizer_training_texts(seed=4)
    assert seconds < 2.0, f"tokenizer texts took {seconds:.2f}s of CPU (budget 2s)"
    assert all(len(t) >= 40 and "@" not in t and "http" not in t and "www." not in t for t in texts)
    assert not any(looks_like_phone(t) for t in texts)


def test_same_inputs_give_identical_bytes(corpus, tmp_path):
    again = write_sample(tmp_path, rows=ROWS, seed=SEED)
    assert again == corpus["summary"]
    names = sorted(p.relative_to(corpus["out"]) for p in corpus["out"].rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for name in names:
        assert (corpus["out"] / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_counts_follow_the_rates(corpus):
    truth, rates = corpus["truth"], DefectRates()
    assert truth["rates"] == rates.as_dict()
    assert truth["counts"] == {k: expected_count(getattr(rates, k), ROWS) for k in KINDS}
    assert truth["counts"]["exact_duplicate"] == 90 and truth["counts"]["too_long"] == 6
    found = {k: 0 for k in KINDS}
    for d in truth["defects"]:
        found[d["kind"]] += 1
    assert found == truth["counts"]
    assert sum(truth["files"].values()) == ROWS
    assert {p: len(rows) for p, rows in corpus["files"].items()} == truth["files"]
    assert corpus["summary"]["clean"] == ROWS - sum(truth["counts"].values())
    assert len(corpus["planted"]) == len(truth["defects"])  # one defect per planted row


def test_defects_only_where_they_make_sense(corpus):
    by_kind: dict[str, set[str]] = {}
    for d in corpus["truth"]["defects"]:
        by_kind.setdefault(d["kind"], set()).add(d["file"])
    assert by_kind["benchmark_leak"] <= set(MCQA_FILES)
    assert by_kind["malformed"] <= {p for p in FILE_SHARES if p.endswith(".jsonl")}
    assert by_kind["empty_answer"] <= {"chat/openai.jsonl", "chat/sharegpt.jsonl"}
    assert "pubmedqa/ori_pqal.json" not in by_kind["near_duplicate"]
    for kind, files in by_kind.items():
        assert files <= set(ELIGIBLE[kind]), kind
    assert len(by_kind["non_english"]) == len(FILE_SHARES)  # every file carries some
    assert {d["lang"] for d in corpus["truth"]["defects"] if d["kind"] == "non_english"} == {
        "es",
        "fr",
        "de",
        "it",
        "pt",
    }


def test_fact_table_is_a_few_hundred_facts():
    assert 400 <= fact_count() <= 2000


def test_small_corpora_spread_their_defects(tmp_path):
    """The demo's minimum size: every kind still fits, each file keeps a majority of clean rows."""
    summary = write_sample(tmp_path, rows=100, seed=1)
    truth = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    assert (
        sum(summary["files"].values()) == 100
        and len(truth["defects"]) == sum(summary["counts"].values()) == 16
    )
    per_file: dict[str, int] = {}
    for d in truth["defects"]:
        per_file[d["file"]] = per_file.get(d["file"], 0) + 1
    assert all(2 * n <= summary["files"][f] for f, n in per_file.items())


def test_rates_are_validated():
    with pytest.raises(ValueError, match="exact_duplicate"):
        DefectRates(exact_duplicate=1.5)
    with pytest.raises(ValueError, match=r"at most 0\.5"):
        DefectRates(near_duplicate=0.3, exact_duplicate=0.3)
    with pytest.raises(ValueError, match="rows must be at least 1"):
        write_sample(Path("unused"), rows=0)


REQUIRED = {
    "prompt_engine/sample_mcqa.json": {"id": str, "question": str, "options": dict, "correct_answer": str},
    "medmcqa/train.jsonl": {
        "id": str,
        "question": str,
        "opa": str,
        "opb": str,
        "opc": str,
        "opd": str,
        "cop": int,
        "choice_type": str,
        "exp": str,
        "subject_name": str,
        "topic_name": str,
    },
    "medqa/train.jsonl": {
        "question": str,
        "answer": str,
        "options": dict,
        "meta_info": str,
        "answer_idx": str,
    },
    "pubmedqa/ori_pqal.json": {
        "QUESTION": str,
        "CONTEXTS": list,
        "LABELS": list,
        "MESHES": list,
        "final_decision": str,
        "LONG_ANSWER": str,
    },
    "chat/openai.jsonl": {"messages": list},
    "chat/sharegpt.jsonl": {"conversations": list},
    "chat/alpaca.jsonl": {"instruction": str, "input": str, "output": str},
    "preference/pairs.jsonl": {"prompt": str, "chosen": str, "rejected": str},
}


def _format_problems(path: str, rec: dict[str, Any]) -> list[str]:
    problems = [
        f"{k} missing or not {t.__name__}" for k, t in REQUIRED[path].items() if not isinstance(rec.get(k), t)
    ]
    if problems:
        return problems
    if path == "medmcqa/train.jsonl" and rec["cop"] not in range(4):
        problems.append("cop out of range")
    if "options" in rec and (rec.get("answer_idx", rec.get("correct_answer")) not in rec["options"]):
        problems.append("answer letter not among options")
    if path == "medqa/train.jsonl" and not problems and rec["options"][rec["answer_idx"]] != rec["answer"]:
        problems.append("answer text differs from the option named by answer_idx")
    if path == "pubmedqa/ori_pqal.json" and rec["final_decision"] not in ("yes", "no", "maybe"):
        problems.append("bad final_decision")
    if path == "chat/openai.jsonl" and rec["messages"][-1]["role"] != "assistant":
        problems.append("last message is not the assistant's")
    if path == "chat/sharegpt.jsonl" and any(
        t["from"] not in ("system", "human", "gpt") for t in rec["conversations"]
    ):
        problems.append("unknown speaker")
    return problems


def test_every_row_parses_in_its_format_except_planted_malformed_ones(corpus):
    for path, rows in corpus["files"].items():
        for loc, rec in rows.items():
            planted = corpus["planted"].get((path, loc))
            if planted and planted["kind"] == "malformed":
                assert path.endswith(".jsonl")
                if planted["reason"] == "truncated_json":
                    assert rec is None, (path, loc)
                else:
                    assert rec is not None and _format_problems(path, rec), (path, loc, planted["reason"])
                continue
            assert rec is not None, (path, loc)
            assert not _format_problems(path, rec), (path, loc, _format_problems(path, rec))
    bench = json.loads((corpus["out"] / BENCHMARK_FILE).read_text(encoding="utf-8"))
    assert len(bench) == max(50, round(0.02 * ROWS)) == corpus["truth"]["benchmark"]["items"]
    for uid, item in bench.items():
        assert (
            item["id"] == uid and item["correct_answer"] in item["options"] and len(item["options"]) in (4, 5)
        )
        assert len(item["question"].split()) >= 13


def _record(corpus, path, loc):
    return corpus["files"][path][loc]


def _check_duplicate(corpus, d):
    mine, theirs = _record(corpus, d["file"], d["row"]), _record(corpus, d["of"]["file"], d["of"]["row"])
    assert d["of"]["file"] == d["file"] and (d["of"]["file"], d["of"]["row"]) not in corpus["planted"]
    order = list(corpus["files"][d["file"]])
    assert order.index(d["of"]["row"]) < order.index(d["row"]), "a duplicate must come after its original"
    a, b = (record_matching_text(d["file"], r) for r in (mine, theirs))
    if d["kind"] == "exact_duplicate":
        assert normalize_for_matching(a) == normalize_for_matching(b)
        if "options" in mine:
            assert sorted(mine["options"].values()) == sorted(theirs["options"].values())
        assert (mine == theirs) == (d["variant"] == "verbatim" and "id" not in mine)
        for key in ("id",):
            if key in mine:
                assert mine[key] != theirs[key]
    else:
        score = jaccard(word_ngrams(a, 5), word_ngrams(b, 5))
        assert score == d["jaccard"] and 0.85 <= score <= 0.97, d
        assert normalize_for_matching(a) != normalize_for_matching(b)


def _answers(path: str, rec: dict[str, Any]) -> list[str]:
    if path == "preference/pairs.jsonl":
        return [rec["chosen"]]
    if path == "chat/alpaca.jsonl":
        return [rec["output"]]
    turns = rec["messages"] if "messages" in rec else rec["conversations"]
    return [
        t.get("content", t.get("value"))
        for t in turns
        if t.get("role", t.get("from")) in ("assistant", "gpt")
    ]


def _questions(path: str, rec: dict[str, Any]) -> list[str]:
    if path == "preference/pairs.jsonl":
        return [rec["prompt"]]
    if path == "chat/alpaca.jsonl":
        return [rec["instruction"] + (f"\n\n{rec['input']}" if rec["input"] else "")]
    turns = rec["messages"] if "messages" in rec else rec["conversations"]
    return [
        t.get("content", t.get("value")) for t in turns if t.get("role", t.get("from")) in ("user", "human")
    ]


def test_each_planted_row_shows_its_defect(corpus):
    bench = json.loads((corpus["out"] / BENCHMARK_FILE).read_text(encoding="utf-8"))
    for d in corpus["truth"]["defects"]:
        path, rec, kind = d["file"], _record(corpus, d["file"], d["row"]), d["kind"]
        if kind in ("exact_duplicate", "near_duplicate"):
            _check_duplicate(corpus, d)
        elif kind == "benchmark_leak":
            item = bench[d["benchmark_id"]]
            assert normalize_for_matching(rec["question"]) == normalize_for_matching(item["question"])
            assert record_matching_text(path, rec) == record_matching_text(BENCHMARK_FILE, item)
        elif kind.startswith("pii_"):
            assert d["value"] in record_full_text(path, rec)
            assert {"pii_email": "@", "pii_url": "http" if "http" in d["value"] else "www."}.get(
                kind, ""
            ) in d["value"]
        elif kind == "empty_answer":
            assert _answers(path, rec)[-1].strip() == ""
        elif kind == "short_answer":
            assert 1 <= len("".join(_answers(path, rec)[-1].split())) <= 2
        elif kind == "answer_repeats_question":
            assert normalize_for_matching(_answers(path, rec)[-1]) == normalize_for_matching(
                _questions(path, rec)[-1]
            )
        elif kind == "too_long":
            assert len(record_full_text(path, rec)) > 30_000
        elif kind == "malformed":
            assert d["reason"]
        else:
            assert kind == "non_english" and d["lang"] in ("es", "fr", "de", "it", "pt")


def _shingle_matrix(texts: list[str]):
    """Sparse rows x shingles incidence matrix (torch), plus each row's shingle count."""
    import torch

    vocab: dict[str, int] = {}
    rows, cols = [], []
    sizes = []
    for i, text in enumerate(texts):
        grams = word_ngrams(text, 5)
        sizes.append(len(grams))
        for g in grams:
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    index = torch.tensor([rows, cols])
    shape = (len(texts), len(vocab))
    matrix = torch.sparse_coo_tensor(index, torch.ones(len(rows)), shape, check_invariants=True).coalesce()
    return matrix, torch.tensor(sizes, dtype=torch.float32)


def test_clean_rows_are_pairwise_distinct(corpus):
    """Brute force over every pair sharing a 5-gram (exact intersection counts from a sparse product)."""
    import torch

    records = clean_records(corpus)
    texts = [record_matching_text(path, rec) for path, _, rec in records]
    normalised = [normalize_for_matching(t) for t in texts]
    assert len(set(normalised)) == len(normalised), "two clean rows are exact duplicates"
    matrix, sizes = _shingle_matrix(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch flags sparse products as beta
        inter = torch.sparse.mm(matrix, matrix.t()).to_dense()
    union = sizes[:, None] + sizes[None, :] - inter
    scores = (inter / union).fill_diagonal_(0)
    worst = float(scores.max())
    i, j = divmod(int(scores.argmax()), len(texts))
    assert worst < 0.5, (worst, texts[i][:300], texts[j][:300])
    assert len(texts) >= 2500


def test_training_rows_share_no_13_gram_with_the_benchmark(corpus):
    bench = json.loads((corpus["out"] / BENCHMARK_FILE).read_text(encoding="utf-8"))
    bench_grams: set[str] = set()
    for item in bench.values():
        bench_grams |= word_ngrams("\n".join([item["question"], *item["options"].values()]), 13)
    checked = 0
    for path, rows in corpus["files"].items():
        for loc, rec in rows.items():
            planted = corpus["planted"].get((path, loc))
            if rec is None or (planted and planted["kind"] in ("benchmark_leak", "malformed")):
                continue
            assert not word_ngrams(record_full_text(path, rec), 13) & bench_grams, (path, loc)
            checked += 1
    assert checked > 2800
    leaks = [d for d in corpus["truth"]["defects"] if d["kind"] == "benchmark_leak"]
    assert all(
        word_ngrams(record_full_text(d["file"], _record(corpus, d["file"], d["row"])), 13) & bench_grams
        for d in leaks
    )


def test_clean_rows_have_no_pii_and_sane_lengths(corpus):
    for path, loc, rec in clean_records(corpus):
        text = record_full_text(path, rec)
        assert "@" not in text and "http" not in text.lower() and "www." not in text.lower(), (path, loc)
        assert not looks_like_phone(text), (path, loc, PHONE_LIKE.findall(text))
        assert len(text) < 6000, (path, loc, len(text))
        if path in REQUIRED and path.startswith(("chat/", "preference/")):
            assert all(len(a) >= 20 for a in _answers(path, rec)), (path, loc)
            assert all(30 <= len(a) <= 1500 for a in _answers(path, rec)), (path, loc)
    pii = [d for d in corpus["truth"]["defects"] if d["kind"] == "pii_phone"]
    assert all(looks_like_phone(d["value"]) for d in pii)


@pytest.fixture(scope="module")
def detector():
    from lingua import Language, LanguageDetectorBuilder

    languages = [
        Language.ENGLISH,
        Language.SPANISH,
        Language.FRENCH,
        Language.GERMAN,
        Language.ITALIAN,
        Language.PORTUGUESE,
    ]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def test_language_of_rows(corpus, detector):
    non_english = [d for d in corpus["truth"]["defects"] if d["kind"] == "non_english"]
    texts = [record_full_text(d["file"], _record(corpus, d["file"], d["row"])) for d in non_english]
    found = [lang.iso_code_639_1.name.lower() for lang in detector.detect_languages_in_parallel_of(texts)]
    assert found == [d["lang"] for d in non_english]
    assert all(len(t.split()) >= 15 for t in texts)
    clean = clean_records(corpus)
    texts = [record_full_text(path, rec)[:2000] for path, _, rec in clean]
    found = detector.detect_languages_in_parallel_of(texts)
    odd = [(t[:120], lang) for t, lang in zip(texts, found, strict=True) if lang.iso_code_639_1.name != "EN"]
    assert not odd
