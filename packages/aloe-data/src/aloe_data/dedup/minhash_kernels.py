"""The numba kernels behind :func:`aloe_data.dedup.minhash.signatures_from_hashes`: fold every shingle
hash into its text's signature row. Import them only where signatures are computed: importing numba
loads llvmlite, and vLLM 0.32 cannot start an engine in a process where llvmlite is loaded."""

from __future__ import annotations

from numba import njit, uint32, uint64

MERSENNE_PRIME = (1 << 61) - 1


@njit(inline="always")
def _fmix32(h):
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix for the affine32 scheme)."""
    h = uint32(h ^ (h >> uint32(16)))
    h = uint32(h * uint32(0x85EBCA6B))
    h = uint32(h ^ (h >> uint32(13)))
    h = uint32(h * uint32(0xC2B2AE35))
    return uint32(h ^ (h >> uint32(16)))


@njit(cache=True, nogil=True, boundscheck=False)
def minima_affine32(hashes, offsets, a, b, out):
    """``out[i, k] = min over text i's hashes h of (a[k] * fmix32(h) + b[k]) mod 2**32``.

    The loop over permutations is innermost, so LLVM vectorises it (16 permutations per AVX-512 op).
    """
    for i in range(len(offsets) - 1):
        row = out[i]
        for j in range(offsets[i], offsets[i + 1]):
            h = _fmix32(hashes[j])
            for k in range(len(a)):
                row[k] = min(row[k], uint32(a[k] * h + b[k]))


@njit(cache=True, nogil=True, boundscheck=False)
def minima_legacy(hashes, offsets, a, b, out):
    """datasketch's legacy ``((a * h + b) mod 2**64) mod (2**61 - 1)``, truncated to 32 bits, minimised.

    The remainder by the Mersenne prime p is taken with shifts (x mod p = (x & p) + (x >> 61), then at
    most one subtraction), exact and much cheaper than an integer division.
    """
    prime = uint64(MERSENNE_PRIME)
    for i in range(len(offsets) - 1):
        row = out[i]
        for j in range(offsets[i], offsets[i + 1]):
            h = uint64(hashes[j])
            for k in range(len(a)):
                x = uint64(a[k] * h + b[k])
                folded = uint64((x & prime) + (x >> uint64(61)))
                folded = uint64(folded - prime) if folded >= prime else folded
                row[k] = min(row[k], uint32(folded & uint64(0xFFFFFFFF)))
