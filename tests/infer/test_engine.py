"""The transformers engine against plain transformers on the tiny model: same greedy tokens as
``model.generate`` one prompt at a time, logprobs equal to a full forward's log-softmax, seeded samples
that do not depend on the batch, stop strings, constrained tokens and row-level errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from aloe_core.config import validate_config
from aloe_core.errors import ConfigError, InputError
from aloe_infer.engine import EngineConfig, first_stop, load_engine
from aloe_infer.hf_engine import HFEngine
from aloe_infer.sampling import SamplingParams

CONVERSATIONS = [
    [{"role": "user", "content": "Which drug is first-line for type 2 diabetes?"}],
    [
        {"role": "system", "content": "You are a careful clinician."},
        {
            "role": "user",
            "content": "A 60-year-old has crushing chest pain radiating to the left arm. Next step?",
        },
    ],
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "List three causes of acute kidney injury in hospitalised adults."}],
]
MAX_NEW = 24


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator[HFEngine]:
    # One torch thread: on 2 shared cores a second intra-op thread mostly spins (10x slower under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # max_batch_size 3: the four prompts run as two batches, so batching across calls is exercised too.
    yield load_engine(EngineConfig(model=str(tiny_model_dir), max_model_len=512, max_batch_size=3))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return tokenizer, model


def generate_alone(reference, prompt: list[int], max_new: int) -> list[int]:
    """Greedy new tokens from ``model.generate`` for one unpadded prompt (the oracle)."""
    _, model = reference
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=False
        )
    return out[0, len(prompt) :].tolist()


def test_batched_greedy_equals_generate_one_at_a_time(engine, reference):
    results = engine.chat(CONVERSATIONS, SamplingParams(max_tokens=MAX_NEW))
    tokenizer, _ = reference
    lengths = set()
    for conversation, result in zip(CONVERSATIONS, results, strict=True):
        prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_dict=True)
        assert list(result.prompt_token_ids) == prompt["input_ids"]
        lengths.add(len(prompt["input_ids"]))
        expected = generate_alone(reference, list(result.prompt_token_ids), MAX_NEW)
        completion = result.completions[0]
        assert list(completion.token_ids) == expected
        ended = expected[-1] in engine.eos_ids
        assert completion.finish_reason == ("stop" if ended else "length")
        body = expected[:-1] if ended else expected
        # A cut-off multi-byte character at the end (U+FFFD) is dropped, as vLLM does.
        assert completion.text == tokenizer.decode(body, skip_special_tokens=True).rstrip("\ufffd")
    assert len(lengths) == len(CONVERSATIONS)  # different lengths: left padding was exercised


def test_logprobs_are_the_model_log_softmax(engine, reference):
    _, model = reference
    result = engine.chat(CONVERSATIONS[:2], SamplingParams(max_tokens=6, logprobs=3, ignore_eos=True))
    for r in result:
        completion = r.completions[0]
        full = torch.tensor([list(r.prompt_token_ids) + list(completion.token_ids)])
        with torch.no_grad():
            logp = torch.log_softmax(model(full).logits[0].float(), dim=-1)
        start = len(r.prompt_token_ids) - 1
        total = 0.0
        for step, (token, entry) in enumerate(zip(completion.token_ids, completion.logprobs, strict=True)):
            row = logp[start + step]
            top = set(row.topk(3).indices.tolist())
            assert set(entry) == top | {token}
            for token_id, value in entry.items():
                assert value == pytest.approx(float(row[token_id]), abs=1e-4)
            total += entry[token]
        assert completion.cumulative_logprob == pytest.approx(total, abs=1e-6)


def test_seeded_samples_do_not_depend_on_the_batch(engine):
    params = SamplingParams(max_tokens=16, temperature=1.0, seed=7, ignore_eos=True)
    alone = engine.chat(CONVERSATIONS[:1], params)[0].completions[0].token_ids
    others = [SamplingParams(max_tokens=16, temperature=0.8, top_p=0.9, seed=s) for s in (1, 2, 3)]
    batched = engine.chat(CONVERSATIONS, [params, *others])[0].completions[0].token_ids
    assert batched == alone
    other_seed = engine.chat(CONVERSATIONS[:1], params.model_copy(update={"seed": 8}))[0]
    assert other_seed.completions[0].token_ids != alone
    many = engine.chat(CONVERSATIONS[:1], params.model_copy(update={"n": 3}))[0].completions
    assert len(many) == 3 and many[0].token_ids == alone
    assert len({c.token_ids for c in many}) == 3


def test_top_k_one_and_tiny_top_p_are_greedy(engine):
    greedy = engine.chat(CONVERSATIONS, SamplingParams(max_tokens=12))
    for params in (
        SamplingParams(max_tokens=12, temperature=1.5, top_k=1, seed=3),
        SamplingParams(max_tokens=12, temperature=1.5, top_p=1e-6, seed=3),
    ):
        sampled = engine.chat(CONVERSATIONS, params)
        assert [r.completions[0].token_ids for r in sampled] == [r.completions[0].token_ids for r in greedy]


def test_allowed_token_ids_pick_the_best_allowed_token(engine, reference):
    tokenizer, model = reference
    letters = [tokenizer.encode(f" {x}", add_special_tokens=False)[0] for x in "ABCD"]
    results = engine.chat(CONVERSATIONS, SamplingParams(max_tokens=1, allowed_token_ids=tuple(letters)))
    for r in results:
        with torch.no_grad():
            logits = model(torch.tensor([list(r.prompt_token_ids)])).logits[0, -1]
        best = max(letters, key=lambda t: float(logits[t]))
        assert r.completions[0].token_ids == (best,)
    sampled = engine.chat(
        CONVERSATIONS, SamplingParams(max_tokens=3, temperature=2.0, seed=1, allowed_token_ids=tuple(letters))
    )
    assert all(set(r.completions[0].token_ids) <= set(letters) for r in sampled)


def test_stop_string_cuts_text_at_its_first_occurrence(engine):
    greedy = engine.chat(CONVERSATIONS[:1], SamplingParams(max_tokens=MAX_NEW, ignore_eos=True))[0]
    text = greedy.completions[0].text
    # Three ASCII letters the greedy output is known to contain, past its start.
    stop = next(
        text[i : i + 3]
        for i in range(8, len(text) - 3)
        if text[i : i + 3].isascii() and text[i : i + 3].isalpha()
    )
    cut = engine.chat(CONVERSATIONS[:1], SamplingParams(max_tokens=MAX_NEW, ignore_eos=True, stop=(stop,)))[0]
    completion = cut.completions[0]
    assert completion.text == text[: text.find(stop)]
    assert completion.finish_reason == "stop" and completion.stop_reason == stop
    assert len(completion.token_ids) < len(greedy.completions[0].token_ids)
    assert greedy.completions[0].token_ids[: len(completion.token_ids)] == completion.token_ids


def test_first_stop_prefers_the_earliest_then_the_longest():
    assert first_stop("abc STOP def END", ["END", "STOP"]) == (4, "STOP")
    assert first_stop("x Answer: B", ["Answer", "Answer:"]) == (2, "Answer:")
    assert first_stop("nothing here", ["END"]) is None


def test_row_errors_cost_only_their_row_and_max_tokens_fit_the_context(engine):
    long_prompt = list(range(10, 10 + 600))  # 600 token ids > max_model_len 512
    near_full = list(range(10, 10 + 509))  # room for 3 new tokens
    results = engine.generate(
        ["Which drug is first-line for type 2 diabetes?", long_prompt, [], near_full],
        SamplingParams(max_tokens=20, ignore_eos=True),
    )
    assert results[0].ok and len(results[0].completions[0].token_ids) == 20
    assert results[1].error == (
        "prompt has 600 tokens but max_model_len is 512; "
        "shorten the prompt or raise the engine's max_model_len"
    )
    assert results[1].completions == ()
    assert results[2].error == "empty prompt"
    assert results[3].ok and len(results[3].completions[0].token_ids) == 3
    assert results[3].completions[0].finish_reason == "length"
    bad = engine.generate(["Hi"], SamplingParams(max_tokens=2, allowed_token_ids=(10**7,)))[0]
    assert bad.error is not None and "vocabulary size" in bad.error


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="tensor_parallel_size > 1 needs `type: vllm`"):
        validate_config(EngineConfig, {"model": "m", "tensor_parallel_size": 2}, "cfg")
    with pytest.raises(ConfigError, match=r"cfg: top_p: must be <= 1"):
        validate_config(SamplingParams, {"top_p": 1.5}, "cfg")
    with pytest.raises(InputError, match="model folder not found"):
        load_engine(EngineConfig(model=str(tmp_path / "missing")))
