"""Next-token log-probabilities of chosen candidate tokens: one protocol, a transformers and a vLLM backend.

Several jobs read a model's answer as its next-token distribution after a prompt, restricted to a few
candidate tokens: DEITA's scorers read "1".."6" (expected score), zero-shot multiple choice reads the
option letters "A".."E" (argmax). Both need, per prompt, the log-probability of each candidate at the
next position and nothing else, so :class:`NextTokenScorer` returns exactly that:

    ``candidate_logprobs(prompts, candidate_ids)[i, j] = log p(candidate_ids[j] | prompts[i])``

an array of shape ``(len(prompts), len(candidate_ids))``, float64, where ``p`` is the softmax over the
*full* vocabulary (the model's raw distribution: no temperature, no restriction). Log-probabilities
rather than logits because vLLM returns those and they are comparable across backends; the softmax over
the candidates alone (what DEITA and letter scoring use) is the same from either, since a log-softmax
only shifts every token of a row by the same constant.

Backends (same token ids in, same numbers out up to float noise; ``tests/infer`` checks both):

* :class:`HFNextTokenScorer` (transformers): one prefill-only forward per micro-batch. Prompts are
  sorted by length and grouped so a forward holds at most ``max_batch_tokens`` padded tokens; padding is
  on the left with ``position_ids = cumsum(mask) - 1``, so every prompt sees exactly the positions it has
  alone and its last real token is the last column; only that column's logits are computed
  (``logits_to_keep=1``), not ``batch x length x vocab``.
* :class:`VllmNextTokenScorer` (vLLM): one greedy output token per prompt with
  ``SamplingParams(logprob_token_ids=...)``, which returns the raw log-probabilities of exactly the
  candidates at that position.

:func:`build_scorer` loads either from an :class:`~aloe_infer.engine.EngineConfig`;
:func:`resolve_candidate_ids` turns candidate strings into the single vocabulary ids the scorers take.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aloe_core.errors import AloeError
from aloe_infer.batching import left_padded, micro_batches
from aloe_infer.engine import EngineConfig, model_files
from aloe_infer.vllm_import import import_vllm

TokenPrompts = Sequence[Sequence[int]]


@runtime_checkable
class NextTokenScorer(Protocol):
    """Log-probabilities of candidate tokens at the position after each token-id prompt.

    ``tokenizer`` is the Hugging Face tokenizer of the model: build prompts and resolve candidates with
    it (:func:`resolve_candidate_ids`) so the ids mean what the model reads.
    """

    tokenizer: Any

    def candidate_logprobs(self, prompts: TokenPrompts, candidate_ids: Sequence[int]) -> np.ndarray:
        """``[i, j] = log p(candidate_ids[j] | prompts[i])`` under the full-vocabulary softmax; float64,
        shape ``(len(prompts), len(candidate_ids))``, rows in prompt order."""
        ...

    def close(self) -> None:
        """Release the model (a scorer that wraps a caller's model or engine leaves it alone)."""
        ...


def resolve_candidate_ids(
    tokenizer: Any,
    tokens: Sequence[str],
    *,
    where: str = "tokenizer",
    label: str = "candidate token",
    hint: str = "choose candidates that are single tokens of this vocabulary",
) -> list[int]:
    """The vocabulary id of each candidate string, in order.

    A string resolves when encoding it alone (no special tokens) gives exactly one id, or, for
    SentencePiece vocabularies that prefix a word-start marker (Llama 2: "1" -> ["▁", "1"]), when the
    vocabulary holds the bare string as one token (the id DEITA's Llama scorer hard-codes). Whether a
    leading space belongs to the candidate (" A" vs "A") is the caller's choice: it depends on how the
    prompt ends.

    Args:
        where: names the model in error messages (its folder).
        label, hint: how error messages call a candidate and what they suggest (DEITA: "score token").

    Raises:
        AloeError: a string is neither (the message names it and what it encodes to), or two strings map
            to the same id.
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
            f"{where}: {label} {token!r} is not a single token (it encodes to {len(encoded)} ids "
            f"{encoded}); {hint}"
        )
    if len(set(ids)) != len(ids):
        raise AloeError(f"{where}: {label}s {list(tokens)} map to repeated ids {ids}")
    return ids


class HFNextTokenScorer:
    """:class:`NextTokenScorer` over a transformers causal LM (see the module docstring for the batching).

    Args:
        model: a loaded causal LM in eval mode (e.g. :func:`aloe_infer.hf_model.load_hf_model`, or the
            ``model`` of a running :class:`~aloe_infer.hf_engine.HFEngine`).
        tokenizer: its tokenizer.
        device: where ``model`` sits.
        max_batch_tokens: padded tokens per forward pass at most.
    """

    def __init__(self, model: Any, tokenizer: Any, *, device: str, max_batch_tokens: int = 16384) -> None:
        if max_batch_tokens < 1:
            raise ValueError("max_batch_tokens must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_batch_tokens = max_batch_tokens
        pad = tokenizer.pad_token_id
        # Any id will do: padded positions are masked out and sit left of every real token.
        self.pad_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))
        self._keep_last = "logits_to_keep" in inspect.signature(model.forward).parameters

    @classmethod
    def load(cls, config: EngineConfig, *, max_batch_tokens: int | None = None) -> HFNextTokenScorer:
        """Load ``config.model`` (device, dtype, ``trust_remote_code`` from ``config``; the forward budget
        ``max_batch_tokens``, default ``config.max_batch_tokens``). Raises InputError if the folder is
        missing."""
        from aloe_infer.hf_model import load_hf_model

        loaded = load_hf_model(config)
        budget = max_batch_tokens or config.max_batch_tokens
        return cls(loaded.model, loaded.tokenizer, device=loaded.device, max_batch_tokens=budget)

    def candidate_logprobs(self, prompts: TokenPrompts, candidate_ids: Sequence[int]) -> np.ndarray:
        for i, prompt in enumerate(prompts):
            if len(prompt) == 0:
                raise ValueError(f"prompt {i} is empty: a next-token score needs at least one token")
        out = np.zeros((len(prompts), len(candidate_ids)), dtype=np.float64)
        for group in micro_batches([len(p) for p in prompts], self.max_batch_tokens):
            out[group] = self._forward([prompts[i] for i in group], list(candidate_ids))
        return out

    def _forward(self, prompts: list[Sequence[int]], candidate_ids: list[int]) -> np.ndarray:
        import torch

        ids, mask, positions = left_padded(prompts, self.pad_id)
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._keep_last else {}
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=False,
                **kwargs,
            ).logits[:, -1, :]
            # float64 for the normalisation: a bf16 model's logits lose nothing more here.
            logprobs = torch.log_softmax(logits.double(), dim=-1)
            index = torch.tensor(candidate_ids, dtype=torch.long, device=logprobs.device)
            return logprobs[:, index].cpu().numpy()

    def close(self) -> None:
        self.model = None


class VllmNextTokenScorer:
    """:class:`NextTokenScorer` over an offline ``vllm.LLM``.

    Args:
        llm: the running engine.
        tokenizer: the model's Hugging Face tokenizer (prompts built with it reach vLLM as token ids).
        owned: whether :meth:`close` shuts ``llm`` down (False for an engine the caller shares).

    Raises:
        MissingExtraError: vllm is not installed.
    """

    def __init__(self, llm: Any, tokenizer: Any, *, owned: bool = False) -> None:
        self._vllm = import_vllm()
        self.llm = llm
        self.tokenizer = tokenizer
        self._owned = owned

    @classmethod
    def load(cls, config: EngineConfig, *, llm: Any = None) -> VllmNextTokenScorer:
        """Start ``config.model`` with the engine arguments the vLLM engine uses
        (:func:`aloe_infer.vllm_engine.engine_args`), or wrap ``llm`` (a running engine serving that
        model, left running by :meth:`close`).

        Raises:
            MissingExtraError: vllm is not installed. InputError: the model folder is missing.
        """
        from transformers import AutoTokenizer

        from aloe_infer.vllm_engine import engine_args

        vllm = import_vllm()
        path = model_files(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code)
        owned = llm is None
        if owned:
            llm = vllm.LLM(**engine_args(config))
        return cls(llm, tokenizer, owned=owned)

    def candidate_logprobs(self, prompts: TokenPrompts, candidate_ids: Sequence[int]) -> np.ndarray:
        out = np.zeros((len(prompts), len(candidate_ids)), dtype=np.float64)
        if not prompts:
            return out
        ids = [int(i) for i in candidate_ids]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=ids)
        inputs = [{"prompt_token_ids": [int(t) for t in p]} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        for row, result in enumerate(outputs):
            position = result.outputs[0].logprobs[0]
            out[row] = [position[i].logprob for i in ids]
        return out

    def close(self) -> None:
        if self._owned and self.llm is not None:
            self.llm.llm_engine.engine_core.shutdown()
        self.llm = None


def build_scorer(
    config: EngineConfig, *, llm: Any = None, max_batch_tokens: int | None = None
) -> NextTokenScorer:
    """The scorer ``config.type`` names, loaded; ``llm`` wraps a running ``vllm.LLM`` (vllm only);
    ``max_batch_tokens`` is the hf scorer's padded tokens per forward (default: the engine's).

    Raises:
        InputError: the model folder is missing. MissingExtraError: vllm is not installed.
    """
    for key, value in config.env.items():  # as load_engine does: before anything loads
        os.environ[key] = value
    if config.type == "vllm":
        return VllmNextTokenScorer.load(config, llm=llm)
    if llm is not None:
        raise ValueError("llm is a running vLLM engine; it needs `type: vllm`")
    return HFNextTokenScorer.load(config, max_batch_tokens=max_batch_tokens)
