"""Text normalisation shared by every stage that compares texts (exact dedup, MinHash, decontamination).

One definition, used everywhere, so that "the same text" means the same thing in the corpus generator's
ground truth, in exact dedup, in fuzzy dedup and in benchmark decontamination.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize_for_matching(text: str) -> str:
    """NFKC, case-folded, punctuation removed, whitespace collapsed.

    Two texts that differ only in case, spacing, punctuation or Unicode compatibility forms (full-width
    letters, ligatures, non-breaking spaces) normalise to the same string.
    """
    # Replacing each run of punctuation (neither \w nor \s: every character is exactly one of the three)
    # by a space, collapsing whitespace and stripping leaves the maximal runs of \w characters joined by
    # single spaces: one regex pass finds them.
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def words(text: str) -> list[str]:
    """The tokens of :func:`normalize_for_matching` (whitespace split)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def word_ngrams(text: str, n: int) -> set[str]:
    """Distinct word n-grams of the normalised text, each joined by a single space.

    A text with fewer than ``n`` words (but at least one) yields one shingle: the whole text, so short
    texts still compare; an empty text yields the empty set.
    """
    tokens = words(text)
    if not tokens:
        return set()
    if len(tokens) < n:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: set[Any], b: set[Any]) -> float:
    """Exact Jaccard similarity; two empty sets are defined as dissimilar (0.0)."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def mcqa_matching_text(question: str, options: Iterable[Mapping[str, str]] | None) -> str:
    """Text that identifies an MCQA item independent of option order and letters.

    Option texts are sorted so that the same item with shuffled options is the same text.
    """
    texts = sorted(normalize_for_matching(o["text"]) for o in (options or []))
    return "\n".join([normalize_for_matching(question), *texts])


def matching_text(row: Mapping[str, Any]) -> str:
    """The text two records are compared on in dedup.

    * rows with an ``mcqa`` item (or mcqa records): question + sorted option texts (the answer's wording
      and explanation are not part of an item's identity);
    * other ``sft`` rows: every message's content, in order;
    * ``preference`` rows: prompt messages + chosen answer.
    """
    item = row.get("mcqa")
    if item is None and "question" in row and "options" in row:
        item = row
    if item is not None:
        return mcqa_matching_text(item["question"], item["options"])
    if "messages" in row:
        return "\n".join(m["content"] for m in row["messages"])
    if "prompt" in row:
        return "\n".join([*(m["content"] for m in row["prompt"]), row["chosen"]])
    raise ValueError(f"cannot build a matching text from a row with keys {sorted(row)}")
