"""Connected components of candidate edges, and which row of each component is kept.

Nodes are ints 0..n-1 (the caller maps ids to ints in id order, so a smaller int is a smaller id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np


class UnionFind:
    """Disjoint sets over 0..n-1 with union by rank and path compression (near-constant amortised ops).

    Stored in Python lists: element access on lists is several times faster than on numpy arrays in
    the scalar loop that unions need; :meth:`roots` converts to numpy once at the end.
    """

    def __init__(self, n: int) -> None:
        self._parent = list(range(n))
        self._rank = [0] * n

    def find(self, x: int) -> int:
        parent = self._parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression: point the whole path at the root
            parent[x], x = root, parent[x]
        return root

    def union(self, x: int, y: int) -> bool:
        """Merge the sets of x and y; False if they were already one set."""
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return False
        rank = self._rank
        if rank[rx] < rank[ry]:
            rx, ry = ry, rx
        self._parent[ry] = rx
        if rank[rx] == rank[ry]:
            rank[rx] += 1
        return True

    def union_edges(self, src: np.ndarray, dst: np.ndarray, chunk: int = 1 << 20) -> None:
        """Union every edge (src[i], dst[i]) of two int arrays (converted to Python ints a chunk at a
        time, so the transient memory does not grow with the number of edges)."""
        src, dst = np.asarray(src), np.asarray(dst)
        for lo in range(0, len(src), chunk):
            for x, y in zip(src[lo : lo + chunk].tolist(), dst[lo : lo + chunk].tolist(), strict=True):
                self.union(x, y)

    def roots(self) -> np.ndarray:
        """int64 array: the representative of every node's set."""
        return np.fromiter(
            (self.find(x) for x in range(len(self._parent))), dtype=np.int64, count=len(self._parent)
        )


def union_verified_buckets(
    uf: UnionFind, buckets: Iterable[Sequence[int]], similar: Callable[[int, int], bool]
) -> int:
    """Union the pairs of each bucket that pass ``similar``; return how many pairs were checked.

    The result is exactly the connected components of {all pairs inside a bucket that are similar},
    without checking every pair: member j is compared with each earlier member that is not (yet) in its
    component, and a pair already connected is skipped, since checking it cannot change the
    components. A bucket of k mutually similar rows costs k-1 checks; a bucket of k unrelated rows
    (LSH false positives) costs up to k*(k-1)/2, which sane LSH parameters make rare. A pair seen in
    several buckets (one per shared band) is checked once.
    """
    checked: dict[tuple[int, int], bool] = {}
    for bucket in buckets:
        for j in range(1, len(bucket)):
            node = bucket[j]
            for earlier in bucket[:j]:
                if uf.find(earlier) == uf.find(node):
                    continue
                pair = (earlier, node) if earlier < node else (node, earlier)
                if pair not in checked:
                    checked[pair] = similar(*pair)
                if checked[pair]:
                    uf.union(earlier, node)
    return len(checked)


def choose_kept(roots: np.ndarray, score: np.ndarray, answer_length: np.ndarray) -> np.ndarray:
    """For every node, the node kept for its component (itself when it is kept or alone).

    Ranking inside a component: highest ``score`` (NaN = no score, ranks below any score), then
    longest ``answer_length``, then smallest node (= smallest id). Deterministic for any input order.
    """
    n = len(roots)
    node = np.arange(n, dtype=np.int64)
    ranked_score = np.where(np.isnan(score), -np.inf, score)
    # lexsort sorts by the last key first: component, then score desc, length desc, node asc.
    order = np.lexsort((node, -np.asarray(answer_length, dtype=np.int64), -ranked_score, roots))
    sorted_roots = roots[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_roots[1:] != sorted_roots[:-1]
    group_start = np.flatnonzero(first)
    kept_sorted = np.repeat(order[group_start], np.diff(np.append(group_start, n)))
    kept = np.empty(n, dtype=np.int64)
    kept[order] = kept_sorted
    return kept
