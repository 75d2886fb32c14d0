"""DPO data on Ray Data: preference rows -> tokenized pairs -> reference log-probs -> the training stream.

1. :func:`tokenize_pairs` (``map_batches``): the prompt through the chat template with the generation
   prompt; each completion is what the template adds for an assistant turn holding it (end-of-turn
   token included), found as the tokens after the longest common prefix with the prompt. The
   truncation rule of :class:`~aloe_train.dpo.config.DPODataConfig` applies; every row gets a status.
2. :class:`ReferenceLogProbs` (``map_batches`` with an actor pool): the frozen reference model, loaded
   once per actor, adds ``ref_chosen_logps`` / ``ref_rejected_logps`` (sums over completion tokens) as
   columns next to the pairs, so training holds only the policy in memory.
3. :func:`prepare_dpo_data`: counts, the train stream over all epochs padded with zero-weight pairs to
   a multiple of the worker count, eval pairs, and the :class:`~aloe_train.batching.StepPlan`.

On the workers, :func:`collate_pairs` builds the ``[chosen..., rejected...]`` batch every DPO
implementation uses (TRL's layout), right-padded, with a completion mask.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from aloe_core.errors import InputError
from aloe_core.shards import resolve_inputs
from aloe_core.storage import local_copy
from aloe_train.shared.stream import (
    DataFacts,
    PreparedData,
    epoch_stream,
    pad_to_workers,
    plan_steps,
    read_shards,
)
from aloe_train.shared.tokenizer import (
    assign_split,
    content_id,
    load_tokenizer,
    resolve_chat_template,
    training_tokenizer,
)

if TYPE_CHECKING:
    import ray.data
    import torch

    from aloe_train.dpo.config import DPOStageConfig

logger = logging.getLogger("aloe.train")

KEPT = ("ok", "truncated_prompt", "truncated_completion", "truncated_both")
DROPPED = ("dropped_invalid_row", "dropped_empty_completion", "dropped_identical_after_truncation")
NOT_SELECTED = "not_selected"  # excluded by data.where (not a defect; counted apart from drops)
PAIRS_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("split", pa.string()),
        ("status", pa.string()),
        ("prompt_ids", pa.list_(pa.int32())),
        ("chosen_ids", pa.list_(pa.int32())),
        ("rejected_ids", pa.list_(pa.int32())),
        ("weight", pa.float32()),  # 1 for a real pair, 0 for padding pairs (no loss, no gradient)
    ]
)


# ----------------------------------------------------------------------------------------- tokenize
def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def truncate_pair(
    prompt: list[int],
    chosen: list[int],
    rejected: list[int],
    *,
    max_length: int,
    max_prompt_length: int,
    bos_id: int | None,
) -> tuple[list[int], list[int], list[int], str]:
    """The truncation rule (see :class:`~aloe_train.dpo.config.DPODataConfig`); returns the pieces and a
    status: ``ok``, ``truncated_prompt``, ``truncated_completion``, ``truncated_both``, or
    ``dropped_identical_after_truncation``."""
    cut_prompt = len(prompt) > max_prompt_length
    if cut_prompt:
        keep_bos = bos_id is not None and prompt[0] == bos_id
        tail = max_prompt_length - int(keep_bos)
        prompt = (prompt[:1] if keep_bos else []) + prompt[len(prompt) - tail :]
    budget = max_length - len(prompt)
    cut_completion = len(chosen) > budget or len(rejected) > budget
    chosen, rejected = chosen[:budget], rejected[:budget]
    if chosen == rejected:
        return prompt, chosen, rejected, "dropped_identical_after_truncation"
    status = {
        (False, False): "ok",
        (True, False): "truncated_prompt",
        (False, True): "truncated_completion",
        (True, True): "truncated_both",
    }[(cut_prompt, cut_completion)]
    return prompt, chosen, rejected, status


def _valid_row(prompt: Any, chosen: Any, rejected: Any) -> bool:
    return (
        isinstance(prompt, list)
        and bool(prompt)
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt)
        and isinstance(chosen, str)
        and isinstance(rejected, str)
    )


def tokenize_pairs(
    table: pa.Table,
    *,
    tokenizer_path: str,
    chat_template: str | None,
    max_length: int,
    max_prompt_length: int,
    eval_fraction: float,
    split: str | None,
    where: dict[str, list[str]] | None = None,
) -> pa.Table:
    """Ray Data ``map_batches`` function: preference rows -> one row of :data:`PAIRS_SCHEMA` each.

    Dropped rows keep their status and empty token lists, so they can be counted.
    """
    tokenizer = load_tokenizer(tokenizer_path, chat_template)
    prompts = table.column("prompt").to_pylist()
    chosen = table.column("chosen").to_pylist()
    rejected = table.column("rejected").to_pylist()
    ids = [str(x) for x in table.column("id").to_pylist()] if "id" in table.column_names else None
    selected = _selected(table, where)
    valid = [
        i for i in range(table.num_rows) if selected[i] and _valid_row(prompts[i], chosen[i], rejected[i])
    ]

    def encode(conversations: list[list[dict[str, str]]], generation_prompt: bool) -> list[list[int]]:
        if not conversations:
            return []
        out = tokenizer.apply_chat_template(
            conversations, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
        )
        return [list(x) for x in out["input_ids"]]

    plain = [[{"role": m["role"], "content": m["content"]} for m in prompts[i]] for i in valid]
    prompt_ids = encode(plain, True)
    with_chosen = encode(
        [[*p, {"role": "assistant", "content": chosen[i]}] for p, i in zip(plain, valid, strict=False)], False
    )
    with_rejected = encode(
        [[*p, {"role": "assistant", "content": rejected[i]}] for p, i in zip(plain, valid, strict=False)],
        False,
    )
    encoded = {i: (p, c, r) for i, p, c, r in zip(valid, prompt_ids, with_chosen, with_rejected, strict=True)}
    rows: dict[str, list[Any]] = {name: [] for name in PAIRS_SCHEMA.names}
    for i in range(table.num_rows):
        sample_id = ids[i] if ids else content_id([prompts[i], chosen[i], rejected[i]])
        p, c, r, status = [], [], [], "dropped_invalid_row" if selected[i] else NOT_SELECTED
        if i in encoded:
            p, full_c, full_r = encoded[i]
            c, r = full_c[_common_prefix(p, full_c) :], full_r[_common_prefix(p, full_r) :]
            if not c or not r:
                status = "dropped_empty_completion"
            else:
                p, c, r, status = truncate_pair(
                    p,
                    c,
                    r,
                    max_length=max_length,
                    max_prompt_length=max_prompt_length,
                    bos_id=tokenizer.bos_token_id,
                )
        rows["sample_id"].append(sample_id)
        rows["split"].append(assign_split(sample_id, split, eval_fraction))
        rows["status"].append(status)
        kept = status in KEPT
        rows["prompt_ids"].append(p if kept else [])
        rows["chosen_ids"].append(c if kept else [])
        rows["rejected_ids"].append(r if kept else [])
        rows["weight"].append(1.0 if kept else 0.0)
    return pa.Table.from_pydict(rows, schema=PAIRS_SCHEMA)


def _selected(table: pa.Table, where: dict[str, list[str]] | None) -> list[bool]:
    """Per row: does its ``meta`` (aloe's JSON string) match every key of ``where``?"""
    if not where:
        return [True] * table.num_rows
    if "meta" not in table.column_names:
        raise InputError("data.where is set but the preference rows have no `meta` column")
    metas = [json.loads(m) if m else {} for m in table.column("meta").to_pylist()]
    return [all(str(meta.get(k)) in values for k, values in where.items()) for meta in metas]


def kept_split(table: pa.Table, *, split: str) -> pa.Table:
    """Ray Data ``map_batches`` function: the kept pairs of one split."""
    import pyarrow.compute as pc

    keep = pc.and_(pc.equal(table["split"], split), pc.is_in(table["status"], pa.array(KEPT)))
    return table.filter(keep)


def padding_pairs(count: int, pad_id: int) -> pa.Table:
    """``count`` zero-weight pairs (one pad token each) that even out the split across workers."""
    return pa.Table.from_pydict(
        {
            "sample_id": [""] * count,
            "split": ["padding"] * count,
            "status": ["padding"] * count,
            "prompt_ids": [[pad_id]] * count,
            "chosen_ids": [[pad_id]] * count,
            "rejected_ids": [[pad_id]] * count,
            "weight": [0.0] * count,
            "ref_chosen_logps": [0.0] * count,
            "ref_rejected_logps": [0.0] * count,
        },
        schema=PAIRS_SCHEMA.append(pa.field("ref_chosen_logps", pa.float64())).append(
            pa.field("ref_rejected_logps", pa.float64())
        ),
    )


# ------------------------------------------------------------------------------------------ collate
def collate_pairs(table: pa.Table, pad_id: int) -> dict[str, Any]:
    """Pairs -> ``input_ids``, ``attention_mask``, ``completion_mask`` of shape [2B, T] (rows 0..B-1 are
    prompt + chosen, rows B..2B-1 prompt + rejected, right-padded), plus ``ref_chosen_logps``,
    ``ref_rejected_logps``, ``weight`` ([B]) and the loop's bookkeeping (``n_tokens``, ``rows``,
    ``slots``, ``sample_ids``)."""
    import torch

    prompts = table["prompt_ids"].to_pylist()
    sequences, completion_lengths = [], []
    for key in ("chosen_ids", "rejected_ids"):
        for prompt, completion in zip(prompts, table[key].to_pylist(), strict=True):
            sequences.append(prompt + completion)
            completion_lengths.append(len(completion))
    width = max(len(s) for s in sequences)
    n = len(sequences)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    completion = np.zeros((n, width), dtype=np.int64)
    for row, (seq, c_len) in enumerate(zip(sequences, completion_lengths, strict=True)):
        input_ids[row, : len(seq)] = seq
        attention[row, : len(seq)] = 1
        completion[row, len(seq) - c_len : len(seq)] = 1
    weight = table["weight"].to_numpy().astype(np.float32)
    real = weight > 0
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention),
        "completion_mask": torch.from_numpy(completion),
        "ref_chosen_logps": torch.from_numpy(table["ref_chosen_logps"].to_numpy().astype(np.float64)),
        "ref_rejected_logps": torch.from_numpy(table["ref_rejected_logps"].to_numpy().astype(np.float64)),
        "weight": float(weight.sum()),
        "pair_weight": torch.from_numpy(weight),
        "n_tokens": int(attention[np.concatenate([real, real])].sum()),
        "rows": int(real.sum()),
        "slots": int(2 * real.sum() * width),
        "sample_ids": [[sid] for sid, ok in zip(table["sample_id"].to_pylist(), real, strict=True) if ok],
    }


def sequence_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the sum of completion-token log-probs and the per-token log-probs [N, T-1].

    Logits are upcast to fp32 before the log-softmax (bf16 log-probs are too coarse for DPO margins).
    """
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1]
    per_token = torch.log_softmax(logits.float(), dim=-1).gather(2, input_ids[:, 1:, None]).squeeze(2)
    per_token = per_token * completion_mask[:, 1:]
    return per_token.sum(dim=1), per_token


# ----------------------------------------------------------------------------- reference log-probs
class ReferenceLogProbs:
    """Ray Data actor: the frozen reference model, adding ``ref_chosen_logps`` and ``ref_rejected_logps``.

    One model per actor (``concurrency`` actors, ``num_gpus`` each); batches are pairs of
    :data:`PAIRS_SCHEMA`. Runs in inference mode in fp32 on CPU, bf16 weights with fp32 log-softmax on GPU.
    """

    def __init__(self, model_path: str, dtype: str, pad_id: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.model = AutoModelForCausalLM.from_pretrained(
            local_copy(model_path), dtype=getattr(torch, dtype), use_safetensors=True
        ).to(self.device)
        self.model.eval()
        self.pad_id = pad_id

    def __call__(self, table: pa.Table) -> pa.Table:
        import torch

        if table.num_rows == 0:
            return table.append_column("ref_chosen_logps", pa.array([], pa.float64())).append_column(
                "ref_rejected_logps", pa.array([], pa.float64())
            )
        zeros = pa.array(np.zeros(table.num_rows))
        batch = collate_pairs(
            table.append_column("ref_chosen_logps", zeros).append_column("ref_rejected_logps", zeros),
            self.pad_id,
        )
        with torch.inference_mode():
            sums, _ = sequence_logps(
                self.model,
                batch["input_ids"].to(self.device),
                batch["attention_mask"].to(self.device),
                batch["completion_mask"].to(self.device),
            )
        chosen, rejected = sums.double().cpu().numpy().reshape(2, -1)
        return table.append_column("ref_chosen_logps", pa.array(chosen)).append_column(
            "ref_rejected_logps", pa.array(rejected)
        )


# --------------------------------------------------------------------------------- the whole data path
def _tokenized(files: list[str], config: DPOStageConfig, split: str | None) -> ray.data.Dataset:
    ds = read_shards(files, ("id", "prompt", "chosen", "rejected", "meta"))
    return ds.map_batches(
        tokenize_pairs,
        batch_format="pyarrow",
        batch_size=512,
        fn_kwargs={
            "tokenizer_path": config.model.path,
            "chat_template": resolve_chat_template(config.model.chat_template),
            "max_length": config.data.max_length,
            "max_prompt_length": config.data.max_prompt_length,
            "eval_fraction": config.data.eval_fraction,
            "split": split,
            "where": config.data.where,
        },
    ).materialize()


def _count(tokenized: ray.data.Dataset) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for batch in tokenized.select_columns(["split", "status"]).iter_batches(
        batch_size=65536, batch_format="pyarrow"
    ):
        for row in batch.group_by(["split", "status"]).aggregate([("status", "count")]).to_pylist():
            counts[row["split"]][row["status"]] += row["status_count"]
    return {split: dict(sorted(c.items())) for split, c in sorted(counts.items())}


def _with_reference(pairs: ray.data.Dataset, config: DPOStageConfig, pad_id: int) -> ray.data.Dataset:
    ref = config.reference
    return pairs.map_batches(
        ReferenceLogProbs,
        batch_format="pyarrow",
        batch_size=ref.batch_size,
        concurrency=ref.concurrency,
        num_gpus=ref.num_gpus,
        num_cpus=ref.num_cpus,
        fn_constructor_kwargs={"model_path": config.model.path, "dtype": ref.dtype, "pad_id": pad_id},
    ).materialize()


def _token_stats(pairs: ray.data.Dataset) -> dict[str, float]:
    """Pairs, tokens and the reference's mean log-probs of the kept training pairs."""
    rows = tokens = 0
    ref_c = ref_r = 0.0
    for batch in pairs.iter_batches(batch_size=65536, batch_format="pyarrow"):
        rows += batch.num_rows
        for key in ("chosen_ids", "rejected_ids"):
            tokens += sum(
                len(p) + len(c)
                for p, c in zip(batch["prompt_ids"].to_pylist(), batch[key].to_pylist(), strict=False)
            )
        ref_c += float(np.sum(batch["ref_chosen_logps"].to_numpy()))
        ref_r += float(np.sum(batch["ref_rejected_logps"].to_numpy()))
    return {
        "pairs": rows,
        "tokens": tokens,
        "ref_chosen_logps_mean": ref_c / rows if rows else 0.0,
        "ref_rejected_logps_mean": ref_r / rows if rows else 0.0,
    }


def prepare_dpo_data(config: DPOStageConfig, world_size: int) -> PreparedData:
    """Tokenize, truncate, add reference log-probs, plan the steps (driver; executes on the cluster).

    Raises:
        InputError: inputs missing, tokenizer unusable, or no pair left.
    """
    import ray.data

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    _, pad_id = training_tokenizer(config.model.path, config.model.chat_template)
    source = resolve_inputs(config.data.path, kind="preference")
    tokenized = _tokenized(source.files, config, None)
    stats: dict[str, Any] = {"source": source.provenance, "rows": _count(tokenized)}
    train = tokenized.map_batches(kept_split, batch_format="pyarrow", fn_kwargs={"split": "train"})
    if config.data.shuffle:
        train = train.random_shuffle(seed=config.train.seed)
    train = _with_reference(train, config, pad_id)
    stats["train_pairs"] = _token_stats(train)
    if stats["train_pairs"]["pairs"] == 0:
        raise InputError(f"{config.data.path}: no preference pair left after dropping rows ({stats['rows']})")
    eval_ds, eval_rows = _eval_pairs(config, tokenized, stats, world_size, pad_id)
    plan = plan_steps(stats["train_pairs"]["pairs"], config.train, world_size)
    stats["plan"] = plan.as_dict()
    stream = epoch_stream(train, plan, config.train, config.data.shuffle, lambda n: padding_pairs(n, pad_id))
    return PreparedData(stream, eval_ds, DataFacts(plan, eval_rows, None, stats))


def _eval_pairs(
    config: DPOStageConfig, tokenized: ray.data.Dataset, stats: dict[str, Any], world_size: int, pad_id: int
) -> tuple[ray.data.Dataset | None, int]:

    if config.data.eval_path is not None:
        source = resolve_inputs(config.data.eval_path, kind="preference")
        tokenized = _tokenized(source.files, config, "eval")
        stats["eval_source"] = source.provenance
        stats["rows"]["eval"] = _count(tokenized).get("eval", {})
    elif config.data.eval_fraction == 0:
        return None, 0
    pairs = _with_reference(
        tokenized.map_batches(kept_split, batch_format="pyarrow", fn_kwargs={"split": "eval"}), config, pad_id
    )
    count = pairs.count()
    if count == 0:
        return None, 0
    return pad_to_workers(pairs, count, world_size, lambda n: padding_pairs(n, pad_id)), count
