"""DPO preference rows -> token pairs: ids of rows from shards without an ``id`` column."""

from __future__ import annotations

import pyarrow as pa

from aloe_train.dpo.data import tokenize_pairs
from aloe_train.shared.tokenizer import assign_split, content_id


def pairs(questions: list[str]) -> pa.Table:
    return pa.table(
        {
            "prompt": [[{"role": "user", "content": q}] for q in questions],
            "chosen": [f"A careful answer to: {q}" for q in questions],
            "rejected": ["No idea." for _ in questions],
        }
    )


def tokenize(table: pa.Table, tiny_model_dir) -> pa.Table:
    return tokenize_pairs(
        table,
        tokenizer_path=str(tiny_model_dir),
        chat_template=None,
        max_length=256,
        max_prompt_length=128,
        eval_fraction=0.5,
        split=None,
    )


def test_rows_without_ids_get_content_ids_that_do_not_collide_across_batches(tiny_model_dir):
    """Without an ``id`` column every batch used to name its rows row-0, row-1, ...: ids collided across
    batches and row i of every batch landed on the same side of the eval split."""
    first = pairs([f"What is the first-line drug for condition {i}?" for i in range(8)])
    second = pairs([f"Which test confirms disease {i}?" for i in range(8)])
    a, b = tokenize(first, tiny_model_dir), tokenize(second, tiny_model_dir)
    ids = a["sample_id"].to_pylist() + b["sample_id"].to_pylist()
    assert len(set(ids)) == 16, "ids repeat across batches"
    expected = [
        content_id([p, c, r])
        for t in (first, second)
        for p, c, r in zip(*(t[k].to_pylist() for k in ("prompt", "chosen", "rejected")), strict=True)
    ]
    assert ids == expected
    splits = a["split"].to_pylist() + b["split"].to_pylist()
    assert splits == [assign_split(i, None, 0.5) for i in ids]
    # The same row gets the same id in another batch, so it keeps its side of the split.
    again = tokenize(pa.concat_tables([second.slice(3, 2), first.slice(0, 1)]), tiny_model_dir)
    assert again["sample_id"].to_pylist() == [ids[11], ids[12], ids[0]]
