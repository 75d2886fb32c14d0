"""Exact k-nearest-neighbour search by cosine similarity over unit-norm embeddings.

Medprompt's pool is a few thousand solved examples: an exact matrix product is cheaper than building
an approximate index and has no recall loss. Order is total: higher similarity first, and on equal
similarity the lower pool index first, so results do not depend on numpy's partition order.
"""

from __future__ import annotations

import numpy as np


def top_k_cosine(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, similarities)``, each ``(len(queries), min(k, len(pool)))``, most similar first.

    Both inputs are float arrays of unit-norm rows (cosine = dot product).
    """
    if queries.ndim != 2 or pool.ndim != 2 or queries.shape[1] != pool.shape[1]:
        raise ValueError(f"queries {queries.shape} and pool {pool.shape} must be 2-D with the same width")
    k = min(k, len(pool))
    if k <= 0 or len(queries) == 0:
        empty = np.zeros((len(queries), 0))
        return empty.astype(np.int64), empty
    sims = queries.astype(np.float64) @ pool.astype(np.float64).T
    # lexsort's last key is primary: similarity descending, then index ascending.
    index = np.broadcast_to(np.arange(len(pool)), sims.shape)
    order = np.lexsort((index, -sims), axis=1)[:, :k]
    return order.astype(np.int64), np.take_along_axis(sims, order, axis=1)
