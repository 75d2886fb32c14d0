"""LSH banding: parameter choice, band keys, and candidate edges inside hash buckets.

Two rows are LSH candidates when, for some band, all ``rows`` signature slots of that band are equal.
Each (row, band) becomes one 64-bit *band key*; rows sharing a key share a bucket.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# xxHash64 primes; the mixing below follows xxHash64's round and avalanche steps (it is not xxHash64 of
# any byte string: it is only meant to be a fixed, well-mixed, process-independent 64-bit function).
_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P5 = np.uint64(0x27D4EB2F165667C5)


def _s_curve_areas(threshold: float, bands: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FP, FN) areas of every (bands[i], rows[i]) LSH S-curve, by Gauss-Legendre quadrature.

    ``1 - (1 - s**r)**b`` is a polynomial in ``s`` of degree ``r * b``, and an n-point Gauss-Legendre rule
    integrates polynomials of degree <= 2n - 1 exactly, so with ``n = max(r * b) // 2 + 1`` points the
    areas are exact up to rounding (datasketch's adaptive ``scipy.integrate.quad`` gets the same values to
    ~1e-14). Why not quad: one call per (b, r) pair costs ~0.5 s for num_perm 128 (~700 pairs x 2 areas),
    serial on the driver before a dedup stage's first task; this is one vectorised evaluation, and needs
    no scipy import.
    """
    nodes, weights = np.polynomial.legendre.leggauss(int(np.max(bands * rows)) // 2 + 1)
    b, r = bands[:, None].astype(np.float64), rows[:, None].astype(np.float64)

    def area(lo: float, hi: float, complement: bool) -> np.ndarray:
        s = (hi - lo) / 2 * nodes[None, :] + (hi + lo) / 2  # the nodes mapped from [-1, 1] to [lo, hi]
        curve = 1 - (1 - s**r) ** b
        return (hi - lo) / 2 * ((1 - curve) if complement else curve) @ weights

    return area(0.0, threshold, False), area(threshold, 1.0, True)


@functools.cache
def optimal_param(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising ``fp_weight * FP + fn_weight * FN``, exactly as datasketch's
    ``MinHashLSH`` chooses them (``datasketch.lsh._optimal_param``).

    FP is the area under the LSH S-curve ``1 - (1 - s**r)**b`` below ``threshold`` and FN the area
    above it under its complement; the search is over every b in 1..num_perm and r in 1..num_perm // b,
    keeping the first minimum in that order. ``bands * rows`` may be < num_perm (unused slots).
    """
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    bands, rows = (np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True))
    errors = np.empty(len(pairs))
    step = max(1, (1 << 22) // (num_perm // 2 + 1))  # pairs per evaluation: ~32 MB of float64 at a time
    for lo in range(0, len(pairs), step):
        fp, fn = _s_curve_areas(threshold, bands[lo : lo + step], rows[lo : lo + step])
        errors[lo : lo + step] = fp_weight * fp + fn_weight * fn
    best = int(np.argmin(errors))  # the first minimum, in datasketch's loop order
    return int(bands[best]), int(rows[best])


def _rotl64(x: np.ndarray, k: int) -> np.ndarray:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """64-bit key of every (row, band): shape (n, bands), uint64.

    Band j covers signature slots ``j*rows:(j+1)*rows``. The band index is mixed into the key, so
    different bands never share a bucket. Pure numpy arithmetic with fixed constants: the same
    signature gives the same keys in every process and on every machine (no Python ``hash()``).
    """
    n = signatures.shape[0]
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"bands * rows = {bands * rows} exceeds the signature length {signatures.shape[1]}")
    values = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    acc = np.broadcast_to((np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _P1 + _P5, (n, bands)).copy()
    for j in range(rows):
        acc += values[:, :, j] * _P2
        acc = _rotl64(acc, 31)
        acc *= _P1
    acc ^= acc >> np.uint64(33)
    acc *= _P2
    acc ^= acc >> np.uint64(29)
    acc *= _P3
    acc ^= acc >> np.uint64(32)
    return acc


def bucket_star_edges(table: pa.Table, key: str = "band_key", node: str = "id") -> pa.Table:
    """Candidate edges of every bucket in ``table`` (one row per (band key, node)).

    All rows of a bucket must be in ``table`` (callers partition by key first). A bucket with k distinct
    nodes yields k-1 edges from its smallest node to each other one (a star: same connected component
    as all k*(k-1)/2 pairs, linear size). Returns columns ``band_key``, ``src``, ``dst`` (src < dst).
    """
    table = table.select([key, node]).sort_by([(key, "ascending"), (node, "ascending")])
    keys = table[key].to_numpy()
    nodes = table[node]
    if len(keys) < 2:
        return empty_edges(nodes.type)
    new_bucket = np.ones(len(keys), dtype=bool)
    new_bucket[1:] = keys[1:] != keys[:-1]
    bucket_first = np.flatnonzero(new_bucket)
    center = np.repeat(bucket_first, np.diff(np.append(bucket_first, len(keys))))
    member = np.flatnonzero(~new_bucket)
    center = center[member]
    src, dst = nodes.take(pa.array(center)), nodes.take(pa.array(member))
    distinct = pc.not_equal(src, dst)  # a node listed twice in one bucket (duplicate id) is no edge
    return pa.table({"band_key": pa.array(keys[member], pa.uint64()), "src": src, "dst": dst}).filter(
        distinct
    )


def empty_edges(node_type: pa.DataType) -> pa.Table:
    """An edge table with no rows (the schema :func:`bucket_star_edges` returns)."""
    return pa.table(
        {
            "band_key": pa.array([], pa.uint64()),
            "src": pa.array([], node_type),
            "dst": pa.array([], node_type),
        }
    )
