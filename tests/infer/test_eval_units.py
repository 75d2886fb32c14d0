"""The eval harness's pieces on hand-made cases: shuffling, voting, kNN, statistics, aggregates, loading."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from aloe_core.errors import InputError
from aloe_infer.eval.benchmarks import load_benchmarks
from aloe_infer.eval.ensemble import majority_vote, map_back, member_orders
from aloe_infer.eval.knn import top_k_cosine
from aloe_infer.eval.metrics import mcnemar, standard_error, wilson_interval
from aloe_infer.eval.prompts import letters_for, question_block
from aloe_infer.eval.results import aggregates, score


@pytest.mark.parametrize("n_options", [4, 5])
def test_every_permutation_maps_the_shown_answer_back_to_the_original_option(n_options):
    letters = letters_for(n_options)
    texts = [f"text of {letter}" for letter in letters]
    for order in itertools.permutations(range(n_options)):
        shown_texts = [texts[i] for i in order]
        block = question_block("Q?", shown_texts)
        for position, shown in enumerate(letters):
            original = map_back(shown, order, letters)
            # The member read `shown. <text>`; that text is the original option `original`.
            assert f"{shown}. {shown_texts[position]}" in block
            assert texts[letters.index(original)] == shown_texts[position]
    assert map_back(None, tuple(range(n_options)), letters) is None


@pytest.mark.parametrize(("n_options", "members"), [(4, 5), (5, 5), (3, 5), (2, 5), (4, 24), (5, 40)])
def test_ensemble_members_get_distinct_permutations(n_options, members):
    orders = member_orders(n_options, members, shuffle=True, seed=("run", "item-1"))
    assert len(orders) == min(members, math.factorial(n_options))
    assert len(set(orders)) == len(orders)
    assert all(sorted(o) == list(range(n_options)) for o in orders)
    assert orders == member_orders(n_options, members, shuffle=True, seed=("run", "item-1"))  # deterministic
    assert orders != member_orders(n_options, members, shuffle=True, seed=("run", "item-2")) or n_options == 2
    assert member_orders(4, 3, shuffle=False, seed=0) == [(0, 1, 2, 3)] * 3


def test_majority_vote_and_tie_rule():
    assert majority_vote(["A", "B", "A", None, "C"]) == "A"
    assert majority_vote(["B", "A", "A", "B", "C"]) == "B"  # tie: first seen
    assert majority_vote(["B", "A", "A", "B", "C"], tie="none") is None
    assert majority_vote([None, "C", None]) == "C"  # unparsed answers do not vote
    assert majority_vote([None, None]) is None
    assert majority_vote(["D"]) == "D"


def test_knn_equals_brute_force_cosine():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(200, 16))
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    pool[7] = pool[3]  # an exact tie: the lower index comes first
    queries = rng.normal(size=(25, 16))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries[0] = pool[3]
    index, sims = top_k_cosine(queries.astype(np.float32), pool.astype(np.float32), 5)
    for q in range(len(queries)):
        brute = sorted(range(len(pool)), key=lambda i: (-float(queries[q] @ pool[i]), i))[:5]
        assert index[q].tolist() == brute
        np.testing.assert_allclose(sims[q], [queries[q] @ pool[i] for i in brute], atol=1e-6)
    assert index[0][:2].tolist() == [3, 7]
    assert top_k_cosine(queries[:2], pool[:3], 10)[0].shape == (2, 3)


def test_wilson_interval_on_known_values():
    # Reference values: Newcombe (1998), Table I, and the closed form at the ends.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_standard_error_is_lm_evals_sample_std_over_sqrt_n():
    scores = [1, 0, 1, 1, 0, 0, 0, 1, 1, 1]
    expected = np.std(scores, ddof=1) / math.sqrt(len(scores))
    assert standard_error(sum(scores), len(scores)) == pytest.approx(expected)
    assert standard_error(1, 1) == 0.0


def test_mcnemar_exact_test():
    a = [True] * 8 + [False] * 2 + [True] * 5 + [False] * 5
    b = [False] * 8 + [True] * 2 + [True] * 5 + [False] * 5
    test = mcnemar(a, b)
    assert (test.both, test.a_only, test.b_only, test.neither) == (5, 8, 2, 5)
    assert test.p_value == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert test.difference == pytest.approx(-6 / 20)
    assert mcnemar([True, False], [True, False]).p_value == 1.0


def _scores(correct: int, n: int) -> dict:
    return score([{"correct": i < correct, "prediction": "A"} for i in range(n)])


def test_aggregates_on_a_known_table():
    subjects = {
        "anatomy": _scores(50, 100),
        "clinical_knowledge": _scores(60, 100),
        "college_biology": _scores(70, 100),
        "college_medicine": _scores(80, 100),
        "medical_genetics": _scores(90, 100),
        "professional_medicine": _scores(100, 200),
    }
    mmlu = _scores(450, 700) | {"subjects": subjects}
    table = {
        "medqa": _scores(300, 1000),
        "medmcqa": _scores(1000, 4000),
        "pubmedqa": _scores(350, 500),
        "mmlu": mmlu,
        "careqa": _scores(100, 400),
    }
    agg = aggregates(table)
    # MultiMedQA: every question once, CareQA out.
    assert agg["multimedqa"]["accuracy"] == pytest.approx(
        (300 + 1000 + 350 + 450) / (1000 + 4000 + 500 + 700)
    )
    assert agg["multimedqa"]["n"] == 6200
    assert "careqa" not in agg["multimedqa"]["benchmarks"]
    # Medical MMLU: plain mean of the six subjects (0.5, 0.6, 0.7, 0.8, 0.9, 0.5).
    assert agg["medical_mmlu"]["accuracy"] == pytest.approx(4.0 / 6)
    # Mean: benchmarks equally, MMLU as its Medical-MMLU mean.
    assert agg["mean"]["accuracy"] == pytest.approx((0.3 + 0.25 + 0.7 + 4.0 / 6 + 0.25) / 5)


def _write(path, items):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items), encoding="utf-8")


def test_malformed_items_are_skipped_with_their_ids_and_open_ended_files_excluded(tmp_path):
    good = {"question": "Q?", "options": {"A": "a", "B": "b"}, "correct_answer": "A"}
    _write(
        tmp_path / "mine" / "mine_test.json",
        {
            "ok-1": good,
            "ok-2": {**good, "correct_answer": "b"},  # case-insensitive letter
            "no-answer": {"question": "Q?", "options": {"A": "a", "B": "b"}},
            "bad-letter": {**good, "correct_answer": "E"},
            "empty-question": {**good, "question": "  "},
            "dup": good,
        },
    )
    # A second file of the same benchmark may not reuse an id (mmlu's subjects may).
    _write(tmp_path / "mine" / "more" / "mine_test.json", {"dup": good})
    _write(tmp_path / "mmlu" / "mmlu_anatomy_test.json", {"1": good, "2": good})
    _write(tmp_path / "mmlu" / "mmlu_medical_genetics_test.json", {"1": good})
    _write(tmp_path / "open" / "open_test.json", {"1": {"question": "Why?", "correct_answer": "Because."}})
    benchmarks, excluded = load_benchmarks(tmp_path, "test")
    by_name = {b.name: b for b in benchmarks}
    assert sorted(by_name) == ["mine", "mmlu"]
    assert excluded == {"open": "open-ended (no options): not a multiple-choice benchmark"}
    mine = by_name["mine"]
    assert [i.id for i in mine.items] == ["ok-1", "ok-2"]
    assert mine.items[1].answer == "B"
    reasons = {s.id: s.reason for s in mine.skipped}
    assert set(reasons) == {"no-answer", "bad-letter", "empty-question", "dup"}
    assert (
        "correct_answer" in reasons["no-answer"] and "not one of the option letters" in reasons["bad-letter"]
    )
    assert reasons["dup"] == "duplicate id"
    assert by_name["mmlu"].subjects == ["anatomy", "medical_genetics"]
    assert len(by_name["mmlu"].items) == 3
    assert [len(b.items) for b in load_benchmarks(tmp_path, "test", names=["mmlu"], limit=1)[0]] == [2]


def test_loading_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="benchmark folder not found"):
        load_benchmarks(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no benchmark file"):
        load_benchmarks(tmp_path / "empty")
    _write(
        tmp_path / "bad" / "bad_test.json",
        {"1": {"question": "Q", "options": {"A": "a"}, "correct_answer": "A"}},
    )
    with pytest.raises(InputError, match="no valid item"):
        load_benchmarks(tmp_path / "bad")
    with pytest.raises(InputError, match=r"no test files for benchmark\(s\) \['medqa'\]"):
        load_benchmarks(tmp_path / "bad", names=["medqa"])


def test_the_real_files_load_by_registry_name(shared_mcqa):
    benchmarks, excluded = load_benchmarks(shared_mcqa, "test")
    sizes = {b.name: len(b.items) for b in benchmarks}
    assert sizes == {"careqa": 5621, "medmcqa": 4183, "medqa": 1273, "mmlu": 1089, "pubmedqa": 500}
    assert all(not b.skipped for b in benchmarks)
    assert "openmedqa" in excluded
    mmlu = next(b for b in benchmarks if b.name == "mmlu")
    assert len(mmlu.subjects) == 6


def test_shipped_eval_configs_validate():
    from pathlib import Path

    from aloe_core.config import load_config
    from aloe_infer.eval.config import EvalConfig

    folder = Path(__file__).resolve().parents[2] / "configs" / "eval"
    configs = {p.name: load_config(EvalConfig, p) for p in sorted(folder.glob("*.yaml"))}
    rag = configs.pop("tiny_rag_cpu.yaml")
    assert set(configs) == {"tiny_cpu.yaml", "llama3_8b_vllm_1xh100.yaml", "llama3_8b_vllm_4xh100.yaml"}
    assert configs["llama3_8b_vllm_4xh100.yaml"].actors.concurrency == 4
    assert all(c.strategies == ("medprompt",) for c in configs.values())
    assert rag.strategies == ("zero-shot", "rag", "cot", "rag-cot") and rag.rag.index == "runs/rag-index"
