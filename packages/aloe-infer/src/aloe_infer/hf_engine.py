"""The transformers engine: batched decoding with left padding and a KV cache, on CPU or one GPU.

Why its own decoding loop rather than ``model.generate``: every request carries its own seed, and a
request's sample must depend only on (prompt, seed), not on which other rows share its batch. That is
what makes a resumed or retried job regenerate the same text, and ``generate`` draws from one global
random stream per batch. The loop:

* sorts sequences by prompt length and groups them into batches of at most ``max_batch_size``
  sequences and ``max_batch_tokens`` padded tokens (prompt + ``max_tokens``);
* pads on the left with ``position_ids = cumsum(mask) - 1`` so each prompt sees the positions it has
  alone, and computes only the last position's logits (``logits_to_keep=1``);
* decodes one token per step from the model's ``DynamicCache``; finished sequences are removed from the
  cache (``batch_select_indices``) so late steps run on the rows still generating;
* samples with one ``torch.Generator`` per sequence by inverse-CDF (one uniform draw per token), which
  keeps the per-row random stream independent of the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aloe_core.schemas import stable_id
from aloe_infer.batching import left_padded
from aloe_infer.engine import Engine, EngineConfig, first_stop
from aloe_infer.hf_model import load_hf_model
from aloe_infer.sampling import Completion, FinishReason, GenerationResult, SamplingParams

logger = logging.getLogger(__name__)


def sample_seed(seed: int, sample: int) -> int:
    """The generator seed of completion ``sample`` of a request seeded ``seed`` (sample 0: the seed)."""
    return seed if sample == 0 else int(stable_id("sample", seed, sample)[:8], 16)


@dataclass
class _Sequence:
    """One completion being decoded: which request/sample it belongs to, and its state."""

    request: int
    sample: int
    prompt: list[int]
    params: SamplingParams
    seed: int
    tokens: list[int] = field(default_factory=list)
    logprobs: list[dict[int, float]] = field(default_factory=list)
    cumulative: float = 0.0
    finish: FinishReason | None = None
    stop_reason: str | None = None


class HFEngine(Engine):
    """See the module docstring. Raises InputError if the model folder is missing."""

    name = "hf"

    def __init__(self, config: EngineConfig) -> None:
        import torch

        super().__init__(config)
        loaded = load_hf_model(config)
        self.model, self.tokenizer, self.device = loaded.model, loaded.tokenizer, loaded.device
        model_len = getattr(self.model.config, "max_position_embeddings", None)
        self.max_model_len = int(config.max_model_len or model_len or self.tokenizer.model_max_length)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids))
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._generator = torch.Generator().manual_seed(config.seed)

    def close(self) -> None:
        self.model = None

    def _generate(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[GenerationResult]:
        import torch

        for p in params:
            if p.allowed_token_ids is not None and max(p.allowed_token_ids) >= self.vocab_size:
                raise ValueError(f"allowed_token_ids holds ids >= the vocabulary size {self.vocab_size}")
        sequences = []
        for i, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
            seed = p.seed
            if seed is None:
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator))
            sequences += [_Sequence(i, j, prompt, p, sample_seed(seed, j)) for j in range(p.n)]
        for batch in self._batches(sequences):
            self._decode(batch)
        completions: list[list[Completion]] = [[] for _ in prompts]
        for seq in sequences:  # built in (request, sample) order
            completions[seq.request].append(self._completion(seq))
        return [
            GenerationResult(tuple(prompt), tuple(c)) for prompt, c in zip(prompts, completions, strict=True)
        ]

    def _batches(self, sequences: list[_Sequence]) -> list[list[_Sequence]]:
        """Longest prompts first; a batch costs ``len * (longest prompt + largest max_tokens)`` tokens."""
        order = sorted(sequences, key=lambda s: -len(s.prompt))
        batches: list[list[_Sequence]] = []
        for seq in order:
            if batches:
                batch = batches[-1]
                width = len(batch[0].prompt) + max(s.params.max_tokens for s in [*batch, seq])
                if len(batch) < self.config.max_batch_size and width * (len(batch) + 1) <= (
                    self.config.max_batch_tokens
                ):
                    batch.append(seq)
                    continue
            batches.append([seq])
        return batches

    def _decode(self, batch: list[_Sequence]) -> None:
        """Run ``batch`` to completion, filling each sequence's tokens, logprobs and finish reason."""
        import torch

        ids, mask, positions = left_padded([seq.prompt for seq in batch], self.pad_id)
        generators = [torch.Generator().manual_seed(seq.seed) for seq in batch]
        active = list(range(len(batch)))
        with torch.inference_mode():
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=True,
                logits_to_keep=1,
            )
            next_pos = positions[:, -1] + 1
            while True:
                seqs = [batch[i] for i in active]
                chosen = self._choose(out.logits[:, -1, :], seqs, [generators[i] for i in active])
                keep = [k for k, i in enumerate(active) if not self._advance(batch[i], chosen[k])]
                if not keep:
                    return
                cache = out.past_key_values
                if len(keep) < len(active):
                    index = torch.tensor(keep, dtype=torch.long)
                    cache.batch_select_indices(index.to(self.device))
                    mask, next_pos = mask[index], next_pos[index]
                    active = [active[k] for k in keep]
                    chosen = [chosen[k] for k in keep]
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
                out = self.model(
                    input_ids=torch.tensor(chosen, dtype=torch.long)[:, None].to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=next_pos[:, None].to(self.device),
                    past_key_values=cache,
                    use_cache=True,
                )
                next_pos = next_pos + 1

    def _choose(self, logits: Any, seqs: list[_Sequence], generators: list[Any]) -> list[int]:
        """The next token of each sequence (greedy or seeded sampling), recording logprobs if asked."""
        import torch

        logits = logits.float()
        wants_logprobs = any(s.params.logprobs is not None for s in seqs)
        raw_logprobs = torch.log_softmax(logits, dim=-1) if wants_logprobs else None
        logits = _restrict(logits, seqs)
        chosen = logits.argmax(dim=-1)
        sampled = [k for k, s in enumerate(seqs) if not s.params.greedy]
        if sampled:
            rows = torch.tensor(sampled, dtype=torch.long)
            probs = _filtered_probs(logits[rows], [seqs[k].params for k in sampled])
            draws = torch.cat([torch.rand(1, generator=generators[k]) for k in sampled]).to(probs.device)
            cdf = probs.cumsum(dim=-1)
            picks = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True).squeeze(1)
            chosen[rows.to(chosen.device)] = picks.clamp(max=probs.shape[-1] - 1)
        chosen_list = [int(t) for t in chosen.cpu()]
        if raw_logprobs is not None:
            _record_logprobs(raw_logprobs, seqs, chosen_list)
        return chosen_list

    def _advance(self, seq: _Sequence, token: int) -> bool:
        """Append ``token`` to ``seq``; True if the sequence is finished."""
        seq.tokens.append(token)
        p = seq.params
        if not p.ignore_eos and token in self.eos_ids:
            seq.finish = "stop"
            return True
        if p.stop:
            # A stop string ends within the last few tokens; decoding only the tail keeps this O(1).
            window = max(len(s) for s in p.stop) + 2
            tail = self.tokenizer.decode(seq.tokens[-window:], skip_special_tokens=True)
            hit = first_stop(tail, p.stop)
            if hit is not None:
                seq.finish, seq.stop_reason = "stop", hit[1]
                return True
        if len(seq.tokens) >= p.max_tokens:
            seq.finish = "length"
            return True
        return False

    def _completion(self, seq: _Sequence) -> Completion:
        tokens = seq.tokens
        ended_on_eos = seq.finish == "stop" and seq.stop_reason is None
        text = self.tokenizer.decode(tokens[:-1] if ended_on_eos else tokens, skip_special_tokens=True)
        # A byte-level model cut mid-character decodes its last bytes as U+FFFD; vLLM's incremental
        # detokenizer holds such bytes back, so both engines drop them.
        text = text.rstrip("\ufffd")
        if seq.stop_reason is not None:
            hit = first_stop(text, seq.params.stop)
            if hit is not None:
                text = text[: hit[0]]
        want = seq.params.logprobs is not None
        return Completion(
            text=text,
            token_ids=tuple(tokens),
            finish_reason=seq.finish or "length",
            stop_reason=seq.stop_reason,
            logprobs=tuple(seq.logprobs) if want else None,
            cumulative_logprob=seq.cumulative if want else None,
        )


def _record_logprobs(raw_logprobs: Any, seqs: list[_Sequence], chosen: list[int]) -> None:
    """Append this step's logprobs (top ``k`` plus the chosen token) to the sequences that asked."""
    for k, seq in enumerate(seqs):
        want = seq.params.logprobs
        if want is None:
            continue
        token = chosen[k]
        entry = {token: float(raw_logprobs[k, token])}
        if want:
            values, indices = raw_logprobs[k].topk(want)
            entry.update({int(i): float(v) for v, i in zip(values.cpu(), indices.cpu(), strict=True)})
        seq.logprobs.append(entry)
        seq.cumulative += entry[token]


def _restrict(logits: Any, seqs: list[_Sequence]) -> Any:
    """Logits with every token outside a sequence's ``allowed_token_ids`` set to -inf."""
    import torch

    limited = [k for k, s in enumerate(seqs) if s.params.allowed_token_ids is not None]
    if not limited:
        return logits
    logits = logits.clone()
    for k in limited:
        allowed = torch.tensor(seqs[k].params.allowed_token_ids, dtype=torch.long, device=logits.device)
        row = torch.full_like(logits[k], float("-inf"))
        row[allowed] = logits[k, allowed]
        logits[k] = row
    return logits


def _filtered_probs(logits: Any, params: Sequence[SamplingParams]) -> Any:
    """Softmax of ``logits / temperature`` after top-k and top-p, one row per sequence."""
    import torch

    temps = torch.tensor([p.temperature for p in params], dtype=logits.dtype, device=logits.device)
    logits = logits / temps[:, None]
    for k, p in enumerate(params):
        if 0 < p.top_k < logits.shape[-1]:
            kth = logits[k].topk(p.top_k).values[-1]
            logits[k] = logits[k].masked_fill(logits[k] < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    top_p = torch.tensor([p.top_p for p in params], dtype=probs.dtype, device=probs.device)
    if bool((top_p < 1).any()):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the mass before it already reaches top_p (the most likely token always stays).
        drop = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p[:, None]
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return probs / probs.sum(dim=-1, keepdim=True)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence ids from the generation config (Llama 3 lists several) and the tokenizer."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids
