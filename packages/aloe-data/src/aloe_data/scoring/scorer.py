"""DEITA's expected score from a causal LM with transformers, batched.

DEITA reads a score as the model's next-token distribution after the prompt, restricted to the tokens
"1".."6": ``p = softmax(logits[ids("1".."6")])``, ``score = sum(p_i * i)``. DEITA computes it one prompt
at a time with ``generate``; :class:`LogitScorer` does one prefill-only forward per micro-batch instead:

* prompts are sorted by length and grouped so a forward pass holds at most ``max_batch_tokens`` padded
  tokens (a Ray batch of similar-length prompts is one forward);
* padding is on the left with ``position_ids = cumsum(mask) - 1``, so every prompt sees exactly the
  positions it has alone and its last real token is the last column;
* only that column's logits are computed (``logits_to_keep=1``), not ``batch x length x vocab``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aloe_core.errors import AloeError
from aloe_data.scoring.prompts import SCORE_TOKENS

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_score_ids(tokenizer: Any, tokens: Sequence[str] = SCORE_TOKENS, where: str = "") -> list[int]:
    """The vocabulary id of each score token.

    A token resolves when encoding it alone (no special tokens) gives exactly one id, or, for
    SentencePiece vocabularies that prefix a word-start marker (Llama 2: "1" -> ["▁", "1"]), when the
    vocabulary holds the bare string as one token (the id DEITA's Llama scorer hard-codes).

    Raises:
        AloeError: a token is neither; the message names the token and what it encodes to.
    """
    ids = []
    unk = getattr(tokenizer, "unk_token_id", None)
    for token in tokens:
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) == 1:
            ids.append(int(encoded[0]))
            continue
        direct = tokenizer.convert_tokens_to_ids(token)
        if isinstance(direct, int) and direct != unk and direct >= 0:
            ids.append(direct)
            continue
        raise AloeError(
            f"{where or 'scorer tokenizer'}: score token {token!r} is not a single token (it encodes to "
            f"{len(encoded)} ids {encoded}); use a scorer model whose tokenizer has single-token digits "
            "or set score_tokens"
        )
    if len(set(ids)) != len(ids):
        raise AloeError(
            f"{where or 'scorer tokenizer'}: score tokens {list(tokens)} map to repeated ids {ids}"
        )
    return ids


def expected_from_logits(logits: np.ndarray) -> np.ndarray:
    """``sum_i softmax(logits)_i * i`` over the last axis, with scores 1..n; float64 for stability."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ np.arange(1, logits.shape[-1] + 1, dtype=np.float64)


def torch_dtype(name: str, device: str):
    """bf16 on GPU and fp32 on CPU for ``auto``; otherwise the named dtype."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def micro_batches(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Indices grouped longest first so that ``len(group) * longest <= max_batch_tokens`` (a prompt
    longer than the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        # Sorted descending: the group's first member is its longest.
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_batch_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class LogitScorer:
    """A causal LM that turns token-id prompts into DEITA expected scores.

    Args:
        model_path: local Hugging Face folder (safetensors weights only).
        device: ``cpu`` or ``cuda[:n]``.
        dtype: one of :data:`DTYPES`.
        trust_remote_code: passed to ``from_pretrained`` (off unless the config turns it on).
        max_batch_tokens: padded tokens per forward pass at most.
        score_tokens: the strings whose logits are read, lowest score first.

    Raises:
        AloeError: the folder is missing, has no fast tokenizer, or a score token is not one token.
    """

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        max_batch_tokens: int = 16384,
        score_tokens: Sequence[str] = SCORE_TOKENS,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not Path(model_path).is_dir():
            raise AloeError(f"{model_path}: scorer model folder not found (a local folder is required)")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        if not getattr(self.tokenizer, "is_fast", False):
            raise AloeError(f"{model_path}: the scorer needs a fast tokenizer (tokenizer.json)")
        self.score_ids = resolve_score_ids(self.tokenizer, score_tokens, model_path)
        self.device = device
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path,
            dtype=torch_dtype(dtype, device),
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        ).to(device)
        self.model.eval()
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))
        self.max_batch_tokens = max_batch_tokens
        self._keep_last = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def score_logits(self, prompts: list[list[int]]) -> np.ndarray:
        """The six score-token logits (float32) after each prompt, shape ``(len(prompts), 6)``."""
        out = np.zeros((len(prompts), len(self.score_ids)), dtype=np.float32)
        for group in micro_batches([len(p) for p in prompts], self.max_batch_tokens):
            out[group] = self._forward([prompts[i] for i in group])
        return out

    def expected_scores(self, prompts: list[list[int]]) -> np.ndarray:
        """DEITA's expected score (1..6) of each prompt, float64."""
        if not prompts:
            return np.zeros(0, dtype=np.float64)
        return expected_from_logits(self.score_logits(prompts))

    def _forward(self, prompts: list[list[int]]) -> np.ndarray:
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._keep_last else {}
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=False,
                **kwargs,
            ).logits[:, -1, :]
            picked = logits[:, self.score_ids].float().cpu().numpy()
        return picked
