"""The numba SHA-1 kernel behind :func:`aloe_data.dedup.sha1.sha1_prefix32` (see that module for why
it is shaped this way). Import it only where hashing runs: importing numba loads llvmlite, and vLLM 0.32
cannot start an engine in a process where llvmlite is loaded."""

from __future__ import annotations

import numpy as np
from numba import njit, uint32, uint64

_CHUNK = 512
_H0, _H1, _H2, _H3, _H4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
_K0, _K20, _K40, _K60 = 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6


@njit(inline="always")
def _rotl(x, k):
    return uint32((x << uint32(k)) | (x >> uint32(32 - k)))


@njit(inline="always")
def _byteswap(x):
    return uint32(
        ((x & uint32(0xFF)) << uint32(24))
        | ((x & uint32(0xFF00)) << uint32(8))
        | ((x >> uint32(8)) & uint32(0xFF00))
        | (x >> uint32(24))
    )


@njit(inline="always")
def _expand(w3, w8, w14, w16):
    """One message-schedule word: ``w[t] = rotl1(w[t-3] ^ w[t-8] ^ w[t-14] ^ w[t-16])``."""
    return _rotl(uint32(w3 ^ w8 ^ w14 ^ w16), 1)


@njit(inline="always")
def _choose(v, w, x, y, z, word):
    """Rounds 0-19 with the state renamed (v, w, x, y, z): returns the new (z, w)."""
    return uint32(z + _rotl(v, 5) + (y ^ (w & (x ^ y))) + _K0 + word), _rotl(w, 30)


@njit(inline="always")
def _parity(v, w, x, y, z, word, k):
    """Rounds 20-39 and 60-79 (constant ``k``): returns the new (z, w)."""
    return uint32(z + _rotl(v, 5) + (w ^ x ^ y) + k + word), _rotl(w, 30)


@njit(inline="always")
def _majority(v, w, x, y, z, word):
    """Rounds 40-59: returns the new (z, w)."""
    return uint32(z + _rotl(v, 5) + ((w & x) | (y & (w | x))) + _K40 + word), _rotl(w, 30)


@njit(inline="always")
def _load_block(buf32, start, length, block, row):
    """Block ``block`` of the padded message ``buf[start:start + length]`` as 16 big-endian words.

    Padding: the byte 0x80 right after the message, zeros, and the message length in bits in the last
    two words of the last block (the high word is 0 below 512 MB).
    """
    base = (start >> 2) + 16 * block
    shift = uint64(8 * (start & 3))
    last_block = (length + 8) // 64
    for t in range(16):
        pair = (uint64(buf32[base + t + 1]) << uint64(32)) | uint64(buf32[base + t])
        word = _byteswap(uint32(pair >> shift))
        remaining = length - 64 * block - 4 * t  # message bytes from this word on
        kept = min(max(remaining, 0), 4)
        keep_mask = uint32((uint64(0xFFFFFFFF) << uint64(32 - 8 * kept)) & uint64(0xFFFFFFFF))
        terminator = uint32(uint64(0x80000000) >> uint64(8 * kept))
        word = uint32((word & keep_mask) | terminator) if remaining >= 0 else uint32(0)
        if t == 15 and block == last_block:
            word = uint32(word | uint32(8 * length))
        row[t] = word


@njit(cache=True, nogil=True, boundscheck=False)
def sha1_h0(buf32, starts, lengths, out):
    """First digest word of SHA-1 for every message, little-endian (``sha1_hash32``), into ``out``."""
    state = np.empty((5, _CHUNK), dtype=np.uint32)
    words = np.empty((_CHUNK, 16), dtype=np.uint32)
    for lo in range(0, len(starts), _CHUNK):
        size = min(_CHUNK, len(starts) - lo)
        state[0], state[1], state[2], state[3], state[4] = _H0, _H1, _H2, _H3, _H4
        blocks = 0
        for j in range(size):
            blocks = max(blocks, (lengths[lo + j] + 8) // 64 + 1)
        for block in range(blocks):
            for j in range(size):
                _load_block(buf32, starts[lo + j], lengths[lo + j], block, words[j])
            for j in range(size):
                live = block <= (lengths[lo + j] + 8) // 64
                h0, h1, h2, h3, h4 = state[0, j], state[1, j], state[2, j], state[3, j], state[4, j]
                a, b, c, d, e = h0, h1, h2, h3, h4
                w0, w1, w2, w3 = words[j, 0], words[j, 1], words[j, 2], words[j, 3]
                w4, w5, w6, w7 = words[j, 4], words[j, 5], words[j, 6], words[j, 7]
                w8, w9, w10, w11 = words[j, 8], words[j, 9], words[j, 10], words[j, 11]
                w12, w13, w14, w15 = words[j, 12], words[j, 13], words[j, 14], words[j, 15]
                # Rounds 0-19: choose.
                e, b = _choose(a, b, c, d, e, w0)
                d, a = _choose(e, a, b, c, d, w1)
                c, e = _choose(d, e, a, b, c, w2)
                b, d = _choose(c, d, e, a, b, w3)
                a, c = _choose(b, c, d, e, a, w4)
                e, b = _choose(a, b, c, d, e, w5)
                d, a = _choose(e, a, b, c, d, w6)
                c, e = _choose(d, e, a, b, c, w7)
                b, d = _choose(c, d, e, a, b, w8)
                a, c = _choose(b, c, d, e, a, w9)
                e, b = _choose(a, b, c, d, e, w10)
                d, a = _choose(e, a, b, c, d, w11)
                c, e = _choose(d, e, a, b, c, w12)
                b, d = _choose(c, d, e, a, b, w13)
                a, c = _choose(b, c, d, e, a, w14)
                e, b = _choose(a, b, c, d, e, w15)
                w0 = _expand(w13, w8, w2, w0)
                d, a = _choose(e, a, b, c, d, w0)
                w1 = _expand(w14, w9, w3, w1)
                c, e = _choose(d, e, a, b, c, w1)
                w2 = _expand(w15, w10, w4, w2)
                b, d = _choose(c, d, e, a, b, w2)
                w3 = _expand(w0, w11, w5, w3)
                a, c = _choose(b, c, d, e, a, w3)
                # Rounds 20-39: parity.
                w4 = _expand(w1, w12, w6, w4)
                e, b = _parity(a, b, c, d, e, w4, _K20)
                w5 = _expand(w2, w13, w7, w5)
                d, a = _parity(e, a, b, c, d, w5, _K20)
                w6 = _expand(w3, w14, w8, w6)
                c, e = _parity(d, e, a, b, c, w6, _K20)
                w7 = _expand(w4, w15, w9, w7)
                b, d = _parity(c, d, e, a, b, w7, _K20)
                w8 = _expand(w5, w0, w10, w8)
                a, c = _parity(b, c, d, e, a, w8, _K20)
                w9 = _expand(w6, w1, w11, w9)
                e, b = _parity(a, b, c, d, e, w9, _K20)
                w10 = _expand(w7, w2, w12, w10)
                d, a = _parity(e, a, b, c, d, w10, _K20)
                w11 = _expand(w8, w3, w13, w11)
                c, e = _parity(d, e, a, b, c, w11, _K20)
                w12 = _expand(w9, w4, w14, w12)
                b, d = _parity(c, d, e, a, b, w12, _K20)
                w13 = _expand(w10, w5, w15, w13)
                a, c = _parity(b, c, d, e, a, w13, _K20)
                w14 = _expand(w11, w6, w0, w14)
                e, b = _parity(a, b, c, d, e, w14, _K20)
                w15 = _expand(w12, w7, w1, w15)
                d, a = _parity(e, a, b, c, d, w15, _K20)
                w0 = _expand(w13, w8, w2, w0)
                c, e = _parity(d, e, a, b, c, w0, _K20)
                w1 = _expand(w14, w9, w3, w1)
                b, d = _parity(c, d, e, a, b, w1, _K20)
                w2 = _expand(w15, w10, w4, w2)
                a, c = _parity(b, c, d, e, a, w2, _K20)
                w3 = _expand(w0, w11, w5, w3)
                e, b = _parity(a, b, c, d, e, w3, _K20)
                w4 = _expand(w1, w12, w6, w4)
                d, a = _parity(e, a, b, c, d, w4, _K20)
                w5 = _expand(w2, w13, w7, w5)
                c, e = _parity(d, e, a, b, c, w5, _K20)
                w6 = _expand(w3, w14, w8, w6)
                b, d = _parity(c, d, e, a, b, w6, _K20)
                w7 = _expand(w4, w15, w9, w7)
                a, c = _parity(b, c, d, e, a, w7, _K20)
                # Rounds 40-59: majority.
                w8 = _expand(w5, w0, w10, w8)
                e, b = _majority(a, b, c, d, e, w8)
                w9 = _expand(w6, w1, w11, w9)
                d, a = _majority(e, a, b, c, d, w9)
                w10 = _expand(w7, w2, w12, w10)
                c, e = _majority(d, e, a, b, c, w10)
                w11 = _expand(w8, w3, w13, w11)
                b, d = _majority(c, d, e, a, b, w11)
                w12 = _expand(w9, w4, w14, w12)
                a, c = _majority(b, c, d, e, a, w12)
                w13 = _expand(w10, w5, w15, w13)
                e, b = _majority(a, b, c, d, e, w13)
                w14 = _expand(w11, w6, w0, w14)
                d, a = _majority(e, a, b, c, d, w14)
                w15 = _expand(w12, w7, w1, w15)
                c, e = _majority(d, e, a, b, c, w15)
                w0 = _expand(w13, w8, w2, w0)
                b, d = _majority(c, d, e, a, b, w0)
                w1 = _expand(w14, w9, w3, w1)
                a, c = _majority(b, c, d, e, a, w1)
                w2 = _expand(w15, w10, w4, w2)
                e, b = _majority(a, b, c, d, e, w2)
                w3 = _expand(w0, w11, w5, w3)
                d, a = _majority(e, a, b, c, d, w3)
                w4 = _expand(w1, w12, w6, w4)
                c, e = _majority(d, e, a, b, c, w4)
                w5 = _expand(w2, w13, w7, w5)
                b, d = _majority(c, d, e, a, b, w5)
                w6 = _expand(w3, w14, w8, w6)
                a, c = _majority(b, c, d, e, a, w6)
                w7 = _expand(w4, w15, w9, w7)
                e, b = _majority(a, b, c, d, e, w7)
                w8 = _expand(w5, w0, w10, w8)
                d, a = _majority(e, a, b, c, d, w8)
                w9 = _expand(w6, w1, w11, w9)
                c, e = _majority(d, e, a, b, c, w9)
                w10 = _expand(w7, w2, w12, w10)
                b, d = _majority(c, d, e, a, b, w10)
                w11 = _expand(w8, w3, w13, w11)
                a, c = _majority(b, c, d, e, a, w11)
                # Rounds 60-79: parity.
                w12 = _expand(w9, w4, w14, w12)
                e, b = _parity(a, b, c, d, e, w12, _K60)
                w13 = _expand(w10, w5, w15, w13)
                d, a = _parity(e, a, b, c, d, w13, _K60)
                w14 = _expand(w11, w6, w0, w14)
                c, e = _parity(d, e, a, b, c, w14, _K60)
                w15 = _expand(w12, w7, w1, w15)
                b, d = _parity(c, d, e, a, b, w15, _K60)
                w0 = _expand(w13, w8, w2, w0)
                a, c = _parity(b, c, d, e, a, w0, _K60)
                w1 = _expand(w14, w9, w3, w1)
                e, b = _parity(a, b, c, d, e, w1, _K60)
                w2 = _expand(w15, w10, w4, w2)
                d, a = _parity(e, a, b, c, d, w2, _K60)
                w3 = _expand(w0, w11, w5, w3)
                c, e = _parity(d, e, a, b, c, w3, _K60)
                w4 = _expand(w1, w12, w6, w4)
                b, d = _parity(c, d, e, a, b, w4, _K60)
                w5 = _expand(w2, w13, w7, w5)
                a, c = _parity(b, c, d, e, a, w5, _K60)
                w6 = _expand(w3, w14, w8, w6)
                e, b = _parity(a, b, c, d, e, w6, _K60)
                w7 = _expand(w4, w15, w9, w7)
                d, a = _parity(e, a, b, c, d, w7, _K60)
                w8 = _expand(w5, w0, w10, w8)
                c, e = _parity(d, e, a, b, c, w8, _K60)
                w9 = _expand(w6, w1, w11, w9)
                b, d = _parity(c, d, e, a, b, w9, _K60)
                w10 = _expand(w7, w2, w12, w10)
                a, c = _parity(b, c, d, e, a, w10, _K60)
                w11 = _expand(w8, w3, w13, w11)
                e, b = _parity(a, b, c, d, e, w11, _K60)
                w12 = _expand(w9, w4, w14, w12)
                d, a = _parity(e, a, b, c, d, w12, _K60)
                w13 = _expand(w10, w5, w15, w13)
                c, e = _parity(d, e, a, b, c, w13, _K60)
                w14 = _expand(w11, w6, w0, w14)
                b, d = _parity(c, d, e, a, b, w14, _K60)
                w15 = _expand(w12, w7, w1, w15)
                a, c = _parity(b, c, d, e, a, w15, _K60)
                if live:
                    state[0, j] = uint32(h0 + a)
                    state[1, j] = uint32(h1 + b)
                    state[2, j] = uint32(h2 + c)
                    state[3, j] = uint32(h3 + d)
                    state[4, j] = uint32(h4 + e)
        for j in range(size):
            out[lo + j] = _byteswap(state[0, j])
