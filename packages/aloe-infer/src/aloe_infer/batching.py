"""Grouping variable-length prompts into padded forward passes under a token budget."""

from __future__ import annotations

from collections.abc import Sequence


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
