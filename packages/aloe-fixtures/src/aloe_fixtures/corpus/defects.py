"""Planted defect kinds, their rates, and how many of each go into which file.

Counting rule (exact integers, so tests can assert them): the number of rows of kind ``k`` is
``floor(rate_k * rows + 0.5)`` (round half up) over all training rows; kinds are then split, in the
order of :data:`KINDS`, over the files where they make sense, in proportion to the rows each file has
not yet had planted, by largest remainder (ties go to the file listed first in :data:`ALL_FILES`). Every
planted row has exactly one defect.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

KINDS = (
    "exact_duplicate",
    "near_duplicate",
    "benchmark_leak",
    "pii_email",
    "pii_phone",
    "pii_url",
    "empty_answer",
    "short_answer",
    "answer_repeats_question",
    "non_english",
    "too_long",
    "malformed",
)

MCQA_FILES = ("prompt_engine/sample_mcqa.json", "medmcqa/train.jsonl", "medqa/train.jsonl")
PUBMEDQA = "pubmedqa/ori_pqal.json"
CHAT_FILES = ("chat/openai.jsonl", "chat/sharegpt.jsonl", "chat/alpaca.jsonl")
PREFERENCE = "preference/pairs.jsonl"
ALL_FILES = (*MCQA_FILES, PUBMEDQA, *CHAT_FILES, PREFERENCE)
JSONL_FILES = tuple(f for f in ALL_FILES if f.endswith(".jsonl"))

# Where each kind is planted, and why not elsewhere:
# * near duplicates need long matching texts; a PubMedQA item's matching text is its short question
#   (+ yes/no/maybe), where a single edited word already drops the Jaccard far below 0.85;
# * leaks copy benchmark MCQA items, so only MCQA files;
# * empty answers only where the readers accept an empty string (OpenAI and ShareGPT); Alpaca and
#   preference readers reject an empty output/chosen as malformed, which would blur the ground truth;
# * too-long rows in the files whose answers or contexts are free text;
# * malformed (unparseable or invalid) rows only in JSONL files, so JSON files stay parseable.
ELIGIBLE: dict[str, tuple[str, ...]] = {
    "exact_duplicate": ALL_FILES,
    "near_duplicate": (*MCQA_FILES, *CHAT_FILES, PREFERENCE),
    "benchmark_leak": MCQA_FILES,
    "pii_email": ALL_FILES,
    "pii_phone": ALL_FILES,
    "pii_url": ALL_FILES,
    "empty_answer": CHAT_FILES[:2],
    "short_answer": (*CHAT_FILES, PREFERENCE),
    "answer_repeats_question": (*CHAT_FILES, PREFERENCE),
    "non_english": ALL_FILES,
    "too_long": (PUBMEDQA, *CHAT_FILES, PREFERENCE),
    "malformed": JSONL_FILES,
}


@dataclass(frozen=True)
class DefectRates:
    """Fraction of all training rows planted with each defect (each planted row has exactly one).

    Defaults: 3% exact duplicates (half verbatim, half differing only in case, spacing or punctuation),
    4% near duplicates (5-gram Jaccard 0.85-0.97 with their original), 1% benchmark leaks, 0.6% each of
    e-mail, phone and URL PII, 0.5% empty and 0.5% one-or-two-character answers, 0.4% answers repeating
    the question, 1.5% non-English rows (es/fr/de/it/pt), 0.2% rows over 30,000 characters, 1% malformed
    JSONL rows. Total 14.3% defective, 85.7% clean.
    """

    exact_duplicate: float = 0.03
    near_duplicate: float = 0.04
    benchmark_leak: float = 0.01
    pii_email: float = 0.006
    pii_phone: float = 0.006
    pii_url: float = 0.006
    empty_answer: float = 0.005
    short_answer: float = 0.005
    answer_repeats_question: float = 0.004
    non_english: float = 0.015
    too_long: float = 0.002
    malformed: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"DefectRates.{f.name} must be a fraction between 0 and 1, got {value!r}")
        if self.total() > 0.5:
            raise ValueError(
                f"DefectRates sum to {self.total():.3f}; keep the total at most 0.5 so most rows stay clean"
            )

    def total(self) -> float:
        return sum(getattr(self, k) for k in KINDS)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def expected_count(rate: float, rows: int) -> int:
    """Rows of a kind for a corpus of ``rows`` training rows: ``floor(rate * rows + 0.5)``."""
    return math.floor(rate * rows + 0.5)


def largest_remainder(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` over keys proportionally to ``weights`` (ties: first key in insertion order)."""
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        return dict.fromkeys(weights, 0)
    shares = {k: total * w / weight_sum for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in shares.items()}
    order = sorted(weights, key=lambda k: (-(shares[k] - counts[k]), list(weights).index(k)))
    for k in order[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def file_sizes(rows: int, shares: dict[str, float]) -> dict[str, int]:
    """Rows per file: ``rows`` split by ``shares`` with largest remainder."""
    scaled = {k: round(v * 1_000_000) for k, v in shares.items()}
    return largest_remainder(rows, scaled)


def allocate(rates: DefectRates, sizes: dict[str, int]) -> dict[str, dict[str, int]]:
    """{file: {kind: count}} for every defect kind, each kind split over its eligible files.

    Raises:
        ValueError: a file would get more planted rows than half its size, or more duplicates than clean
            rows to copy (rates too high for ``rows``).
    """
    rows = sum(sizes.values())
    plan: dict[str, dict[str, int]] = {f: dict.fromkeys(KINDS, 0) for f in sizes}
    for kind in KINDS:
        total = expected_count(getattr(rates, kind), rows)
        # Weight by the rows each file still has unplanted, so small corpora spread single defects out.
        room = {f: sizes[f] - sum(plan[f].values()) for f in ELIGIBLE[kind] if f in sizes}
        for f, n in largest_remainder(total, room).items():
            plan[f][kind] = n
    for f, kinds in plan.items():
        planted = sum(kinds.values())
        originals = kinds["exact_duplicate"] + kinds["near_duplicate"]  # each needs its own clean original
        if planted * 2 > sizes[f] or originals > sizes[f] - planted:
            raise ValueError(
                f"{f}: {planted} planted rows out of {sizes[f]}; lower the DefectRates or raise rows"
            )
    return plan
