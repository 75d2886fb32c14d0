"""A tiny, randomly initialised Llama-architecture causal LM that the project builds for itself.

No real checkpoint can be downloaded in tests, CI or the demo, so every code path that loads a model
(transformers, vLLM, Ray Train FSDP2, merging, evaluation) is exercised with a folder produced here.
The folder has exactly the layout of a Hugging Face Llama-3 checkpoint (``config.json``,
``model.safetensors``, ``generation_config.json``, ``tokenizer.json``, ``tokenizer_config.json``,
``chat_template.jinja``) and is loaded through the same ``from_pretrained`` / ``vllm.LLM`` calls a real
model takes, so no test special-cases it.

What a caller can rely on:

* The tokenizer is a byte-level BPE trained on the embedded corpus, with Llama-3 special tokens and a
  Llama-3 chat template. ``eos_token`` is ``<|eot_id|>`` (as in Llama-3-Instruct: generation and SFT
  stop at the end of the assistant turn), ``pad_token`` is ``<|finetune_right_pad_id|>``, and the
  template wraps assistant content plus its ``<|eot_id|>`` in ``{% generation %}`` so
  ``apply_chat_template(..., return_assistant_tokens_mask=True)`` yields an SFT loss mask.
* ``len(tokenizer) == config.vocab_size == model vocab``: slots BPE training cannot fill (small corpus)
  become ``<|reserved_special_token_N|>`` tokens, as in Llama 3.
* Digits are split by the Llama-3 pre-tokenizer and the byte alphabet is always present, so each of
  "0".."9" is one token (DEITA's 1-6 scoring reads those ids).
* Same :class:`TinyModelConfig` -> byte-identical files (checked by the tests).
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from aloe_core.atomic import publish_dir, remove_debris, staging_dir
from aloe_core.chat_templates import LLAMA3_CHAT_TEMPLATE as CHAT_TEMPLATE
from aloe_core.config import StrictModel
from aloe_core.errors import AloeError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

BOS_TOKEN = "<|begin_of_text|>"
END_OF_TEXT_TOKEN = "<|end_of_text|>"
START_HEADER_TOKEN = "<|start_header_id|>"
END_HEADER_TOKEN = "<|end_header_id|>"
EOT_TOKEN = "<|eot_id|>"
PAD_TOKEN = "<|finetune_right_pad_id|>"
SPECIAL_TOKENS = (BOS_TOKEN, END_OF_TEXT_TOKEN, START_HEADER_TOKEN, END_HEADER_TOKEN, EOT_TOKEN, PAD_TOKEN)
RESERVED_TOKEN = "<|reserved_special_token_{}|>"

# Llama 3's pre-tokenizer split: letters with an optional leading non-letter, digits in groups of 1-3
# (so a lone digit is always its own pre-token), punctuation runs, newlines, other whitespace.
LLAMA3_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


# Head sizes vLLM's CPU attention backend implements; a tiny model must load there too.
VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)


class TinyModelConfig(StrictModel):
    """Shape of the tiny model and the seed that makes it reproducible.

    ``intermediate`` defaults to ``3 * hidden``. Raises pydantic's ``ValidationError`` (a ``ValueError``)
    with a message naming the field to change; :func:`aloe_core.config.validate_config` turns that into
    a one-line :class:`~aloe_core.errors.ConfigError`.
    """

    layers: int = Field(2, ge=1, le=64)
    hidden: int = Field(128, ge=32)
    heads: int = Field(2, ge=1)
    kv_heads: int = Field(1, ge=1)
    intermediate: int = Field(0, ge=0, description="MLP width; 0 means 3 * hidden")
    vocab_size: int = Field(4096, ge=512, description="tokenizer vocab incl. special tokens == model vocab")
    max_position_embeddings: int = Field(2048, ge=64)
    seed: int = Field(0, ge=0)
    rope_theta: float = Field(500000.0, gt=0)
    tie_word_embeddings: bool = False
    init_std: float = Field(
        0.3,
        gt=0,
        description="weight init std; far above Llama's 0.02 so greedy output depends on the prompt",
    )

    @model_validator(mode="after")
    def _check_shapes(self) -> TinyModelConfig:
        # PydanticCustomError keeps the message as written (a ValueError would gain a "Value error," prefix).
        if self.hidden % self.heads:
            raise PydanticCustomError(
                "tiny_model_shape", f"hidden={self.hidden} is not divisible by heads={self.heads}; change one"
            )
        if self.head_dim not in VLLM_CPU_HEAD_SIZES:
            raise PydanticCustomError(
                "tiny_model_shape",
                f"hidden/heads = {self.hidden}/{self.heads} gives head_dim {self.head_dim}; head_dim must be "
                f"one of {', '.join(map(str, VLLM_CPU_HEAD_SIZES))} (>= 32, and supported by vLLM on CPU)",
            )
        if self.heads % self.kv_heads:
            raise PydanticCustomError(
                "tiny_model_shape",
                f"heads={self.heads} is not divisible by kv_heads={self.kv_heads} (grouped-query attention)",
            )
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def intermediate_size(self) -> int:
        return self.intermediate or 3 * self.hidden


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, model_max_length: int = 2048
) -> PreTrainedTokenizerFast:
    """Train a Llama-3-style byte-level BPE tokenizer on ``texts``.

    Args:
        texts: training sentences; iterated once.
        vocab_size: exact size of the returned vocabulary, special tokens included. BPE learns up to
            ``vocab_size - len(SPECIAL_TOKENS)`` entries; any shortfall is filled with reserved special
            tokens so the model's embedding matrix and the tokenizer always agree.
        model_max_length: recorded in the tokenizer config (the model's context length).

    Returns:
        A ``transformers`` fast tokenizer with bos/eos/pad and the chat template set.

    Raises:
        AloeError: ``vocab_size`` cannot hold the 256-byte alphabet plus the special tokens.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    bpe_size = vocab_size - len(SPECIAL_TOKENS)
    if bpe_size < len(alphabet):
        raise AloeError(
            f"vocab_size={vocab_size} is too small: it must hold the {len(alphabet)}-byte alphabet plus "
            f"{len(SPECIAL_TOKENS)} special tokens; use at least {len(alphabet) + len(SPECIAL_TOKENS)}"
        )
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size,
        min_frequency=2,
        initial_alphabet=alphabet,
        show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator(_strings(texts), trainer)
    learned = tok.get_vocab_size()
    reserved = [RESERVED_TOKEN.format(i) for i in range(bpe_size - learned)]
    if reserved:
        logger.info(
            "BPE learned %d of %d entries; adding %d reserved tokens", learned, bpe_size, len(reserved)
        )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (*SPECIAL_TOKENS, *reserved)]
    )
    bos_id = tok.token_to_id(BOS_TOKEN)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS_TOKEN} $A",
                pair=f"{BOS_TOKEN} $A {BOS_TOKEN}:1 $B:1",
                special_tokens=[(BOS_TOKEN, bos_id)],
            ),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOT_TOKEN,
        pad_token=PAD_TOKEN,
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def _strings(texts: Iterable[str]) -> Iterator[str]:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise AloeError(f"tokenizer training text #{i} is {type(text).__name__}, expected str")
        yield text


def build_tiny_model(
    out_dir: str | Path, config: TinyModelConfig | None = None, *, overwrite: bool = False
) -> Path:
    """Build the tiny model and its tokenizer into ``out_dir`` and return that path.

    The folder is written into a temporary sibling directory and renamed into place, so a crash never
    leaves a half-written model that later loads. Weights are float32, safetensors only.

    Args:
        out_dir: destination; must not exist or be empty unless ``overwrite`` is true.
        config: shape and seed; default :class:`TinyModelConfig()`.
        overwrite: replace an existing non-empty ``out_dir``.

    Raises:
        AloeError: ``out_dir`` is a file, or a non-empty directory and ``overwrite`` is false.
    """
    config = config or TinyModelConfig()
    out_dir = Path(out_dir)
    remove_debris(out_dir)  # a killed earlier build's staging folder
    _check_destination(out_dir, overwrite)
    staging = staging_dir(out_dir)
    try:
        _write_model(staging, config)
        publish_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("built tiny Llama (%d parameters) in %s", parameter_count(out_dir), out_dir)
    return out_dir


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AloeError(f"{out_dir}: exists and is not a directory; choose another output path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise AloeError(f"{out_dir}: directory is not empty; pass --force (or overwrite=True) to replace it")


def _write_model(folder: Path, config: TinyModelConfig) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(
        _training_texts(config.seed),
        config.vocab_size,
        model_max_length=config.max_position_embeddings,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        head_dim=config.head_dim,
        max_position_embeddings=config.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        rms_norm_eps=1e-5,
        initializer_range=config.init_std,
        tie_word_embeddings=config.tie_word_embeddings,
        bos_token_id=ids[BOS_TOKEN],
        eos_token_id=[ids[EOT_TOKEN], ids[END_OF_TEXT_TOKEN]],
        pad_token_id=ids[PAD_TOKEN],
        dtype="float32",
        architectures=["LlamaForCausalLM"],
    )
    # fork_rng: seeding must not change the caller's global RNG stream (e.g. a test's data shuffling).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(llama_config).to(torch.float32)
    _silence_control_tokens(model, tokenizer, config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS_TOKEN],
        eos_token_id=[ids[EOT_TOKEN], ids[END_OF_TEXT_TOKEN]],
        pad_token_id=ids[PAD_TOKEN],
        do_sample=False,
    )
    with _no_progress_bars():
        model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


@functools.lru_cache(maxsize=2)
def _training_texts(seed: int) -> tuple[str, ...]:
    """The embedded corpus's tokenizer texts, generated once per process per seed (a few seconds each)."""
    from aloe_fixtures.corpus import tokenizer_training_texts

    return tuple(tokenizer_training_texts(seed))


def _silence_control_tokens(model, tokenizer, config: TinyModelConfig) -> None:
    """Zero the output rows of tokens a trained Llama never emits (bos, headers, pad, reserved).

    Their logits become exactly 0 while thousands of text-token logits are spread around 0 with a std of
    a few units, so greedy and sampled output is text (ending in <|eot_id|> / <|end_of_text|>) instead
    of a stream of control tokens. Skipped for tied embeddings, whose rows are also the input embeddings.
    """
    import torch

    if config.tie_word_embeddings:
        return
    keep = {tokenizer.convert_tokens_to_ids(t) for t in (EOT_TOKEN, END_OF_TEXT_TOKEN)}
    silent = sorted(i for i, t in tokenizer.added_tokens_decoder.items() if t.special and i not in keep)
    with torch.no_grad():
        model.lm_head.weight[silent] = 0.0


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide transformers' per-shard progress bar while saving (noise in CLI output and test logs)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def parameter_count(model_dir: str | Path) -> int:
    """Number of parameters stored in a model folder's safetensors files (read from headers only)."""
    from safetensors import safe_open

    total = 0
    for shard in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(shard, framework="np") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open handles are not mappings
                total += math.prod(f.get_slice(name).get_shape())
    return total
