"""Near-duplicate removal: MinHash signatures (datasketch-exact), LSH banding, clusters, keep rule.

Entry points: :func:`near_duplicates` (Ray Dataset in, table of dropped ids out; what the
``fuzzy_dedup`` pipeline stage uses) and :func:`fuzzy_dedup` (Ray Dataset in, (kept, dropped) Datasets
out), configured by :class:`MinHashConfig`. The building blocks are usable on their own:
:func:`signatures` for a batch of texts, :func:`optimal_param` and :func:`band_keys` for LSH,
:class:`UnionFind` and :func:`choose_kept` for clusters.
"""

from aloe_data.dedup.clusters import UnionFind, choose_kept
from aloe_data.dedup.config import KeepRule, MinHashConfig
from aloe_data.dedup.fuzzy import DROP_REASON, fuzzy_dedup, near_duplicates
from aloe_data.dedup.lsh import band_keys, optimal_param
from aloe_data.dedup.minhash import EMPTY, estimated_jaccard, signatures
from aloe_data.dedup.rows import matching_texts
from aloe_data.dedup.shingles import char_ngrams, shingle_set

__all__ = [
    "DROP_REASON",
    "EMPTY",
    "KeepRule",
    "MinHashConfig",
    "UnionFind",
    "band_keys",
    "char_ngrams",
    "choose_kept",
    "estimated_jaccard",
    "fuzzy_dedup",
    "matching_texts",
    "near_duplicates",
    "optimal_param",
    "shingle_set",
    "signatures",
]
