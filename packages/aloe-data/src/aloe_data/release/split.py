"""The train/validation split: deterministic and stratified by (source, task).

Within each stratum rows are ordered by a hash of (seed, id), and the first
``round_half_up(n * fraction)`` go to validation, at most ``n - 1`` so every stratum keeps a train row.
The same rows and seed always give the same split, whatever the order or sharding of the input, and
every source and task is represented in both splits in proportion.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np


def validation_count(n: int, fraction: float) -> int:
    """Rows of an ``n``-row stratum that go to validation."""
    return max(0, min(math.floor(n * fraction + 0.5), n - 1))


def _order_keys(ids: Sequence[str], seed: int) -> np.ndarray:
    prefix = f"{seed}\0".encode()
    return np.array(
        [int.from_bytes(hashlib.blake2b(prefix + i.encode(), digest_size=8).digest(), "big") for i in ids],
        dtype=np.uint64,
    )


def validation_mask(ids: Sequence[str], strata: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """A boolean array, True where row ``i`` (id ``ids[i]``, stratum ``strata[i]``) is a validation row."""
    n = len(ids)
    mask = np.zeros(n, dtype=bool)
    if n == 0 or fraction == 0:
        return mask
    labels, stratum = np.unique(np.asarray(strata, dtype=object), return_inverse=True)
    keys = _order_keys(ids, seed)
    # Rows by stratum, then hash, then position (ties between equal ids stay in input order).
    order = np.lexsort((np.arange(n), keys, stratum))
    counts = np.bincount(stratum, minlength=len(labels))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for s, (start, count) in enumerate(zip(starts, counts, strict=True)):
        mask[order[start : start + validation_count(int(count), fraction)]] = True
        assert stratum[order[start]] == s or count == 0, "lexsort keeps strata contiguous"
    return mask
