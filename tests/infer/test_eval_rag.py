"""`aloe eval run --strategy rag / rag-cot`: retrieval in the eval harness, beside the same strategies
without it, on the tiny model and an index of the embedded medical document collection.

The benchmark is written here from the fact tables the documents are written from: "first-line treatment
of <disease>?", the right treatment among three that are not first-line, so the answer is in one known
document (``diseases/<slug>``). The oracle of the retrieval fields is the retriever itself, called
directly on the same batch of questions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aloe_core.errors import InputError
from aloe_infer.engine import EngineConfig
from aloe_infer.eval.config import EvalConfig
from aloe_infer.eval.results import read_predictions
from aloe_infer.eval.run import run_eval, run_strategies

QUESTIONS = 6
CONTEXT_TOKENS = 160  # room for two or three of the k=4 chunks: the budget cuts or leaves the rest out
STRATEGIES = ["zero-shot", "rag", "cot", "rag-cot"]


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


@pytest.fixture(scope="module")
def treatment_benchmark(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """``treatments_test.json`` (prompt-engine JSON) and, per id, the disease it asks about."""
    from aloe_fixtures.corpus.facts_clinical import DISEASES

    folder = tmp_path_factory.mktemp("treatment-benchmark")
    items, facts = {}, {}
    for n, disease in enumerate([d for d in DISEASES if len(d.wrong_treatments) >= 3][:QUESTIONS]):
        options = list(disease.wrong_treatments[:3])
        options.insert(n % 4, disease.treatment)  # the answer at every position in turn
        letters = "ABCD"
        item_id = f"treatment-{n}"
        items[item_id] = {
            "id": item_id,
            "question": f"What is the first-line treatment of {disease.name}?",
            "options": dict(zip(letters, options, strict=True)),
            "correct_answer": letters[n % 4],
        }
        facts[item_id] = {"doc_id": f"diseases/{_slug(disease.name)}", "treatment": disease.treatment}
    (folder / "treatments_test.json").write_text(json.dumps(items, indent=1))
    return folder, facts


def _config(model: Path, benchmarks: Path, index: Path | None, **fields) -> EvalConfig:
    data = {
        "engine": EngineConfig(model=str(model), dtype="float32"),
        "benchmarks": str(benchmarks),
        "actors": {"mode": "local", "batch_size": 16},
        "generation": {"max_tokens": 8, "retry": {"retries": 0}},
        "rag": {"index": str(index) if index else None, "k": 4, "context_tokens": CONTEXT_TOKENS},
    } | fields
    return EvalConfig.model_validate(data)


@pytest.fixture(scope="module")
def side_by_side(tiny_model_dir, treatment_benchmark, rag_index, tmp_path_factory):
    """One `run_strategies` of zero-shot, rag, cot and rag-cot on the same questions."""
    out = tmp_path_factory.mktemp("rag-eval") / "run"
    config = _config(tiny_model_dir, treatment_benchmark[0], rag_index, strategy=STRATEGIES)
    runs = run_strategies(config, out)
    return out, runs


def _predictions(out: Path, strategy: str) -> list[dict]:
    return read_predictions(out / strategy / "predictions.jsonl")


def test_records_hold_the_chunks_the_retriever_returns(
    side_by_side, treatment_benchmark, rag_index, tiny_model_dir
):
    from transformers import AutoTokenizer

    from aloe_infer.eval.prompts import PromptConfig as Words
    from aloe_infer.eval.prompts import PromptRenderer, question_block
    from aloe_infer.retrieval import PromptConfig, RetrievalConfig, Retriever, build_context, sources_section

    out, _ = side_by_side
    items = list(json.loads((treatment_benchmark[0] / "treatments_test.json").read_text()).values())
    # The same batch the run searched: every question of the benchmark in one call.
    hits = Retriever.open(rag_index, RetrievalConfig(retriever="hybrid")).search(
        [item["question"] for item in items], 4
    )
    renderer = PromptRenderer(AutoTokenizer.from_pretrained(tiny_model_dir), Words())
    for strategy in ("rag", "rag-cot"):
        predictions = _predictions(out, strategy)
        assert [p["id"] for p in predictions] == [item["id"] for item in items]
        shown_fewer = 0
        for p, item, mine in zip(predictions, items, hits, strict=True):
            assert p["retrieved"] == [
                {"doc_id": h.doc_id, "chunk_id": h.chunk_id, "score": h.score, "title": h.title} for h in mine
            ]
            context = build_context(mine, renderer.tokenizer, PromptConfig(context_tokens=CONTEXT_TOKENS))
            assert p["sources"] == len(context.sources) >= 1 and context.tokens <= CONTEXT_TOKENS
            shown_fewer += p["sources"] < 4
            block = question_block(item["question"], list(item["options"].values()))
            render = renderer.zero_shot if strategy == "rag" else renderer.cot
            assert p["prompt"] == render(block, sources=sources_section(context)).text
        assert shown_fewer  # the budget, not k, decided how many were shown for some questions


def test_rag_shows_the_document_that_holds_the_answer(side_by_side, treatment_benchmark):
    out, _ = side_by_side
    _, facts = treatment_benchmark
    plain = {p["id"]: p for p in _predictions(out, "zero-shot")}
    for p in _predictions(out, "rag"):
        fact = facts[p["id"]]
        assert p["retrieved"][0]["doc_id"] == fact["doc_id"]
        sources = p["prompt"].split("Sources:\n", 1)[1].split("\n\nQuestion: ", 1)[0]
        assert f"First-line treatment is {fact['treatment']}" in sources.split("\n\n[2]")[0]
        # The same question without retrieval: the prompt less the sources and the sentence about them.
        words = EvalConfig.model_fields["prompts"].default_factory().rag_instruction
        without = p["prompt"].replace(f" {words}", "").replace(f"Sources:\n{sources}\n\n", "")
        assert without == plain[p["id"]]["prompt"] and "Sources:" not in without
        assert set(p["letter_logprobs"]) == set("ABCD") and p["prediction"] in "ABCD"


def test_results_put_each_strategy_beside_the_one_without_retrieval(side_by_side):
    from aloe_infer.eval.compare import compare_runs

    out, runs = side_by_side
    assert list(runs) == STRATEGIES
    files = {"comparison.json", "comparison.md", "accuracy.png"}
    assert {p.name for p in out.iterdir()} == {*STRATEGIES, *files}
    for strategy, results in runs.items():
        assert json.loads((out / strategy / "results.json").read_text())["strategy"] == strategy
        assert results["benchmarks"]["treatments"]["n"] == QUESTIONS
    assert runs["rag"]["retrieval"] | {"seconds": 0} == {
        "index": runs["rag"]["config"]["rag"]["index"],
        "retriever": "hybrid",
        "k": 4,
        "context_tokens": CONTEXT_TOKENS,
        "chunks": runs["rag"]["retrieval"]["chunks"],
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
        "queries": QUESTIONS,
        "seconds": 0,
    }
    assert "retrieval" not in runs["zero-shot"] and "retrieved" not in _predictions(out, "cot")[0]
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["accuracy"]["treatments"] == {
        s: runs[s]["benchmarks"]["treatments"]["accuracy"] for s in STRATEGIES
    }
    paired = comparison["paired"]["treatments"]
    assert {run: t["base"] for run, t in paired.items()} == {
        "rag": "zero-shot",
        "cot": "zero-shot",
        "rag-cot": "cot",
    }
    assert all(t["n"] == QUESTIONS for t in paired.values())
    assert "| benchmark | zero-shot | rag | cot | rag-cot |" in (out / "comparison.md").read_text()
    # `aloe eval compare` reads the strategies' folders as runs of their own.
    again = compare_runs([out / "cot", out / "rag-cot"])
    assert again["paired"]["treatments"]["rag-cot"] == paired["rag-cot"]


def test_a_missing_or_mismatched_index_fails_before_model_work(
    tiny_model_dir, treatment_benchmark, rag_index, tmp_path
):
    from aloe_core.errors import ConfigError

    bench, _ = treatment_benchmark
    with pytest.raises(InputError) as info:
        run_strategies(_config(tiny_model_dir, bench, tmp_path / "nowhere", strategy="rag"), tmp_path / "a")
    assert "no RAG index here" in str(info.value) and "\n" not in str(info.value)
    wrong_model = {"index": str(rag_index), "embedding_model": str(tiny_model_dir)}
    with pytest.raises(InputError) as info:
        run_strategies(
            _config(tiny_model_dir, bench, None, strategy=["zero-shot", "rag-cot"], rag=wrong_model),
            tmp_path / "b",
        )
    assert "index built with embedding model" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # zero-shot never ran
    with pytest.raises(ValueError, match=r"rag\.index: strategy rag needs an index folder"):
        _config(tiny_model_dir, bench, None, strategy="rag")
    with pytest.raises(ConfigError, match="one strategy"):
        from aloe_infer.eval.run import run_eval

        run_eval(_config(tiny_model_dir, bench, rag_index, strategy=["zero-shot", "rag"]), tmp_path / "c")


def test_cli_runs_strategies_side_by_side(tiny_model_dir, treatment_benchmark, rag_index, tmp_path, capsys):
    from aloe_core.cli import build_app, run_app

    bench, _ = treatment_benchmark
    argv = ["eval", "run", "--model", str(tiny_model_dir), "--benchmarks", str(bench), "--limit", "2"]
    argv += ["--strategy", "zero-shot,rag", "--out", str(tmp_path / "run")]
    argv += ["--set", "actors.mode=local", "--set", f"rag.index={rag_index}", "--set", "rag.retriever=bm25"]
    run_app(build_app("eval"), argv)
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["zero-shot", "rag"]
    assert f"results: {tmp_path / 'run' / 'comparison.md'}" in printed
    rag = json.loads((tmp_path / "run" / "rag" / "results.json").read_text())
    assert rag["retrieval"]["retriever"] == "bm25" and rag["questions"] == 2


def test_rag_from_an_index_on_the_bucket_predicts_as_from_the_local_index(
    side_by_side, tiny_model_dir, treatment_benchmark, rag_index, s3_bucket, tmp_path, monkeypatch
):
    from aloe_core.atomic import upload_dir
    from aloe_infer.retrieval.store import MANIFEST

    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    index = upload_dir(rag_index, s3_bucket + "/rag/index", last=MANIFEST)
    out = tmp_path / "run"
    results = run_eval(_config(tiny_model_dir, treatment_benchmark[0], index, strategy=["rag"]), out)
    local, _ = side_by_side
    assert results["retrieval"]["index"] == index
    assert read_predictions(out / "predictions.jsonl") == _predictions(local, "rag")
