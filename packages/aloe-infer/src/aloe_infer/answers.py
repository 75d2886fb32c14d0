"""Reading the final answer out of a generated chain of thought, and checking it against the reference.

Shared by the CoT stage (aloe-data: verified synthetic reasoning) and the eval harness (cot, sc-cot and
Medprompt answers), so a benchmark score and a training filter read answers by the same rules.

A model asked to end with ``Answer: B`` does not always do so. :func:`extract_answer` collects every
*answer statement* in the text and maps each to an option letter:

* answer lines and phrases: ``Answer: B``, ``**Answer:** B. Aspirin``, ``Final answer: (b)``, ``the
  correct answer is B``, ``the answer is option C`` (the stage's own ``answer_prefix`` counts too);
* ``option B is correct`` / ``(B) is the correct answer``;
* a last line that is only a letter (``B`` or ``(B)``);
* option *text* instead of a letter (``Answer: aspirin``) maps to the option whose text it starts with
  (after :func:`aloe_core.text.normalize_for_matching`), the longest such option if several;
  ``yes or no`` names both.

A letter counts only if it is one of the row's option letters. Lower-case letters count only when they
cannot be a word: in brackets or followed by punctuation or the end of the line (``the answer is (b)``,
``answer: b.``), never ``the answer is a drug...``. A letter followed by the text of a *different*
option (``Answer: B. Metformin`` where B is Insulin) counts as both, as do enumerations (``A and B``).

The verdict: one distinct letter -> that answer; two or more -> ``ambiguous``; none -> ``no_answer``.
:func:`verify` then compares with the reference: ``verified`` or ``wrong``. Nothing else passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aloe_core.text import normalize_for_matching

Outcome = Literal["verified", "wrong", "ambiguous", "no_answer"]

# An answer key phrase; the answer follows it on the same line.
_KEY = re.compile(
    r"(?:\b(?:the\s+)?(?:final|correct|best|right)\s+(?:answer|option|choice)|\banswer)"
    r"\s*(?:\*\*|__)?\s*(?:is|would\s+be|should\s+be|must\s+be|[:=])?\s*(?:\*\*|__)?\s*(?::\s*)?",
    re.IGNORECASE,
)
# "option B is correct", "(B) is the correct answer", "choice C is the right one"
_LETTER_IS_CORRECT = re.compile(
    r"(?:\b(?:option|choice|answer)\s+)?\(?\b([A-Za-z])\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\b",
    re.IGNORECASE,
)
_LEAD = re.compile(r"^[\s*_#>:\-]*(?:(?:option|choice|letter)\s+)?", re.IGNORECASE)
_LETTER = re.compile(r"^[(\[]?([A-Za-z])[)\]]?(?=$|[\s.,:;!?)\]*_])")
_BRACKETED = re.compile(r"^[(\[][A-Za-z][)\]]")
_AND_LETTER = re.compile(r"^\s*(?:,|/|&|\band\b|\bor\b)\s*[(\[]?([A-Z])[)\]]?(?=$|[\s.,:;!?)\]*_])")


@dataclass(frozen=True)
class Extraction:
    """What a text answers: ``letter`` when exactly one option letter was found."""

    letter: str | None
    letters: tuple[str, ...]  # every distinct letter found, in order of appearance

    @property
    def status(self) -> Literal["ok", "ambiguous", "none"]:
        if len(self.letters) == 1:
            return "ok"
        return "ambiguous" if self.letters else "none"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    letter: str | None  # the extracted answer (None unless exactly one letter was found)
    letters: tuple[str, ...]


def _options_by_text(fragment: str, options: Sequence[Mapping[str, str]]) -> list[str]:
    """Letters of the options ``fragment`` starts with (longest option text wins), following
    enumerations: ``"yes or no"`` names two options."""
    text = normalize_for_matching(fragment)
    found: list[str] = []
    while text:
        best: tuple[int, str] | None = None
        tie = False
        for option in options:
            name = normalize_for_matching(option["text"])
            if name and (text == name or text.startswith(name + " ")):
                if best is None or len(name) > best[0]:
                    best, tie = (len(name), option["letter"]), False
                elif len(name) == best[0]:
                    tie = True
        if best is None or tie:
            break
        found.append(best[1])
        rest = text[best[0] :].strip()
        joined = re.match(r"^(?:or|and)\s+", rest)
        text = rest[joined.end() :] if joined else ""
    return found


def _letters_in_statement(tail: str, options: Sequence[Mapping[str, str]]) -> list[str]:
    """The option letters an answer statement names (``tail``: the text after the key phrase)."""
    tail = tail.strip()
    lead = _LEAD.match(tail)
    rest = tail[lead.end() :] if lead else tail
    letters = {o["letter"].upper(): o["letter"] for o in options}
    match = _LETTER.match(rest)
    if match is not None:
        raw = match.group(1)
        after = rest[match.end() :]
        word_follows = re.match(r"^\s+[a-z]", after) is not None
        is_letter = raw.upper() in letters and (
            raw.isupper() or _BRACKETED.match(rest) is not None or not word_follows
        )
        if is_letter:
            found = [letters[raw.upper()]]
            # "A and B", "A or C", "A, B": an enumeration names every letter in it.
            while (more := _AND_LETTER.match(after)) is not None and more.group(1).upper() in letters:
                found.append(letters[more.group(1).upper()])
                after = after[more.end() :]
            # "B. Aspirin": the text after the letter may name an option too; a different one conflicts.
            named = _options_by_text(after.lstrip(" .:)-*_"), options)
            return found + [letter for letter in named if letter not in found]
    return _options_by_text(rest, options)


def _statements(text: str, answer_prefix: str) -> Iterable[str]:
    """The text after every answer key phrase (to the end of its line)."""
    prefix = answer_prefix.strip().rstrip(":").strip()
    for line in text.splitlines():
        for match in _KEY.finditer(line):
            yield line[match.end() :]
        if prefix and prefix.lower() != "answer":
            index = line.lower().find(prefix.lower())
            if index >= 0:
                yield line[index + len(prefix) :].lstrip(" :*_")


def extract_answer(
    text: str, options: Sequence[Mapping[str, str]], answer_prefix: str = "Answer:"
) -> Extraction:
    """Every option letter ``text`` states as its answer (see the module docstring for the rules)."""
    found: list[str] = []
    for tail in _statements(text, answer_prefix):
        found += _letters_in_statement(tail, options)
    letters = {o["letter"].upper(): o["letter"] for o in options}
    for match in _LETTER_IS_CORRECT.finditer(text):
        raw = match.group(1)
        if raw.upper() in letters and (raw.isupper() or match.group(0).lstrip().startswith("(")):
            found.append(letters[raw.upper()])
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        last = _LETTER.match(lines[-1].strip("*_ "))
        if last is not None and len(lines[-1].strip("*_ .()[]")) == 1 and last.group(1).upper() in letters:
            found.append(letters[last.group(1).upper()])
    distinct = tuple(dict.fromkeys(found))
    return Extraction(distinct[0] if len(distinct) == 1 else None, distinct)


def verify(
    text: str, options: Sequence[Mapping[str, str]], reference: str, answer_prefix: str = "Answer:"
) -> Verdict:
    """``verified`` only if the text states exactly one answer and it is ``reference``."""
    extraction = extract_answer(text, options, answer_prefix)
    if extraction.status == "none":
        return Verdict("no_answer", None, ())
    if extraction.status == "ambiguous":
        return Verdict("ambiguous", None, extraction.letters)
    outcome: Outcome = "verified" if extraction.letter == reference else "wrong"
    return Verdict(outcome, extraction.letter, extraction.letters)


def has_answer_line(text: str, answer_prefix: str = "Answer:") -> bool:
    """True if the last non-empty line starts with ``answer_prefix`` (markdown emphasis ignored)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    last = lines[-1].strip().lstrip("*_# ").replace("**", "").replace("__", "")
    return last.lower().startswith(answer_prefix.strip().lower())
