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

The work runs over the whole batch in compiled code (numba): shingles are hashed with the SHA-1
kernel of :mod:`aloe_data.dedup.sha1`, then one kernel per scheme folds every hash into its text's
signature row, the loop over permutations innermost so that LLVM vectorises it. Memory is the output
plus one uint32 per shingle, whatever the batch or text size.
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
    hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.full((len(offsets) - 1, num_perm), EMPTY, dtype=np.uint32)
    from aloe_data.dedup import minhash_kernels  # numba is imported only where signatures are computed

    kernel = minhash_kernels.minima_legacy if scheme == "legacy" else minhash_kernels.minima_affine32
    kernel(hashes, offsets, a, b, out)
    return out


def estimated_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Fraction of equal signature slots (datasketch ``MinHash.jaccard``), row-wise for 2-D inputs."""
    return np.count_nonzero(left == right, axis=-1) / left.shape[-1]
