"""SHA-1 of many short byte strings at once, compiled with numba.

MinHash signatures must equal datasketch's, whose default hash is ``sha1_hash32``: the first 4 bytes of
``hashlib.sha1(shingle)`` read as a little-endian uint32. Calling hashlib once per shingle costs
~0.3-0.5 us (object creation dominates for 30-byte inputs), and a numpy SHA-1 over column arrays, which
this module replaced, still spent ~170 ns per shingle moving arrays through memory. Here one compiled
kernel hashes a whole batch: ~40 ns per shingle, bit-for-bit the same digest prefix.

Why the kernel looks the way it does: LLVM vectorises a loop over messages (16 messages per AVX-512
register, 8 per AVX2) only when the loop body is straight-line code over contiguous arrays. So

* messages are processed in chunks of :data:`_CHUNK` (the working arrays stay in L1/L2 cache);
* a first loop copies each message's current 64-byte block, padded as SHA-1 requires, into a row of
  ``words`` (reads and writes in separate loops, so LLVM can prove they do not overlap);
* a second loop runs the 80 rounds fully unrolled (one line per round, in the classic unrolled form of
  the reference C implementations: the five state words rotate by renaming instead of moving).

Messages of different lengths share a chunk: the chunk runs as many blocks as its longest message needs,
and a message's state stops changing after its own last block.

The kernel lives in :mod:`aloe_data.dedup.sha1_kernel`, imported on first use, so that importing aloe
does not import numba: vLLM 0.32 cannot start an engine in a process where llvmlite is loaded (its
kernel registration scans every module and trips over llvmlite's ctypes wrapper), and CoT actors import
aloe_data.
"""

from __future__ import annotations

import numpy as np

# Bytes a message may read past its end (its last block's 16 words plus one for unaligned reads).
_SLACK = 72


def sha1_prefix32(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``datasketch.hashfunc.sha1_hash32(bytes(buf[s:s + n]))`` for every (s, n), as a uint32 array.

    Args:
        buf: uint8 array holding all messages.
        starts, lengths: integer arrays, one entry per message (slices must lie inside ``buf``).
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32)
    if len(starts) == 0:
        return out
    if starts.min() < 0 or lengths.min() < 0 or (starts + lengths).max() > len(buf):
        raise ValueError("sha1_prefix32: a (start, length) slice lies outside the buffer")
    # Little-endian uint32 view of the buffer with zero slack after it, so that any 4-byte read at any
    # byte offset is two aligned word reads and no read goes past the end.
    padded = np.zeros((len(buf) + _SLACK + 3) // 4 * 4, dtype=np.uint8)
    padded[: len(buf)] = buf
    from aloe_data.dedup.sha1_kernel import sha1_h0  # numba is imported only where hashing runs

    sha1_h0(padded.view(np.uint32), starts, lengths, out)
    return out
