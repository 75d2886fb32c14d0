"""Finding and masking personal data (emails, phone numbers, URLs) in free text.

Healthcare data must not carry contact details into a release. The patterns are deliberately narrow
where medical text is dense with numbers: a phone number needs at least eight digits in two or three
groups, so lab ranges ("135-145 mEq/L", "7.35-7.45"), doses ("500 mg") and years ("2020-2024") are left
alone.
"""

from __future__ import annotations

import re
from typing import Literal

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
