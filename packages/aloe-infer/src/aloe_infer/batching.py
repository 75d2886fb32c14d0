"""Grouping variable-length prompts into padded forward passes under a token budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def micro_batches(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Indices grouped longest first so that ``len(group) * longest <= max_batch_tokens`` (a prompt
    longer than the budget goes alone).

    Sorting by length keeps the padding of each group small; the budget bounds the activation memory of
    one forward pass (``len(group) x longest`` padded tokens).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        # Sorted descending: the group's first member is its longest.
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_batch_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any, Any]:
    """``(input_ids, attention_mask, position_ids)`` long tensors ``[len(prompts), longest]`` with every
    prompt padded on the left and ``position_ids = cumsum(mask) - 1``, so each prompt sees exactly the
    positions it has alone and its last real token is the last column (what next-token reads need)."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)
