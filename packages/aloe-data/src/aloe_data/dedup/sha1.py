"""SHA-1 of many short byte strings at once, vectorised with numpy.

MinHash signatures must equal datasketch's, whose default hash is ``sha1_hash32``: the first 4 bytes of
``hashlib.sha1(shingle)`` read as a little-endian uint32. Calling hashlib once per shingle costs ~0.5 us
(object creation dominates for 30-byte inputs), which makes hashing the bottleneck of the signature step.
Here every shingle of a batch is a slice ``buf[start:start + length]`` of one byte buffer, and the SHA-1
compression function runs over all of them as uint32 column arrays (one numpy op per SHA-1 step,
applied to thousands of messages): ~4x faster per shingle, bit-for-bit the same digest prefix.

Slices are grouped by their number of 64-byte SHA-1 blocks; groups too small to amortise numpy's
per-call overhead (rare long shingles) go through hashlib.
"""

from __future__ import annotations

import hashlib

import numpy as np

_H_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_K = tuple(np.uint32(k) for k in (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6))
_U32 = np.uint32

# Messages per vectorised call: large enough to amortise numpy call overhead, small enough that the
# ~25 uint32 work arrays stay cache-resident (measured: 16k is the sweet spot on a 1 MB L2).
_CHUNK = 16384
# A block-count group smaller than this is hashed with hashlib (numpy overhead would dominate).
_MIN_VECTOR_GROUP = 64

# Padding masks indexed by clip(bytes_remaining_in_word, -1, 4) + 1: which message bytes of a
# big-endian word to keep, and where the 0x80 terminator goes.
_KEEP = np.array([0, 0, 0xFF000000, 0xFFFF0000, 0xFFFFFF00, 0xFFFFFFFF], dtype=np.uint32)
_PAD = np.array([0, 0x80000000, 0x00800000, 0x00008000, 0x00000080, 0], dtype=np.uint32)


def sha1_prefix32(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``datasketch.hashfunc.sha1_hash32(bytes(buf[s:s + n]))`` for every (s, n), as a uint32 array.

    Args:
        buf: uint8 array holding all messages.
        starts, lengths: int64 arrays, one entry per message (slices must lie inside ``buf``).
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32)
    if len(starts) == 0:
        return out
    nblocks = (lengths + 8) // 64 + 1
    counts = np.bincount(nblocks)
    vector_blocks = [nb for nb in np.flatnonzero(counts) if counts[nb] >= _MIN_VECTOR_GROUP]
    if vector_blocks:
        be32 = _big_endian_words(buf, 64 * max(vector_blocks))
        for nb in vector_blocks:
            sel = np.flatnonzero(nblocks == nb)
            for lo in range(0, len(sel), _CHUNK):
                part = sel[lo : lo + _CHUNK]
                words = _message_words(be32, starts[part], lengths[part], int(nb))
                out[part] = _compress_h0(words, int(nb)).byteswap()
    scalar = np.flatnonzero(counts[nblocks] < _MIN_VECTOR_GROUP)
    if len(scalar):
        raw = buf.tobytes()
        out[scalar] = [
            int.from_bytes(hashlib.sha1(raw[s : s + n]).digest()[:4], "little")
            for s, n in zip(starts[scalar].tolist(), lengths[scalar].tolist(), strict=True)
        ]
    return out


def _big_endian_words(buf: np.ndarray, pad: int) -> np.ndarray:
    """``w[i]`` = the big-endian uint32 made of bytes ``buf[i:i + 4]`` (zero past the end), for all i."""
    size = len(buf) + pad + 1
    padded = np.zeros(4 * (size // 4 + 2), dtype=np.uint8)
    padded[: len(buf)] = buf
    words = np.empty(size, dtype=np.uint32)
    for k in range(4):  # the words starting at k, k + 4, ... are one aligned big-endian view
        count = len(words[k::4])
        words[k::4] = padded[k : k + 4 * count].view(">u4")
    return words


def _message_words(be32: np.ndarray, starts: np.ndarray, lengths: np.ndarray, nblocks: int) -> np.ndarray:
    """The padded SHA-1 message schedule input, shape (16 * nblocks, n), one column per message."""
    offsets = 4 * np.arange(16 * nblocks, dtype=np.int64)[:, None]
    words = be32[starts[None, :] + offsets]
    words *= offsets <= (lengths - 4)[None, :]  # keep only words made entirely of message bytes
    # The word holding the end of the message: its remaining message bytes, then the 0x80 terminator.
    last = lengths // 4
    remaining = lengths % 4 + 1
    columns = np.arange(len(lengths))
    words[last, columns] = (be32[starts + 4 * last] & _KEEP[remaining]) | _PAD[remaining]
    # Message length in bits, big-endian 64-bit, in the last two words (the high word is 0 for < 512 MB).
    words[-1] |= (lengths * 8).astype(np.uint32)
    return words


def _compress_h0(words: np.ndarray, nblocks: int) -> np.ndarray:
    """Run SHA-1 over ``nblocks`` blocks per column and return the first state word (digest bytes 0-3)."""
    n = words.shape[1]
    state = [np.full(n, h, dtype=np.uint32) for h in _H_INIT]
    for block in range(nblocks):
        schedule = _schedule(words[16 * block : 16 * (block + 1)])
        for s, r in zip(state, _rounds(schedule, *(s.copy() for s in state)), strict=True):
            s += r
    return state[0]


def _schedule(block: np.ndarray) -> np.ndarray:
    """The 80-word message schedule of one block, (80, n), with each round's constant K already added.

    ``w[t] = rotl1(w[t-3] ^ w[t-8] ^ w[t-14] ^ w[t-16])`` depends on words at least 3 back, so three rows
    are computed per numpy call.
    """
    w = np.empty((80, block.shape[1]), dtype=np.uint32)
    w[:16] = block
    carry = np.empty((3, block.shape[1]), dtype=np.uint32)
    for t in range(16, 80, 3):
        k = min(3, 80 - t)
        row, tmp = w[t : t + k], carry[:k]
        np.bitwise_xor(w[t - 3 : t - 3 + k], w[t - 8 : t - 8 + k], out=row)
        row ^= w[t - 14 : t - 14 + k]
        row ^= w[t - 16 : t - 16 + k]
        np.right_shift(row, _U32(31), out=tmp)
        row <<= _U32(1)
        row |= tmp
    for group, k in enumerate(_K):
        w[20 * group : 20 * (group + 1)] += k
    return w


def _rounds(w: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray):
    """The 80 SHA-1 rounds over column arrays (updated in place); ``w`` is the schedule plus K."""
    t1 = np.empty_like(a)
    t2 = np.empty_like(a)
    for t in range(80):
        if t < 20:  # Ch(b, c, d) = d ^ (b & (c ^ d))
            np.bitwise_xor(c, d, out=t1)
            t1 &= b
            t1 ^= d
        elif 40 <= t < 60:  # Maj(b, c, d) = (b & c) | (d & (b | c))
            np.bitwise_or(b, c, out=t1)
            t1 &= d
            np.bitwise_and(b, c, out=t2)
            t1 |= t2
        else:  # parity
            np.bitwise_xor(b, c, out=t1)
            t1 ^= d
        e += t1
        e += w[t]
        np.left_shift(a, _U32(5), out=t1)  # e += rotl5(a)
        np.right_shift(a, _U32(27), out=t2)
        t1 |= t2
        e += t1
        np.right_shift(b, _U32(2), out=t1)  # b = rotl30(b)
        b <<= _U32(30)
        b |= t1
        a, b, c, d, e = e, a, b, c, d
    return a, b, c, d, e
