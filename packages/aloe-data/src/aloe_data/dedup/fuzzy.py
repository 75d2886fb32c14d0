"""MinHash LSH near-duplicate removal over a Ray Dataset.

Pipeline (:func:`fuzzy_dedup`):

1. **Band keys** (``map_batches``, vectorised per batch): text of each row -> shingles -> MinHash
   signature -> one 64-bit key per LSH band. Output rows are (band_key, id); rows with no shingles emit
   nothing. Signatures are not kept: they are recomputed in step 3 for candidate rows only.
2. **Buckets** (distributed): hash exchange on band_key (:mod:`aloe_data.dedup.exchange`, two waves of
   Ray tasks), then per partition a vectorised sort yields star edges: each bucket's smallest id ->
   every other member.
3. **Candidate rows** (``map_batches``): the rows appearing in an edge are looked up (sorted-id
   membership, no per-batch hash-set build) and their signature, quality score, answer length (and
   text, with ``verify``) come back to the driver.
4. **Clusters** (driver): union-find over the edge list, optionally checking each candidate pair's exact
   Jaccard first (``verify``); in each cluster the keep rule picks one row; every other row gets
   ``duplicate_of`` (the kept id) and ``similarity`` (estimated Jaccard with the kept row: fraction of
   equal signature slots, or the exact Jaccard with ``verify``).
5. **Split** (``map_batches``, :func:`fuzzy_dedup`): kept rows (exactly the input columns) and dropped
   rows (input columns + ``drop_reason="near_duplicate"``, ``duplicate_of``, ``similarity``). The
   pipeline stage (:mod:`aloe_data.stages.fuzzy_dedup`) stops after step 4 (:func:`near_duplicates`)
   and instead marks the dropped rows in input order.

Semantics. Without ``verify``, two rows are near-duplicates when they share at least one LSH bucket
(the standard MinHash-LSH rule of datatrove and NeMo Curator). With ``verify``, they are when they share
a bucket *and* the exact Jaccard of their shingle sets is >= threshold. Clusters are connected
components, so a dropped row's similarity to its kept row can be below the threshold (A~B, B~C, A!~C).
Input ``id`` values must be unique (the exact-dedup stage guarantees it); a repeated id among candidate
rows raises :class:`aloe_core.errors.InputError`.

Scale. Steps 1-3 and 5 are distributed; the input dataset is read three times (band keys, candidate
lookup, split or marking), so materialise it first if it is expensive to recompute. Step 4 runs on the driver:
peak ~0.9 KB per candidate row (its 128-slot signature, id, keep attributes, union-find entry) plus
~90 bytes per candidate edge (measured by ``benchmarks/minhash.py``). A corpus of 10^8 rows with 5%
near-duplicate candidates (5x10^6 rows, ~10^7 edges) needs ~5-6 GB on the driver; that is about the
limit of this design. Beyond it, the union-find must become distributed connected components: iterate
large-star / small-star (Kiveris et al. 2014) or min-label propagation as Ray Data joins of the edge
table with a (node, label) table until no label changes (one hash shuffle per round, O(log n) rounds),
choose kept rows with a groupby on the final label, and move candidate lookup and verification into
joins of the edge table with the rows instead of driver-side tables.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from aloe_core.errors import AloeError, InputError
from aloe_core.text import jaccard
from aloe_data.dedup.clusters import UnionFind, choose_kept, union_verified_buckets
from aloe_data.dedup.config import MinHashConfig
from aloe_data.dedup.exchange import default_num_partitions, group_by_key
from aloe_data.dedup.lsh import band_keys, bucket_star_edges, empty_edges
from aloe_data.dedup.minhash import EMPTY, estimated_jaccard, signatures
from aloe_data.dedup.rows import TextFn, answer_lengths, check_utf8, matching_texts, quality_scores
from aloe_data.dedup.shingles import shingle_set
from aloe_data.pipeline.batching import map_in_batches
from aloe_data.pipeline.broadcast import IdIndex, index_by_id, worker_get

DROP_REASON = "near_duplicate"


def near_duplicates(
    ds: ray.data.Dataset,
    config: MinHashConfig | None = None,
    *,
    text_fn: TextFn = matching_texts,
    batch_size: int = 4096,
    num_partitions: int | None = None,
) -> pa.Table:
    """Steps 1-4: which rows of ``ds`` are near-duplicates, and of which kept row.

    Args:
        ds: rows with a unique string ``id`` and whatever ``text_fn`` reads (default: the ``sft`` /
            ``mcqa`` / ``preference`` schemas, compared on :func:`aloe_core.text.matching_text`). It is
            read twice (band keys, candidate lookup): it must give the same rows both times.
        config: MinHash / LSH / keep-rule settings (default :class:`MinHashConfig`).
        text_fn: pyarrow Table batch -> one text per row.
        batch_size: rows per signature batch (larger amortises numpy overhead; ~2 KB of memory a row).
        num_partitions: partitions of the band-key shuffle; default min(200, 2 x cluster CPUs).

    Returns:
        A driver-side table sorted by ``id``: ``id`` (a dropped row), ``duplicate_of`` (the kept row of
        its cluster) and ``similarity`` (float64, see module doc); one row per dropped row.

    Raises:
        InputError: no ``id`` column, an id occurs more than once among the candidate rows, or a string
            is not valid UTF-8 (the message names the row and column).
    """
    config = config or MinHashConfig()
    bands, rows = config.lsh_params()
    edges = _candidate_edges(ds, config, bands, rows, text_fn, batch_size, num_partitions)
    return _resolve(ds, edges, config, text_fn, batch_size).sort_by("id")


def fuzzy_dedup(
    ds: ray.data.Dataset,
    config: MinHashConfig | None = None,
    *,
    text_fn: TextFn = matching_texts,
    batch_size: int = 4096,
    num_partitions: int | None = None,
) -> tuple[ray.data.Dataset, ray.data.Dataset]:
    """Split ``ds`` into (kept rows, dropped near-duplicate rows): :func:`near_duplicates`, then one
    more pass over ``ds`` per output (arguments and errors as there).

    Returns:
        (kept, dropped), both lazy. ``kept`` has exactly the input columns. ``dropped`` has the input
        columns plus ``drop_reason`` (always "near_duplicate"), ``duplicate_of`` (id of the kept row of
        its cluster) and ``similarity`` (float64, see module doc).
    """
    dropped = near_duplicates(
        ds, config, text_fn=text_fn, batch_size=batch_size, num_partitions=num_partitions
    )
    dropped_ref = ray.put(dropped)
    kept_ds = ds.map_batches(_kept_rows, batch_format="pyarrow", fn_kwargs={"dropped": dropped_ref})
    dropped_ds = ds.map_batches(_dropped_rows, batch_format="pyarrow", fn_kwargs={"dropped": dropped_ref})
    return kept_ds, dropped_ds


def _candidate_edges(
    ds: ray.data.Dataset,
    config: MinHashConfig,
    bands: int,
    rows: int,
    text_fn: TextFn,
    batch_size: int,
    num_partitions: int | None,
) -> pa.Table:
    """Steps 1-2: the star edges (band_key, src, dst) of every LSH bucket, collected on the driver."""
    keyed = map_in_batches(
        ds,
        _band_key_rows,
        batch_size,
        fn_kwargs={"config": config, "bands": bands, "rows": rows, "text_fn": text_fn},
    )
    if num_partitions is None:
        num_partitions = default_num_partitions(int(ray.cluster_resources().get("CPU", 1)))
    with _user_errors(keyed):
        tables = group_by_key(keyed, "band_key", num_partitions, _partition_edges)
    return pa.concat_tables(tables) if tables else empty_edges(pa.string())


@contextlib.contextmanager
def _user_errors(ds: ray.data.Dataset) -> Iterator[None]:
    """Let an :class:`AloeError` raised in ``ds``'s map functions reach the caller as itself.

    Ray Data wraps exceptions of map functions in ``UserCodeException``, which loses the original
    type; with ``raise_original_map_exception`` (set on this Dataset's own context only) Ray raises a
    ``RayTaskError`` subclass of the original, whose ``cause`` is the exception the worker raised, and
    that is re-raised here with its one-line message (the CLI prints it as ``aloe: error: ...``).
    """
    ds.context.raise_original_map_exception = True
    try:
        yield
    except AloeError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, AloeError):
            raise cause from None
        raise


def _band_key_rows(
    batch: pa.Table, *, config: MinHashConfig, bands: int, rows: int, text_fn: TextFn
) -> pa.Table:
    if batch.num_rows == 0:  # an empty input (e.g. every row dropped upstream) may have no columns
        return pa.table({"band_key": pa.array([], pa.uint64()), "id": pa.array([], pa.string())})
    if "id" not in batch.column_names:
        raise InputError(
            f"fuzzy dedup needs an 'id' column (unique row ids); the rows have {batch.column_names}"
        )
    check_utf8(batch)  # every row passes here first, so later passes can decode without checks
    sig = _signatures(text_fn(batch), config)
    has_shingles = (sig != EMPTY).any(axis=1)
    keys = band_keys(sig[has_shingles], bands, rows)
    source_rows = np.repeat(np.flatnonzero(has_shingles), bands)
    return pa.table(
        {"band_key": pa.array(keys.reshape(-1), pa.uint64()), "id": batch["id"].take(pa.array(source_rows))}
    )


def _partition_edges(block: pa.Table) -> pa.Table:
    return bucket_star_edges(block.combine_chunks(), key="band_key", node="id")


def _signatures(texts: Any, config: MinHashConfig) -> np.ndarray:
    return signatures(
        list(texts),
        num_perm=config.num_perm,
        seed=config.seed,
        scheme=config.scheme,
        shingle=config.shingle,
        ngram=config.ngram,
    )


def _resolve(
    ds: ray.data.Dataset, edges: pa.Table, config: MinHashConfig, text_fn: TextFn, batch_size: int
) -> pa.Table:
    """Steps 3-4: the dropped rows' (id, duplicate_of, similarity)."""
    if edges.num_rows == 0:
        return _empty_dropped()
    nodes = pc.unique(pa.chunked_array([edges["src"], edges["dst"]]).combine_chunks()).sort()
    return resolve_clusters(edges, _lookup(ds, nodes, config, text_fn, batch_size), config)


def _empty_dropped() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([], pa.string()),
            "duplicate_of": pa.array([], pa.string()),
            "similarity": pa.array([], pa.float64()),
        }
    )


def resolve_clusters(edges: pa.Table, candidates: pa.Table, config: MinHashConfig) -> pa.Table:
    """Step 4, on the driver: clusters of the candidate edges and the dropped rows.

    Args:
        edges: (band_key, src, dst) star edges of all buckets.
        candidates: one row per id in edges, sorted by id: ``id``, ``signature`` (fixed-size list of
            uint32), ``score`` (float64, NaN = none), ``answer_length`` (int64), and ``text`` when
            ``config.verify``.

    Returns:
        (id, duplicate_of, similarity) of every dropped row.
    """
    nodes = candidates["id"].combine_chunks()
    n = len(nodes)
    src = pc.index_in(edges["src"], value_set=nodes).to_numpy()
    dst = pc.index_in(edges["dst"], value_set=nodes).to_numpy()
    uf = UnionFind(n)
    shingles = _ShingleCache(candidates["text"].to_pylist(), config) if config.verify else None
    if shingles is not None:
        buckets = _buckets(edges["band_key"].to_numpy(), src, dst)
        union_verified_buckets(uf, buckets, lambda i, j: shingles.jaccard(i, j) >= config.threshold)
    else:
        pairs = np.unique(src.astype(np.int64) * n + dst)  # the same pair comes from up to `bands` buckets
        uf.union_edges(pairs // n, pairs % n)
    kept = choose_kept(uf.roots(), candidates["score"].to_numpy(), candidates["answer_length"].to_numpy())
    dropped = np.flatnonzero(kept != np.arange(n))
    if shingles is not None:
        similarity = np.array([shingles.jaccard(d, k) for d, k in zip(dropped, kept[dropped], strict=True)])
    else:
        similarity = _estimated_similarity(candidates, dropped, kept[dropped])
    return pa.table(
        {
            "id": nodes.take(pa.array(dropped, pa.int64())),
            "duplicate_of": nodes.take(pa.array(kept[dropped], pa.int64())),
            "similarity": pa.array(similarity, pa.float64()),
        },
        schema=_empty_dropped().schema,
    )


def _estimated_similarity(candidates: pa.Table, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of each (rows[i], others[i]) pair of candidate rows, copying the signatures of
    at most 2 x 65536 rows at a time."""
    out = np.empty(len(rows), dtype=np.float64)
    for lo in range(0, len(rows), 1 << 16):
        hi = lo + (1 << 16)
        left, right = _signature_rows(candidates, rows[lo:hi]), _signature_rows(candidates, others[lo:hi])
        out[lo:hi] = estimated_jaccard(left, right)
    return out


def _signature_rows(candidates: pa.Table, rows: np.ndarray) -> np.ndarray:
    """The signatures of ``rows`` as a (len(rows), num_perm) uint32 array."""
    picked = candidates["signature"].take(pa.array(rows, pa.int64())).combine_chunks()
    return picked.flatten().to_numpy().reshape(len(rows), picked.type.list_size)


def _buckets(keys: np.ndarray, src: np.ndarray, dst: np.ndarray) -> list[tuple[int, ...]]:
    """Distinct buckets (sorted member tuples) from star edges; edges of a bucket share its key (two
    buckets whose 64-bit keys collide are merged, which only adds candidate pairs to check)."""
    order = np.lexsort((dst, keys))
    keys, src, dst = keys[order], src[order], dst[order]
    starts = np.flatnonzero(np.append(True, keys[1:] != keys[:-1]))
    bounds = np.append(starts, len(keys)).tolist()
    members = {tuple(sorted({*src[a:b].tolist(), *dst[a:b].tolist()})) for a, b in itertools.pairwise(bounds)}
    return sorted(members)


class _ShingleCache:
    """Shingle sets of candidate rows, built on first use (only rows that verification touches)."""

    def __init__(self, texts: list[str], config: MinHashConfig) -> None:
        self._texts = texts
        self._config = config
        self._sets: dict[int, set[str]] = {}

    def get(self, node: int) -> set[str]:
        if node not in self._sets:
            self._sets[node] = shingle_set(self._texts[node], self._config.shingle, self._config.ngram)
        return self._sets[node]

    def jaccard(self, a: int, b: int) -> float:
        return jaccard(self.get(int(a)), self.get(int(b)))


def _lookup(
    ds: ray.data.Dataset, nodes: pa.Array, config: MinHashConfig, text_fn: TextFn, batch_size: int
) -> pa.Table:
    """Step 3: candidate rows (id, signature, score, answer_length[, text]) in ``nodes`` order."""
    index = IdIndex(nodes)
    found = map_in_batches(
        ds,
        _candidate_rows,
        batch_size,
        fn_kwargs={"index": ray.put(index), "config": config, "text_fn": text_fn},
    )
    with _user_errors(found):
        tables = [t for t in ray.get(found.to_arrow_refs()) if t.num_rows]
    table = pa.concat_tables(tables) if tables else None
    position = (
        pc.index_in(table["id"], value_set=nodes).to_numpy() if table is not None else np.array([], int)
    )
    counts = np.bincount(position, minlength=len(nodes))
    if (counts > 1).any():
        repeated = nodes[int(np.argmax(counts > 1))].as_py()
        raise InputError(
            f"fuzzy dedup: id {repeated!r} occurs {counts.max()} times; ids must be unique "
            "(run exact dedup first or fix the source's id assignment)"
        )
    if (counts == 0).any():  # only possible if the dataset changed between passes (non-deterministic input)
        missing = nodes[int(np.argmax(counts == 0))].as_py()
        raise InputError(
            f"fuzzy dedup: row {missing!r} vanished between passes; materialize() the input first"
        )
    return table.take(pa.array(np.argsort(position)))


def _candidate_rows(
    batch: pa.Table, *, index: ray.ObjectRef, config: MinHashConfig, text_fn: TextFn
) -> pa.Table:
    if batch.num_rows == 0:  # possibly without columns; callers skip empty tables
        return pa.table({})
    rows = batch.filter(pa.array(worker_get(index).positions(batch["id"]) >= 0))
    texts = list(text_fn(rows)) if rows.num_rows else []
    sig = _signatures(texts, config)
    keep = config.keep
    columns: dict[str, Any] = {
        "id": rows["id"],
        "signature": pa.FixedSizeListArray.from_arrays(
            pa.array(sig.reshape(-1), pa.uint32()), config.num_perm
        ),
        "score": pa.array(quality_scores(rows, keep.score_key), pa.float64()),
        "answer_length": pa.array(
            answer_lengths(rows) if keep.prefer_longer_answer else np.zeros(rows.num_rows, np.int64),
            pa.int64(),
        ),
    }
    if config.verify:
        columns["text"] = pa.array(texts, pa.string())
    return pa.table(columns)


def _kept_rows(batch: pa.Table, *, dropped: ray.ObjectRef) -> pa.Table:
    if batch.num_rows == 0:
        return batch
    index, _ = worker_get(dropped, index_by_id)
    return batch.filter(pa.array(index.positions(batch["id"]) < 0))


def _dropped_rows(batch: pa.Table, *, dropped: ray.ObjectRef) -> pa.Table:
    if batch.num_rows == 0:
        return batch
    index, table = worker_get(dropped, index_by_id)
    position = index.positions(batch["id"])
    hit = position >= 0
    rows = batch.filter(pa.array(hit))
    info = table.take(pa.array(position[hit]))
    rows = rows.append_column("drop_reason", pa.array([DROP_REASON] * rows.num_rows, pa.string()))
    rows = rows.append_column("duplicate_of", info["duplicate_of"])
    return rows.append_column("similarity", info["similarity"])
