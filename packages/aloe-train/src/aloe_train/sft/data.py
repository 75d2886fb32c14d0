"""SFT data on Ray Data: pipeline shards -> chat-templated tokens with an assistant-only loss -> packed rows.

The path, step by step (all on the cluster, in a fixed order so every run sees the same rows):

1. :func:`aloe_core.shards.resolve_inputs` finds the Parquet files (a pipeline run folder's last stage,
   a folder, a glob).
2. :func:`tokenize_batch` applies the tokenizer's chat template; labels are the next token where the
   template's ``{% generation %}`` mask marks it as assistant text, else ``-100``. Labels are shifted
   here, per sample, so no sample ever predicts the first token of the next one in a packed row.
3. :func:`truncate_conversation` applies the truncation rule (see its docstring) and says what it did;
   rows without an assistant turn are dropped. Every outcome is counted in the data stats.
4. :func:`pack_batch` packs windows of rows into rows of at most ``max_length`` tokens with
   best-fit-decreasing (:func:`best_fit_decreasing`); per-sample ``seq_lens`` give the position ids
   that restart at 0 at each sample boundary, which is what keeps attention inside a sample.
5. :func:`prepare_sft_data` builds the training stream for all epochs, padded with zero-weight rows to
   a multiple of the worker count, and the :class:`~aloe_train.batching.StepPlan` all ranks follow.

On the workers, :func:`collate` turns the rows of a micro-batch into tensors.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute

from aloe_core.errors import InputError
from aloe_core.shards import resolve_inputs
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

    from aloe_train.sft.config import SFTConfig

logger = logging.getLogger("aloe.train")

IGNORE_INDEX = -100
KEPT = ("ok", "truncated_turns", "truncated_prompt")
DROPPED = ("dropped_no_assistant", "dropped_answer_too_long", "dropped_invalid_messages")
TOKENIZED_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("split", pa.string()),
        ("status", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("labels", pa.list_(pa.int32())),
        ("length", pa.int32()),
        ("n_trained", pa.int32()),
    ]
)
PACKED_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("labels", pa.list_(pa.int32())),
        ("seq_lens", pa.list_(pa.int32())),
        ("n_tokens", pa.int32()),
        ("n_trained", pa.int32()),
        ("sample_ids", pa.list_(pa.string())),
    ]
)


# ------------------------------------------------------------------------------------------ tokenizer
# ------------------------------------------------------------------------------------------ truncation
def assistant_spans(mask: list[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of assistant tokens (one per assistant turn)."""
    spans, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(mask)))
    return spans


def truncate_conversation(
    ids: list[int], mask: list[int], max_length: int, bos_id: int | None
) -> tuple[list[int], list[int], str]:
    """Apply the truncation rule; returns ``(ids, mask, status)``.

    Rule, in order (``status`` names the branch taken):

    * no assistant token at all -> ``dropped_no_assistant``;
    * fits in ``max_length`` -> ``ok``;
    * some assistant turn ends within ``max_length`` -> cut after the last such turn (drop trailing
      turns; the kept part is whole turns) -> ``truncated_turns``;
    * otherwise the first assistant turn is kept whole and the prompt before it loses its oldest
      tokens (a leading BOS is kept) -> ``truncated_prompt``;
    * unless that answer alone leaves no room for a prompt token -> ``dropped_answer_too_long``
      (training on a cut answer would teach the model to stop mid-sentence).
    """
    spans = assistant_spans(mask)
    if not spans:
        return [], [], "dropped_no_assistant"
    if len(ids) <= max_length:
        return ids, mask, "ok"
    ends = [end for _, end in spans if end <= max_length]
    if ends:
        cut = ends[-1]
        return ids[:cut], mask[:cut], "truncated_turns"
    start, end = spans[0]
    keep_bos = bos_id is not None and bool(ids) and ids[0] == bos_id
    room = max_length - (end - start) - int(keep_bos)
    if room < 1:
        return [], [], "dropped_answer_too_long"
    head = ids[:1] if keep_bos else []
    head_mask = mask[:1] if keep_bos else []
    first = max(start - room, int(keep_bos))
    return head + ids[first:end], head_mask + mask[first:end], "truncated_prompt"


def shifted_labels(ids: list[int], mask: list[int]) -> list[int]:
    """Label of position i = token i+1 if that token is assistant text, else -100 (last is -100)."""
    labels = [tok if m else IGNORE_INDEX for tok, m in zip(ids[1:], mask[1:], strict=True)]
    return [*labels, IGNORE_INDEX] if ids else []


def _valid_messages(messages: Any) -> bool:
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        )
    )


def tokenize_batch(
    table: pa.Table,
    *,
    tokenizer_path: str,
    max_length: int,
    eval_fraction: float,
    split: str | None,
    chat_template: str | None = None,
) -> pa.Table:
    """Ray Data ``map_batches`` function: sft rows -> one tokenized row per input row (see module doc).

    ``split`` forces every row into that split; otherwise rows go to ``eval`` when
    ``hash_fraction(id) < eval_fraction``. Dropped rows keep their ``status`` and empty token lists so
    they can be counted.
    """
    tokenizer = load_tokenizer(tokenizer_path, chat_template)
    messages = table.column("messages").to_pylist()
    if "id" in table.column_names:
        ids = [str(x) for x in table.column("id").to_pylist()]
    else:
        ids = [content_id(m) for m in messages]
    valid = [i for i, m in enumerate(messages) if _valid_messages(m)]
    encoded = (
        tokenizer.apply_chat_template(
            [messages[i] for i in valid], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        if valid
        else {"input_ids": [], "assistant_masks": []}
    )
    rows: dict[str, list[Any]] = {name: [] for name in TOKENIZED_SCHEMA.names}
    by_row = dict(zip(valid, zip(encoded["input_ids"], encoded["assistant_masks"], strict=True), strict=True))
    for i, sample_id in enumerate(ids):
        if i in by_row:
            tokens, mask, status = truncate_conversation(
                list(by_row[i][0]), list(by_row[i][1]), max_length, tokenizer.bos_token_id
            )
        else:
            tokens, mask, status = [], [], "dropped_invalid_messages"
        labels = shifted_labels(tokens, mask)
        rows["sample_id"].append(sample_id)
        rows["split"].append(assign_split(sample_id, split, eval_fraction))
        rows["status"].append(status)
        rows["input_ids"].append(tokens)
        rows["labels"].append(labels)
        rows["length"].append(len(tokens))
        rows["n_trained"].append(sum(label != IGNORE_INDEX for label in labels))
    return pa.Table.from_pydict(rows, schema=TOKENIZED_SCHEMA)


def select_split(table: pa.Table, *, split: str) -> pa.Table:
    """Ray Data ``map_batches`` function: the kept rows of one split (tokens only)."""
    import pyarrow.compute as pc

    keep = pc.and_(pc.equal(table["split"], split), pc.is_in(table["status"], pa.array(KEPT)))
    return table.filter(keep).select(["sample_id", "input_ids", "labels", "length", "n_trained"])


# ------------------------------------------------------------------------------------------- packing
class _FreeSpace:
    """Open bins grouped by free space; finds the fullest bin that still fits an item in O(log capacity).

    A segment tree over free-space values 0..capacity marks which values have open bins, so "smallest
    free space >= need" (best fit) is a walk up and down the tree.
    """

    def __init__(self, capacity: int) -> None:
        self.size = 1 << (capacity + 1).bit_length()
        self.tree = [False] * (2 * self.size)
        self.bins: dict[int, list[int]] = defaultdict(list)

    def add(self, space: int, bin_index: int) -> None:
        self.bins[space].append(bin_index)
        self._mark(space, True)

    def pop_best(self, need: int) -> tuple[int, int] | None:
        """Remove and return ``(space, bin)`` with the smallest space >= ``need``; None if none fits."""
        space = self._first_at_least(need)
        if space is None:
            return None
        bins = self.bins[space]
        bin_index = bins.pop()
        if not bins:
            self._mark(space, False)
        return space, bin_index

    def _mark(self, space: int, value: bool) -> None:
        node = space + self.size
        self.tree[node] = value
        node //= 2
        while node:
            self.tree[node] = self.tree[2 * node] or self.tree[2 * node + 1]
            node //= 2

    def _first_at_least(self, low: int) -> int | None:
        node = low + self.size
        if self.tree[node]:
            return low
        while node > 1:
            if node % 2 == 0 and self.tree[node + 1]:
                node += 1
                while node < self.size:
                    node = 2 * node if self.tree[2 * node] else 2 * node + 1
                return node - self.size
            node //= 2
        return None


def best_fit_decreasing(lengths: list[int] | np.ndarray, capacity: int) -> list[list[int]]:
    """Pack items (by index) into bins of ``capacity`` with best-fit-decreasing.

    Items are placed longest first (ties by index, so the result is deterministic) into the open bin
    with the least free space that still fits, else into a new bin. Within 11/9 OPT + 6/9 bins.

    Raises:
        ValueError: an item is longer than ``capacity`` or not positive.
    """
    lengths = [int(x) for x in lengths]
    if any(x > capacity or x < 1 for x in lengths):
        raise ValueError(f"item lengths must be in [1, {capacity}]")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free = _FreeSpace(capacity)
    for item in order:
        need = lengths[item]
        found = free.pop_best(need)
        if found is None:
            bins.append([item])
            space, bin_index = capacity - need, len(bins) - 1
        else:
            space, bin_index = found
            bins[bin_index].append(item)
            space -= need
        if space > 0:
            free.add(space, bin_index)
    return bins


def _list_values(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, offsets) of a list<int32> column, without Python lists."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy(zero_copy_only=False)
    return values, offsets


def pack_batch(table: pa.Table, *, max_length: int, seed: int, shuffle: bool) -> pa.Table:
    """Ray Data ``map_batches`` function: one window of tokenized rows -> packed rows.

    With ``shuffle`` the packed rows leave in a seeded random order (seeded by the window's first
    sample id, so it does not depend on which task packs the window); otherwise longest-first.
    """
    if table.num_rows == 0:
        return PACKED_SCHEMA.empty_table()
    bins = best_fit_decreasing(table["length"].to_numpy(), max_length)
    if shuffle:
        window_key = zlib.crc32(str(table["sample_id"][0]).encode("utf-8"))
        order = np.random.default_rng([seed, window_key]).permutation(len(bins))
        bins = [bins[i] for i in order]
    ids, offsets = _list_values(table["input_ids"])
    labels, _ = _list_values(table["labels"])
    sample_ids = table["sample_id"].to_pylist()
    trained = table["n_trained"].to_numpy()
    out: dict[str, list[Any]] = {name: [] for name in PACKED_SCHEMA.names}
    for members in bins:
        spans = [(offsets[i], offsets[i + 1]) for i in members]
        out["input_ids"].append(np.concatenate([ids[a:b] for a, b in spans]))
        out["labels"].append(np.concatenate([labels[a:b] for a, b in spans]))
        out["seq_lens"].append([int(b - a) for a, b in spans])
        out["n_tokens"].append(int(sum(b - a for a, b in spans)))
        out["n_trained"].append(int(trained[members].sum()))
        out["sample_ids"].append([sample_ids[i] for i in members])
    return pa.Table.from_pydict(out, schema=PACKED_SCHEMA)


def padding_rows(count: int, pad_id: int) -> pa.Table:
    """``count`` zero-weight rows (one pad token, no label) that even out the split across workers."""
    return pa.Table.from_pydict(
        {
            "input_ids": [[pad_id]] * count,
            "labels": [[IGNORE_INDEX]] * count,
            "seq_lens": [[1]] * count,
            "n_tokens": [0] * count,
            "n_trained": [0] * count,
            "sample_ids": [[] for _ in range(count)],
        },
        schema=PACKED_SCHEMA,
    )


# ------------------------------------------------------------------------------------------- collate
def collate(table: pa.Table, pad_id: int) -> dict[str, Any]:
    """Packed rows of one micro-batch -> tensors ``input_ids``, ``labels``, ``position_ids`` ([B, T]).

    T is the longest row in the batch; shorter rows are right-padded with ``pad_id`` and label -100,
    and the padding gets its own position ids (0, 1, ...), so it forms its own attention block and
    never mixes with real tokens. Also returns ``n_tokens`` (real tokens), ``n_trained`` (tokens with a
    label), ``rows`` and ``sample_ids`` (list per row).
    """
    import torch

    ids, offsets = _list_values(table["input_ids"])
    labels, _ = _list_values(table["labels"])
    seq_lens = table["seq_lens"].to_pylist()
    rows = table.num_rows
    width = int(max(offsets[i + 1] - offsets[i] for i in range(rows)))
    input_ids = np.full((rows, width), pad_id, dtype=np.int64)
    target = np.full((rows, width), IGNORE_INDEX, dtype=np.int64)
    positions = np.zeros((rows, width), dtype=np.int64)
    for r in range(rows):
        a, b = offsets[r], offsets[r + 1]
        input_ids[r, : b - a] = ids[a:b]
        target[r, : b - a] = labels[a:b]
        pieces = [np.arange(n) for n in seq_lens[r]]
        if width > b - a:
            pieces.append(np.arange(width - (b - a)))
        positions[r] = np.concatenate(pieces)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "labels": torch.from_numpy(target),
        "position_ids": torch.from_numpy(positions),
        "n_tokens": int(table["n_tokens"].to_numpy().sum()),
        "n_trained": int(table["n_trained"].to_numpy().sum()),
        "rows": rows,
        "sample_ids": table["sample_ids"].to_pylist(),
    }


# --------------------------------------------------------------------------------- the whole data path
def _tokenized(files: list[str], config: SFTConfig, split: str | None) -> ray.data.Dataset:
    ds = read_shards(files, ("id", "messages"))
    return ds.map_batches(
        tokenize_batch,
        batch_format="pyarrow",
        batch_size=512,
        fn_kwargs={
            "tokenizer_path": config.model.path,
            "chat_template": resolve_chat_template(config.model.chat_template),
            "max_length": config.data.max_length,
            "eval_fraction": config.data.eval_fraction,
            "split": split,
        },
    ).materialize()


def _count(tokenized: ray.data.Dataset) -> dict[str, Any]:
    """Per split: rows by status, and tokens of the kept rows (4 small columns streamed to the driver)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    columns = ["split", "status", "length", "n_trained"]
    for batch in tokenized.select_columns(columns).iter_batches(batch_size=65536, batch_format="pyarrow"):
        grouped = batch.group_by(["split", "status"]).aggregate(
            [("length", "sum"), ("n_trained", "sum"), ("status", "count")]
        )
        for row in grouped.to_pylist():
            split, status = row["split"], row["status"]
            counts[split][status] += row["status_count"]
            if status in KEPT:
                counts[split]["tokens"] += row["length_sum"]
                counts[split]["trained_tokens"] += row["n_trained_sum"]
    return {split: dict(sorted(c.items())) for split, c in sorted(counts.items())}


def _pack(rows: ray.data.Dataset, config: SFTConfig) -> ray.data.Dataset:
    data, seed = config.data, config.train.seed
    if data.shuffle:
        rows = rows.random_shuffle(seed=seed)
    return rows.map_batches(
        pack_batch,
        batch_format="pyarrow",
        batch_size=data.pack_window,
        fn_kwargs={"max_length": data.max_length, "seed": seed, "shuffle": data.shuffle},
    ).materialize()


def _packing_stats(packed: ray.data.Dataset, max_length: int) -> dict[str, Any]:
    """Rows and tokens of packed rows (two int columns streamed through the driver; no aggregation job)."""
    rows = tokens = trained = 0
    for batch in packed.select_columns(["n_tokens", "n_trained"]).iter_batches(
        batch_size=65536, batch_format="pyarrow"
    ):
        rows += batch.num_rows
        tokens += int(pa.compute.sum(batch["n_tokens"]).as_py() or 0)
        trained += int(pa.compute.sum(batch["n_trained"]).as_py() or 0)
    return {
        "packed_rows": rows,
        "tokens": tokens,
        "trained_tokens": trained,
        "padding_efficiency": tokens / (rows * max_length) if rows else 0.0,
    }


def prepare_sft_data(config: SFTConfig, world_size: int) -> PreparedData:
    """Tokenize, mask, truncate, pack; plan the steps. Runs on the driver, executes on the cluster.

    Sets ``preserve_order`` on the current Ray Data context: row order, packing windows and the split
    across workers must be the same on every run for resumed runs to match uninterrupted ones.

    Raises:
        InputError: inputs missing, tokenizer unusable, or no trainable row left.
    """
    import ray.data

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    _, pad_id = training_tokenizer(config.model.path, config.model.chat_template)
    source = resolve_inputs(config.data.path, kind="sft")
    tokenized = _tokenized(source.files, config, None)
    stats: dict[str, Any] = {"source": source.provenance, "rows": _count(tokenized)}
    packed = _pack(
        tokenized.map_batches(select_split, batch_format="pyarrow", fn_kwargs={"split": "train"}), config
    )
    stats["train_packing"] = _packing_stats(packed, config.data.max_length)
    if stats["train_packing"]["packed_rows"] == 0:
        raise InputError(
            f"{config.data.path}: no trainable row left after dropping rows (stats: {stats['rows']})"
        )
    eval_ds, eval_rows = _eval_rows(config, tokenized, stats, world_size, pad_id)
    plan = plan_steps(stats["train_packing"]["packed_rows"], config.train, world_size)
    stats["plan"] = plan.as_dict()
    stream = epoch_stream(packed, plan, config.train, config.data.shuffle, lambda n: padding_rows(n, pad_id))
    efficiency = stats["train_packing"]["padding_efficiency"]
    return PreparedData(stream, eval_ds, DataFacts(plan, eval_rows, efficiency, stats))


def _eval_rows(
    config: SFTConfig, tokenized: ray.data.Dataset, stats: dict[str, Any], world_size: int, pad_id: int
) -> tuple[ray.data.Dataset | None, int]:
    """Packed held-out rows padded to a multiple of the worker count, or (None, 0) without eval data."""

    if config.data.eval_path is not None:
        source = resolve_inputs(config.data.eval_path, kind="sft")
        tokenized = _tokenized(source.files, config, "eval")
        stats["eval_source"] = source.provenance
        stats["rows"]["eval"] = _count(tokenized).get("eval", {})
    elif config.data.eval_fraction == 0:
        return None, 0
    rows = tokenized.map_batches(select_split, batch_format="pyarrow", fn_kwargs={"split": "eval"})
    packed = rows.map_batches(
        pack_batch,
        batch_format="pyarrow",
        batch_size=config.data.pack_window,
        fn_kwargs={"max_length": config.data.max_length, "seed": config.train.seed, "shuffle": False},
    ).materialize()
    stats["eval_packing"] = _packing_stats(packed, config.data.max_length)
    count = stats["eval_packing"]["packed_rows"]
    if count == 0:
        return None, 0
    return pad_to_workers(packed, count, world_size, lambda n: padding_rows(n, pad_id)), count
