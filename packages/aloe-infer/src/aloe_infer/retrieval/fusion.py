"""Reciprocal-rank fusion (Cormack, Clarke and Buettcher, 2009), as MedRAG and FlashRAG fuse BM25 and
dense retrieval: a candidate's score is the sum over rankings of ``1 / (k + rank)``, rank from 1.

Only ranks matter, so BM25 scores and cosines need no calibration against each other; a larger ``k``
flattens the advantage of the very top ranks.
"""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int) -> list[tuple[int, float]]:
    """``[(id, fused score), ...]`` best first; ties go to the id ranked best in any ranking, then the
    smaller id (deterministic)."""
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))
