"""MinHash signatures for whole batches of texts, bit-for-bit equal to datasketch's.

For every text, ``signatures(texts, config)[i]`` equals ``datasketch.MinHash(num_perm, seed,
scheme=scheme)`` updated with ``[s.encode("utf-8", "surrogatepass") for s in shingle_set(text, ...)]``
(:func:`aloe_data.dedup.shingles.shingle_set`). That is, as in datasketch:

* each shingle is hashed with ``sha1_hash32`` (first 4 bytes of SHA-1, little-endian);
* permutation parameters come from ``numpy.random.RandomState(seed)`` drawn in datasketch's order;
* ``scheme="affine32"`` (datasketch >= 2.0 default): ``h = fmix32(h)`` (MurmurHash3 finalizer), then
  ``a * h + b mod 2**32`` with odd ``a`` (a bijection, so no permutation collisions);
  ``scheme="legacy"`` (datasketch < 2.0, and ``scheme="legacy"`` in 2.x):
  ``((a * h + b) mod 2**64) mod (2**61 - 1)``, truncated to 32 bits;
* a signature slot is the minimum over the text's shingles.

Values are returned as uint32 for both schemes (legacy values are < 2**32 after truncation).

A text with no shingles (empty after normalisation) keeps datasketch's initial value, ``2**32 - 1`` in
every slot (:data:`EMPTY`); the LSH step never lets such rows become candidates, since all of them would
otherwise collide with each other.

The work is vectorised over the whole batch: shingles are hashed with the numpy SHA-1 of
:mod:`aloe_data.dedup.sha1`, and the permutation step runs over chunks of at most 4 MB of
(num_perm x shingles) values with ``np.minimum.reduceat`` per text, so memory stays bounded whatever
the batch or text size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import numpy as np

from aloe_data.dedup.sha1 import sha1_prefix32
from aloe_data.dedup.shingles import ShingleBatch, ShingleKind, shingle_batch

Scheme = Literal["affine32", "legacy"]

EMPTY = np.uint32(0xFFFFFFFF)
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_CHUNK_BYTES = 4 * 2**20  # per permutation chunk: cache-friendly; measured faster than 16-64 MB


@functools.cache
def permutations(num_perm: int, seed: int, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) permutation parameters datasketch draws for (num_perm, seed, scheme).

    Returns uint32 arrays for ``affine32`` and uint64 arrays for ``legacy``. Cached: the arrays are
    shared, do not modify them.
    """
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        # datasketch draws (a, b) pairs one permutation at a time: a in [1, p), b in [0, p).
        pairs = np.array(
            [
                (
                    gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64),
                    gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64),
                )
                for _ in range(num_perm)
            ],
            dtype=np.uint64,
        )
        a, b = pairs[:, 0].copy(), pairs[:, 1].copy()
    else:
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


def signatures(
    texts: Sequence[str],
    *,
    num_perm: int = 128,
    seed: int = 1,
    scheme: Scheme = "affine32",
    shingle: ShingleKind = "word",
    ngram: int = 5,
) -> np.ndarray:
    """MinHash signatures of ``texts``, shape (len(texts), num_perm), dtype uint32 (see module doc)."""
    batch = shingle_batch(texts, shingle, ngram)
    return signatures_from_shingles(batch, num_perm=num_perm, seed=seed, scheme=scheme)


def signatures_from_shingles(batch: ShingleBatch, *, num_perm: int, seed: int, scheme: Scheme) -> np.ndarray:
    """Signatures of an already shingled batch (hash every shingle, then permute and take minima)."""
    hashes = sha1_prefix32(batch.buffer, batch.starts, batch.lengths)
    return signatures_from_hashes(hashes, batch.offsets, num_perm=num_perm, seed=seed, scheme=scheme)


def signatures_from_hashes(
    hashes: np.ndarray, offsets: np.ndarray, *, num_perm: int, seed: int, scheme: Scheme
) -> np.ndarray:
    """Signatures from 32-bit shingle hashes; text i owns ``hashes[offsets[i]:offsets[i + 1]]``."""
    a, b = permutations(num_perm, seed, scheme)
    out = np.full((len(offsets) - 1, num_perm), EMPTY, dtype=np.uint32)
    legacy = scheme == "legacy"
    values = hashes.astype(np.uint64) if legacy else _fmix32(hashes.astype(np.uint32))
    chunk = max(1, _CHUNK_BYTES // (values.itemsize * num_perm))
    work = np.empty((2 if legacy else 1, num_perm, min(chunk, len(values))), dtype=values.dtype)
    for lo in range(0, len(values), chunk):
        hi = min(lo + chunk, len(values))
        # Texts with at least one shingle in [lo, hi), and where each one's part starts.
        first = int(np.searchsorted(offsets, lo, side="right")) - 1
        last = int(np.searchsorted(offsets, hi, side="left"))
        seg_start = np.maximum(offsets[first:last], lo)
        nonempty = np.minimum(offsets[first + 1 : last + 1], hi) > seg_start
        text_ids = np.arange(first, last)[nonempty]
        buf = work[:, :, : hi - lo]
        permuted = (
            _permute_legacy(values[lo:hi], a, b, buf)
            if legacy
            else _permute_affine32(values[lo:hi], a, b, buf[0])
        )
        minima = np.minimum.reduceat(permuted, seg_start[nonempty] - lo, axis=1).T
        out[text_ids] = np.minimum(out[text_ids], minima)
    return out


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix for the affine32 scheme)."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _permute_affine32(h: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[k, j] = a[k] * h[j] + b[k] mod 2**32`` (uint32 arithmetic wraps), shape (num_perm, len(h))."""
    np.multiply(a[:, None], h[None, :], out=out)
    out += b[:, None]
    return out


def _permute_legacy(h: np.ndarray, a: np.ndarray, b: np.ndarray, work: np.ndarray) -> np.ndarray:
    """datasketch's legacy ``(a * h + b) % (2**61 - 1) & (2**32 - 1)``, shape (num_perm, len(h)), uint64.

    datasketch computes ``a * h + b`` in uint64 (wrapping mod 2**64) and then ``%`` the Mersenne prime;
    the remainder is taken here with shifts (x mod 2**61-1 = (x & p) + (x >> 61), then at most one
    subtraction), which is exact and several times faster than numpy's integer ``%``.
    """
    x, folded = work[0], work[1]
    np.multiply(a[:, None], h[None, :], out=x)
    x += b[:, None]
    np.bitwise_and(x, _MERSENNE_PRIME, out=folded)
    x >>= np.uint64(61)
    folded += x
    np.subtract(folded, _MERSENNE_PRIME, out=folded, where=folded >= _MERSENNE_PRIME)
    folded &= _MAX_HASH
    return folded


def estimated_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Fraction of equal signature slots (datasketch ``MinHash.jaccard``), row-wise for 2-D inputs."""
    return np.count_nonzero(left == right, axis=-1) / left.shape[-1]
