"""Tokenizers for training: the chat template, the loss-mask check, the pad id, and row ids.

Both recipes (and the workers of the shared loop) load the tokenizer through here, so the template
override, the ``{% generation %}`` check and the pad-id fallback exist once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from aloe_core import storage
from aloe_core.errors import InputError
from aloe_core.storage import local_copy

GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")


def resolve_chat_template(value: str | None) -> str | None:
    """The text of ``model.chat_template``: None (keep the tokenizer's), ``llama3``, or a Jinja file.

    Raises:
        InputError: the file does not exist.
    """
    if value is None:
        return None
    if value == "llama3":
        from aloe_core.chat_templates import LLAMA3_CHAT_TEMPLATE

        return LLAMA3_CHAT_TEMPLATE
    if not storage.is_file(value):  # a local file, or one on a URI
        raise InputError(f"model.chat_template: {value} is neither 'llama3' nor an existing Jinja file")
    return storage.read_text(value)


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: str, chat_template: str | None = None) -> Any:
    """The tokenizer of a model folder (its chat template replaced by ``chat_template`` text if given),
    loaded once per process: Ray reuses worker processes across tasks. A folder on a URI is read from
    its local copy (:func:`aloe_core.storage.local_copy`)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(local_copy(path))
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def pad_token_id(tokenizer: Any) -> int:
    """The id that pads micro-batches: the tokenizer's pad token, else its end-of-sequence token
    (padding carries no label and no attention, so which id it is does not change the loss)."""
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)


def training_tokenizer(model_path: str, chat_template: str | None, *, check: bool = True) -> tuple[Any, int]:
    """``(tokenizer, pad id)`` of the model being trained, its chat template set from ``model.chat_template``
    and (with ``check``) proved able to mark assistant tokens."""
    tokenizer = load_tokenizer(model_path, resolve_chat_template(chat_template))
    if check:
        check_chat_template(tokenizer, model_path)
    return tokenizer, pad_token_id(tokenizer)


def check_chat_template(tokenizer: Any, source: str) -> None:
    """Fail fast unless the tokenizer can produce an assistant-token mask.

    Raises:
        InputError: no chat template, no ``{% generation %}`` markers, or markers that mark nothing
            on a probe conversation; the message names ``source`` and what to change.
    """
    template = tokenizer.chat_template
    if isinstance(template, dict):  # several named templates: the default one is used
        template = template.get("default")
    if not template:
        raise InputError(
            f"{source}: the tokenizer has no chat template; add one, or set model.chat_template "
            "(a Jinja file, or 'llama3')"
        )
    if not GENERATION_MARKER.search(template):
        raise InputError(
            f"{source}: the chat template has no {{% generation %}} ... {{% endgeneration %}} markers around "
            "assistant content, so the loss mask cannot be built; add them, or set model.chat_template "
            "(a Jinja file with the markers, or 'llama3')"
        )
    probe = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    encoded = tokenizer.apply_chat_template(
        probe, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    if not any(encoded["assistant_masks"]):
        raise InputError(f"{source}: the chat template's generation markers mark no assistant token")


def content_id(value: Any) -> str:
    """A row id derived from the row's content, for shards without an ``id`` column: the same row gets
    the same id in every batch, run and worker (so it always lands on the same side of the eval split)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def hash_fraction(sample_id: str) -> float:
    """A stable number in [0, 1) from a row id: the held-out split must not change between runs."""
    return int(hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:12], 16) / float(16**12)


def assign_split(sample_id: str, split: str | None, eval_fraction: float) -> str:
    """``split`` when forced (rows of an eval file), else ``eval`` when ``hash_fraction(id)`` is below
    ``eval_fraction``."""
    return split or ("eval" if hash_fraction(sample_id) < eval_fraction else "train")
