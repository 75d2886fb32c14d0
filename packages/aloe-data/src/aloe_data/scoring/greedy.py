"""Greedy "high score, not too similar" selection (DEITA's combined filter), exact and clustered.

Rule (exact): visit rows by score descending (ties: smaller id first); keep a row when its largest cosine
similarity to the rows kept so far is ``<= threshold``, until ``size`` rows are kept. Every row gets
one decision: kept, ``diversity`` (too similar; ``similar_to`` is the kept row of largest cosine, the
earliest kept one on a tie, and ``similarity`` that cosine) or ``budget`` (visited after the budget
was full). DEITA's own filter compares a batch of candidates with each other *before* knowing which of
them are kept (so it drops more than the rule says); :func:`greedy_select` follows the rule exactly.

:func:`greedy_select` processes candidates in blocks of ``block`` rows: one matrix product against the
kept set (in column chunks of ``chunk`` rows, so memory stays ``block x chunk``) gives each candidate's
best match among rows kept before the block; a ``block x block`` product and :func:`resolve_block`
(vectorised rounds, no Python loop per row) settle which of the remaining rows the block keeps. Cost
O(n x kept x dim) flops, memory O(kept x dim + block x block). Cosines are float32 dot products of unit
vectors.

:func:`clustered_select` is the approximation for large data: spherical k-means splits rows into
``n_clusters`` clusters, :func:`greedy_select` runs inside each cluster (independently, in parallel
through ``run_clusters``), and the budget is applied over the merged order. What is approximate, precisely:
pairs of rows in *different* clusters are never compared. If no such pair has cosine > ``threshold``
the result equals the exact one row for row (reasons, ``similar_to``, ``similarity`` and ``rank``);
otherwise it may keep a row that the exact rule drops as too similar to a row of another cluster, and
that extra row can in turn push out later rows of its own cluster. Centroids are seeded k-means++, fitted
on a seeded sample, so a rerun on the same data gives the same clusters. Cost drops to the sum over
clusters of n_c x kept_c x dim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

KEPT = None
DIVERSITY = "diversity"
BUDGET = "budget"


@dataclass
class Selection:
    """Decisions indexed like the input rows.

    ``reason[i]`` is None (kept), ``"diversity"`` or ``"budget"``; ``similar_to[i]`` the input index of
    the kept row it was too similar to (-1 otherwise); ``similarity[i]`` that cosine (NaN otherwise);
    ``rank[i]`` the position among kept rows in selection order (-1 otherwise).
    """

    reason: list[str | None]
    similar_to: np.ndarray
    similarity: np.ndarray
    rank: np.ndarray
    cluster: np.ndarray | None = None  # clustered_select only: each row's cluster

    @classmethod
    def empty(cls, n: int) -> Selection:
        return cls(
            [BUDGET] * n,
            np.full(n, -1, dtype=np.int64),
            np.full(n, np.nan, dtype=np.float32),
            np.full(n, -1, dtype=np.int64),
        )


def selection_order(scores: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Input indices by score descending, ties by id ascending."""
    return np.lexsort((np.asarray(ids, dtype=str), -np.asarray(scores, dtype=np.float64)))


def _best_kept(cand: np.ndarray, kept: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: largest cosine to ``kept`` and its index there (first one on ties)."""
    best = np.full(len(cand), -np.inf, dtype=np.float32)
    arg = np.full(len(cand), -1, dtype=np.int64)
    for start in range(0, len(kept), chunk):
        sims = cand @ kept[start : start + chunk].T
        local = sims.argmax(axis=1)
        values = sims[np.arange(len(cand)), local]
        better = values > best  # strict: an earlier chunk wins a tie
        best[better] = values[better]
        arg[better] = local[better] + start
    return best, arg


def resolve_block(inner: np.ndarray, open_rows: np.ndarray, threshold: float) -> np.ndarray:
    """Which ``open_rows`` (block positions, ascending; none too similar to a row kept before the block)
    the greedy keeps: a row is kept iff no earlier *kept* row of the block is too similar.

    Decided in vectorised rounds instead of a Python loop per row: a row with an earlier kept neighbour
    is dropped; a row with no earlier undecided neighbour is kept. Each round settles at least the
    earliest undecided row, and usually far more (rounds ~ the longest chain of similar rows).
    """
    conflict = np.tril(inner[np.ix_(open_rows, open_rows)] > threshold, k=-1)  # [j, i]: i < j, similar
    state = np.zeros(len(open_rows), dtype=np.int8)  # 0 undecided, 1 kept, -1 dropped
    undecided = state == 0
    while undecided.any():
        dropped = undecided & conflict[:, state == 1].any(axis=1)
        state[dropped] = -1
        undecided &= ~dropped
        free = undecided & ~conflict[:, undecided].any(axis=1)
        state[free] = 1
        undecided &= ~free
    return state == 1


def greedy_select(
    embeddings: np.ndarray,
    scores: np.ndarray,
    ids: Sequence[str],
    threshold: float,
    size: int | None = None,
    *,
    block: int = 1024,
    chunk: int = 16384,
) -> Selection:
    """The exact greedy rule of the module docstring over unit-norm ``embeddings`` (n x dim)."""
    n = len(ids)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    budget = n if size is None else min(size, n)
    out = Selection.empty(n)
    kept = np.empty((budget, emb.shape[1] if emb.ndim == 2 else 0), dtype=np.float32)
    kept_index = np.empty(budget, dtype=np.int64)  # input index of the j-th kept row
    n_kept = 0
    order = selection_order(scores, ids)
    for start in range(0, n, block):
        if n_kept >= budget:
            break
        cand = order[start : start + block]
        vectors = emb[cand]
        best, arg = _best_kept(vectors, kept[:n_kept], chunk)
        inner = vectors @ vectors.T
        open_rows = np.flatnonzero(best <= threshold)
        keep_pos = open_rows[resolve_block(inner, open_rows, threshold)][: budget - n_kept]
        # Rows after the one that fills the budget are never visited: they stay "budget".
        stop = int(keep_pos[-1]) + 1 if n_kept + len(keep_pos) == budget else len(cand)
        kept[n_kept : n_kept + len(keep_pos)] = vectors[keep_pos]
        kept_index[n_kept : n_kept + len(keep_pos)] = cand[keep_pos]
        _record_block(out, cand[:stop], inner[:stop, :stop], keep_pos, best, arg, kept_index, n_kept)
        n_kept += len(keep_pos)
    return out


def _record_block(
    out: Selection,
    cand: np.ndarray,
    inner: np.ndarray,
    keep_pos: np.ndarray,
    best: np.ndarray,
    arg: np.ndarray,
    kept_index: np.ndarray,
    n_kept: int,
) -> None:
    """Write the decisions of one block's visited rows ``cand``: kept rows get ranks; every other
    row gets its best match among rows kept before it (before the block, or earlier in it).
    ``kept_index`` must already hold this block's kept rows from position ``n_kept`` on."""
    m = len(cand)
    is_kept = np.zeros(m, dtype=bool)
    is_kept[keep_pos] = True
    earlier = np.tri(m, m, k=-1, dtype=bool) & is_kept[None, :]  # [j, i]: i kept and before j
    masked = np.where(earlier, inner, -np.inf)
    in_arg = masked.argmax(axis=1)
    in_best = masked[np.arange(m), in_arg]
    rank_in_block = np.cumsum(is_kept) - 1  # rank among the block's kept rows, at kept positions
    dropped = np.flatnonzero(~is_kept)
    from_block = in_best[dropped] > best[dropped]  # strict: a row kept before the block wins a tie
    match = np.where(from_block, n_kept + rank_in_block[in_arg[dropped]], arg[dropped])
    rows = cand[dropped]
    out.similar_to[rows] = kept_index[match]
    out.similarity[rows] = np.where(from_block, in_best[dropped], best[dropped])
    out.rank[cand[keep_pos]] = n_kept + np.arange(len(keep_pos))
    for row in rows.tolist():
        out.reason[row] = DIVERSITY
    for row in cand[keep_pos].tolist():
        out.reason[row] = KEPT


def spherical_kmeans(
    embeddings: np.ndarray, n_clusters: int, *, iterations: int = 20, seed: int = 0, sample: int = 100_000
) -> np.ndarray:
    """Unit-norm centroids (n_clusters x dim) fitted on at most ``sample`` rows (seeded, so the same
    data always gives the same clusters)."""
    rng = np.random.default_rng(seed)
    emb = np.asarray(embeddings, dtype=np.float32)
    fit = emb[np.sort(rng.choice(len(emb), size=min(sample, len(emb)), replace=False))]
    centroids = _kmeans_plus_plus(fit, min(n_clusters, len(fit)), rng)
    for _ in range(iterations):
        labels = assign_clusters(fit, centroids)
        sums = _cluster_sums(fit, labels, len(centroids))
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        # An empty cluster keeps its old centroid.
        centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids).astype(np.float32)
    return centroids


def _cluster_sums(points: np.ndarray, labels: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """Sum of the points of each cluster (zeros for an empty one): one-hot matrix products, in row
    chunks so the one-hot block stays ``chunk x k`` (BLAS beats ``np.add.at`` by ~100x here)."""
    sums = np.zeros((k, points.shape[1]), dtype=np.float32)
    for start in range(0, len(points), chunk):
        part = labels[start : start + chunk]
        onehot = np.zeros((len(part), k), dtype=np.float32)
        onehot[np.arange(len(part)), part] = 1.0
        # points.T @ onehot, not onehot.T @ points: the same sums, but the second layout runs ~20x
        # slower in OpenBLAS on this shape (long inner dimension, tiny output).
        sums += (points[start : start + chunk].T @ onehot).T
    return sums


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with cosine distance: each new centroid is drawn with probability
    proportional to the squared distance to the nearest centroid so far."""
    chosen = [int(rng.integers(len(points)))]
    nearest = 1.0 - points @ points[chosen[0]]
    for _ in range(1, k):
        weights = np.maximum(nearest, 0.0).astype(np.float64) ** 2
        total = weights.sum()
        pick = (
            int(rng.choice(len(points), p=weights / total)) if total > 0 else int(rng.integers(len(points)))
        )
        chosen.append(pick)
        nearest = np.minimum(nearest, 1.0 - points @ points[pick])
    return points[chosen].copy()


def assign_clusters(embeddings: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index of the most similar centroid for each row."""
    labels = np.empty(len(embeddings), dtype=np.int64)
    for start in range(0, len(embeddings), chunk):
        labels[start : start + chunk] = (embeddings[start : start + chunk] @ centroids.T).argmax(axis=1)
    return labels


ClusterRunner = Callable[[list[tuple]], list[Selection]]


def cluster_greedy(embeddings: np.ndarray, scores: np.ndarray, ids: list[str], threshold: float) -> Selection:
    """The exact rule inside one cluster, without a budget (applied later over all clusters)."""
    return greedy_select(embeddings, scores, ids, threshold)


def run_clusters_locally(jobs: list[tuple]) -> list[Selection]:
    return [cluster_greedy(*job) for job in jobs]


def clustered_select(
    embeddings: np.ndarray,
    scores: np.ndarray,
    ids: Sequence[str],
    threshold: float,
    size: int | None = None,
    *,
    n_clusters: int = 64,
    seed: int = 0,
    run_clusters: ClusterRunner = run_clusters_locally,
) -> Selection:
    """Greedy within k-means clusters, budget over the merged order (see the module docstring).

    ``run_clusters(jobs)`` returns ``[cluster_greedy(*job) for job in jobs]``, in order; the stage passes
    one that runs the jobs as parallel Ray tasks.
    """
    n = len(ids)
    ids = list(ids)
    scores = np.asarray(scores, dtype=np.float64)
    labels = assign_clusters(embeddings, spherical_kmeans(embeddings, n_clusters, seed=seed))
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    jobs = [(embeddings[m], scores[m], [ids[i] for i in m], threshold) for m in members]
    results = run_clusters(jobs)
    out = Selection.empty(n)
    out.cluster = labels
    for m, local in zip(members, results, strict=True):
        for pos, row in enumerate(m):
            out.reason[row] = local.reason[pos]
            if local.similar_to[pos] >= 0:
                out.similar_to[row] = m[local.similar_to[pos]]
                out.similarity[row] = local.similarity[pos]
    _apply_budget(out, selection_order(scores, ids), n if size is None else size)
    return out


def _apply_budget(out: Selection, order: np.ndarray, size: int) -> None:
    """Keep the first ``size`` kept rows in ``order``; every row after the last of them is ``budget``."""
    kept = 0
    for position, row in enumerate(order):
        if kept >= size:
            for late in order[position:]:
                out.reason[late] = BUDGET
                out.similar_to[late] = -1
                out.similarity[late] = np.nan
            return
        if out.reason[row] is KEPT:
            out.rank[row] = kept
            kept += 1
