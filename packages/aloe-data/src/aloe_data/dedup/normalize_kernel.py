"""The numba kernel behind :func:`aloe_data.dedup.normalize.normalize_strings` (see that module for why
its output is exactly :func:`aloe_core.text.normalize_for_matching`). Import it only where strings are
normalised: importing numba loads llvmlite, and vLLM 0.32 cannot start an engine in a process where
llvmlite is loaded."""

from __future__ import annotations

from numba import njit

_SPACE = 0x20


@njit(inline="always")
def _code_point(data, j, end):
    """(code point, width) of the 2- or 3-byte UTF-8 sequence at ``data[j]``; width 0 when it is not
    one (4-byte sequences, malformed or overlong bytes): the caller then leaves the string to Python."""
    lead = data[j]
    if 0xC2 <= lead <= 0xDF and j + 1 < end and data[j + 1] & 0xC0 == 0x80:
        return ((lead & 0x1F) << 6) | (data[j + 1] & 0x3F), 2
    if 0xE0 <= lead <= 0xEF and j + 2 < end and data[j + 1] & 0xC0 == 0x80 and data[j + 2] & 0xC0 == 0x80:
        cp = ((lead & 0x0F) << 12) | ((data[j + 1] & 0x3F) << 6) | (data[j + 2] & 0x3F)
        return cp, 3 if cp >= 0x800 else 0
    return 0, 0


@njit(cache=True, nogil=True, boundscheck=False)
def normalize_plain(data, offsets, word_bytes, separators, out, out_offsets, to_python):
    """Normalise every string ``data[offsets[i]:offsets[i + 1]]`` into ``out`` (``out_offsets``, from 0).

    ``word_bytes[b]`` is the case-folded ASCII byte ``b`` when it is ``\\w``, else 0 (a separator);
    ``separators[cp]`` marks the BMP code points that are plain separators. A separator run between two
    words becomes one space; runs before the first or after the last word vanish. A string holding any
    other code point is left empty with ``to_python[i]`` set. ``out`` needs one byte of slack: the ASCII
    path always writes the next byte and only advances past it when it keeps it (no branches there,
    the word/separator pattern of prose is unpredictable).
    """
    o = 0
    out_offsets[0] = 0
    for i in range(len(offsets) - 1):
        row_start = o
        after_separator = False
        pending = 0  # continuation bytes left of an already-validated multi-byte separator
        for j in range(offsets[i], offsets[i + 1]):
            byte = data[j]
            if byte >= 0x80:
                if pending:
                    pending -= 1
                    continue
                cp, width = _code_point(data, j, offsets[i + 1])
                if width == 0 or not separators[cp]:
                    to_python[i] = True
                    o = row_start
                    break
                pending = width - 1
                after_separator = True
                continue
            folded = word_bytes[byte]
            is_word = folded != 0
            out[o] = _SPACE
            o += after_separator & is_word & (o > row_start)
            out[o] = folded
            o += is_word
            after_separator = not is_word
        out_offsets[i + 1] = o
