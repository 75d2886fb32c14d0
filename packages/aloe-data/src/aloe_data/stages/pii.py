"""Finding and masking personal data (emails, phone numbers, URLs) in free text.

Healthcare data must not carry contact details into a release. The patterns are deliberately narrow
where medical text is dense with numbers: a phone number needs at least eight digits in two or three
groups, so lab ranges ("135-145 mEq/L", "7.35-7.45"), doses ("500 mg") and years ("2020-2024") are left
alone.

:func:`scrub_pii_array` and :func:`find_pii_array` do the same over a whole Arrow string array: an RE2
:func:`prefilter` picks the strings that may hold PII and the exact Python patterns run on those only.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_data.stages.arrow_text import digit_class, matches, python_class

PiiKind = Literal["email", "phone", "url"]

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]", re.IGNORECASE)
PHONE = re.compile(
    r"(?<![\w.+-])"  # not glued to a word, a decimal or another number
    r"(?:\+\d{1,3}[\s.-]?)?"  # international prefix
    r"(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])"  # area code, bracketed or followed by a separator
    r"\d{3}[\s.-]?\d{3,4}"
    r"(?![\w.]?\d)"
)
PATTERNS: dict[PiiKind, re.Pattern[str]] = {"email": EMAIL, "url": URL, "phone": PHONE}
MASKS: dict[PiiKind, str] = {"email": "<EMAIL>", "url": "<URL>", "phone": "<PHONE>"}


def find_pii(text: str, kinds: tuple[PiiKind, ...] = ("email", "url", "phone")) -> dict[str, list[str]]:
    """The PII strings found in ``text`` by kind (emails and URLs are searched before phones so a
    number inside a URL is not counted twice)."""
    found: dict[str, list[str]] = {}
    for kind in kinds:
        matches = PATTERNS[kind].findall(text)
        if matches:
            found[kind] = matches
            text = PATTERNS[kind].sub(" ", text)
    return found


def scrub_pii(
    text: str, kinds: tuple[PiiKind, ...], action: Literal["mask", "remove"]
) -> tuple[str, dict[str, int]]:
    """Replace (mask) or delete (remove) each PII kind in ``text``; returns the text and how many
    strings of each kind were hit (kinds with none left out)."""
    hits: dict[str, int] = {}
    for kind in kinds:
        replacement = MASKS[kind] if action == "mask" else ""
        text, count = PATTERNS[kind].subn(replacement, text)
        if count:
            hits[kind] = count
    return text, hits


@cache
def prefilter(kinds: tuple[PiiKind, ...]) -> str:
    """An RE2 pattern that matches every string in which one of ``kinds`` can be found (and few others).

    Each kind's pattern needs a substring its prefilter looks for: an email an ``@``; a URL ``://`` or
    ``www.`` (IGNORECASE folds no other character to ``w``); a phone number a separator or ``)`` before
    a group of three digits, an optional separator and three more (``\\d``/``\\s`` being Python's
    Unicode classes, spelt out). RE2 cannot run PHONE itself (look-arounds), and its ``\\b``, ``\\d``
    and ``\\s`` are not Python's, so the exact patterns run only on the strings this selects.
    """
    digit, sep = digit_class(), python_class(r"[\s.\-]")  # PHONE's \d and [\s.-]
    parts = {
        "email": "@",
        "url": r"://|[wW][wW][wW]\.",
        "phone": rf"(?:{digit}{sep}|\)){sep}?{digit}{{3}}{sep}?{digit}{{3}}",
    }
    return "|".join(f"(?:{parts[kind]})" for kind in kinds)


def _candidates(texts: pa.Array, kinds: tuple[PiiKind, ...]) -> np.ndarray:
    """Indices of the strings that may hold PII of ``kinds`` (a superset of those that do)."""
    return np.flatnonzero(matches(texts, prefilter(kinds))) if kinds else np.zeros(0, dtype=np.int64)


def scrub_pii_array(
    texts: pa.Array, kinds: tuple[PiiKind, ...], action: Literal["mask", "remove"]
) -> tuple[pa.Array, np.ndarray]:
    """:func:`scrub_pii` on every string of ``texts``: the scrubbed strings and, per string, how many
    strings of each kind (columns in ``kinds`` order) were hit."""
    hits = np.zeros((len(texts), len(kinds)), dtype=np.int64)
    where = _candidates(texts, kinds)
    if len(where) == 0:
        return texts, hits
    scrubbed = []
    for i, text in zip(where, texts.take(pa.array(where)).to_pylist(), strict=True):
        text, hit = scrub_pii(text, kinds, action)
        scrubbed.append(text)
        hits[i] = [hit.get(kind, 0) for kind in kinds]
    mask = np.zeros(len(texts), dtype=bool)
    mask[where] = True
    return pc.replace_with_mask(texts, pa.array(mask), pa.array(scrubbed, texts.type)), hits


def find_pii_array(texts: pa.Array, kinds: tuple[PiiKind, ...]) -> np.ndarray:
    """Per string of ``texts``, how many strings of each kind (columns in ``kinds`` order)
    :func:`find_pii` finds."""
    hits = np.zeros((len(texts), len(kinds)), dtype=np.int64)
    where = _candidates(texts, kinds)
    for i, text in zip(where, texts.take(pa.array(where)).to_pylist(), strict=True):
        found = find_pii(text, kinds)
        hits[i] = [len(found.get(kind, ())) for kind in kinds]
    return hits
