"""The tiny-model factory: reproducible bytes, a real from_pretrained load, Llama-3 tokens and template."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaForCausalLM
from typer.testing import CliRunner

from aloe_core.config import validate_config
from aloe_core.errors import AloeError, ConfigError
from aloe_fixtures.model_cli import app
from aloe_fixtures.tiny_model import (
    BOS_TOKEN,
    END_OF_TEXT_TOKEN,
    EOT_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TinyModelConfig,
    build_tiny_model,
    parameter_count,
    train_tokenizer,
)

CONVERSATION = [
    {"role": "system", "content": "You are a careful clinician."},
    {"role": "user", "content": "What is the first-line drug for type 2 diabetes?"},
    {"role": "assistant", "content": "Metformin, 500 mg twice daily with meals."},
    {"role": "user", "content": "And if eGFR is below 30?"},
    {"role": "assistant", "content": "Stop metformin; it is contraindicated."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def _digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def test_same_seed_gives_identical_bytes_and_no_leftovers(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    expected = {
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert set(_digests(again)) == expected
    assert _digests(again) == _digests(tiny_model_dir)
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # the staging folder was renamed, not copied


def test_loads_with_from_pretrained_as_configured(tiny_model_dir: Path, model, tokenizer) -> None:
    cfg = TinyModelConfig()
    assert isinstance(model, LlamaForCausalLM)
    assert model.dtype == torch.float32
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (cfg.layers, cfg.hidden)
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (cfg.heads, cfg.kv_heads)
    assert model.config.tie_word_embeddings is False
    assert len(tokenizer) == cfg.vocab_size == model.get_input_embeddings().num_embeddings
    assert model.get_output_embeddings().out_features == cfg.vocab_size
    assert parameter_count(tiny_model_dir) == sum(p.numel() for p in model.parameters())
    assert list(tiny_model_dir.glob("*.bin")) == []


def test_special_tokens_and_generation_config(tiny_model_dir: Path, tokenizer) -> None:
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == len(SPECIAL_TOKENS)
    for token, token_id in zip(SPECIAL_TOKENS, ids, strict=True):
        assert tokenizer.encode(token, add_special_tokens=False) == [token_id]
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        BOS_TOKEN,
        EOT_TOKEN,
        PAD_TOKEN,
    )
    # Plain encoding adds <|begin_of_text|> like Llama 3; the chat template adds it itself.
    assert tokenizer.encode("fever")[0] == tokenizer.bos_token_id
    gen = GenerationConfig.from_pretrained(tiny_model_dir)
    eot, end_of_text = tokenizer.convert_tokens_to_ids([EOT_TOKEN, END_OF_TEXT_TOKEN])
    assert gen.eos_token_id == [eot, end_of_text]
    assert (gen.bos_token_id, gen.pad_token_id, gen.do_sample) == (
        tokenizer.bos_token_id,
        tokenizer.pad_token_id,
        False,
    )


def test_chat_template_renders_llama3_format(tokenizer) -> None:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": " Hi "}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True)[
        "input_ids"
    ]
    assert ids.count(tokenizer.bos_token_id) == 1


def test_assistant_mask_covers_exactly_assistant_content_and_eot(tokenizer) -> None:
    enc = tokenizer.apply_chat_template(CONVERSATION, return_assistant_tokens_mask=True, return_dict=True)
    input_ids, mask = enc["input_ids"], enc["assistant_masks"]
    eot = tokenizer.convert_tokens_to_ids(EOT_TOKEN)
    spans, current = [], []
    for token_id, bit in zip(input_ids, mask, strict=True):
        if bit:
            current.append(token_id)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    expected = [
        [*tokenizer.encode(m["content"], add_special_tokens=False), eot]
        for m in CONVERSATION
        if m["role"] == "assistant"
    ]
    assert spans == expected
    assert mask[-1] == 1  # the final <|eot_id|> is trained: the model learns to stop


def test_digits_are_single_tokens_in_isolation_and_in_context(tokenizer) -> None:
    digit_ids = [tokenizer.encode(d, add_special_tokens=False) for d in "123456"]
    assert all(len(ids) == 1 for ids in digit_ids)
    assert len({ids[0] for ids in digit_ids}) == 6
    for digit, (digit_id,) in zip("123456", digit_ids, strict=True):
        assert tokenizer.encode(f"Score: {digit}", add_special_tokens=False)[-1] == digit_id


def test_words_tokenize_compactly_and_round_trip(tokenizer) -> None:
    text = "The patient has hypertension and diabetes; start a β-blocker at 5 mg/día."
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8")) / 2  # BPE merges, not bytes
    assert tokenizer.tokenize(" patient") == ["Ġpatient"]


def test_greedy_generation_from_chat_prompt_depends_on_prompt(model, tokenizer) -> None:
    def greedy(question: str) -> list[int]:
        enc = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}],
            add_generation_prompt=True,
            return_dict=True,
            return_tensors="pt",
        )
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
        return out[0, enc["input_ids"].shape[1] :].tolist()

    first = greedy("Which drug is first-line for type 2 diabetes?")
    second = greedy("What causes community-acquired pneumonia in adults?")
    assert first and second
    assert first != second
    assert greedy("Which drug is first-line for type 2 diabetes?") == first
    assert len(set(first)) > 1  # not one token repeated
    # Control tokens (headers, bos, pad, reserved) have zero output rows, so a random model never emits them.
    allowed = set(tokenizer.convert_tokens_to_ids([EOT_TOKEN, END_OF_TEXT_TOKEN]))
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    assert not (set(first + second) & (special - allowed))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hidden": 100}, "head_dim 50"),
        ({"hidden": 128, "heads": 3}, "not divisible by heads=3"),
        ({"hidden": 128, "heads": 8}, "head_dim 16"),
        ({"heads": 2, "kv_heads": 3}, "not divisible by kv_heads=3"),
        ({"vocab_size": 100}, "greater than or equal to 512"),
        ({"hidden_size": 128}, "extra"),
    ],
)
def test_bad_config_is_rejected_with_the_field_to_change(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TinyModelConfig(**fields)
    with pytest.raises(ConfigError, match=r"^tiny: "):
        validate_config(TinyModelConfig, fields, source="tiny")


def test_tokenizer_vocab_too_small_for_byte_alphabet() -> None:
    with pytest.raises(AloeError, match="at least 262"):
        train_tokenizer(["fever and cough"], vocab_size=200)


def test_cli_refuses_non_empty_dir_then_force_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "notes.txt").write_text("keep me?")
    runner = CliRunner()
    refused = runner.invoke(app, ["tiny", str(out), "--layers", "1", "--hidden", "64"])
    assert isinstance(refused.exception, AloeError)
    assert "not empty" in str(refused.exception) and "--force" in str(refused.exception)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    built = runner.invoke(app, ["tiny", str(out), "--layers", "1", "--hidden", "64", "--force"])
    assert built.exit_code == 0, built.output
    assert not (out / "notes.txt").exists()
    config = AutoModelForCausalLM.from_pretrained(out).config
    assert (config.num_hidden_layers, config.hidden_size, config.head_dim) == (1, 64, 32)
    assert f"{parameter_count(out):,} parameters" in built.output
    assert str(out) in built.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]
