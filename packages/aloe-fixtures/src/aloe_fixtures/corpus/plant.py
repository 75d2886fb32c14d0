"""Single-row defects: PII in a natural sentence, empty/short/echoed answers, rows over 30,000 characters.

PII values are fictional: e-mail and web addresses use the reserved ``example`` domains, US numbers use
the fictional 555 exchange, international numbers are random digits in common national layouts.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from aloe_fixtures.corpus.facts_clinical import DISEASES
from aloe_fixtures.corpus.facts_drugs import DRUGS
from aloe_fixtures.corpus.items import ChatItem, Item, McqaItem, PreferenceItem, YesNoItem
from aloe_fixtures.corpus.mutate import answer_target, get_text, question_target, set_text
from aloe_fixtures.corpus.phrasing import pick, rint
from aloe_fixtures.corpus.sentences import disease_sentences, drug_sentences

FIRST = ("maria", "john", "ana", "li", "fatima", "peter", "lucia", "omar", "sara", "david", "elena", "kenji")
LAST = ("garcia", "smith", "rossi", "muller", "silva", "chen", "dubois", "khan", "novak", "jensen", "lopez")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "clinic.example.org")
SLUGS = (
    "guidelines",
    "patient-leaflet",
    "dosing",
    "clinic",
    "diabetes-care",
    "heart-health",
    "results",
    "appointments",
    "medication-info",
    "lab-values",
)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def email(rng: random.Random) -> str:
    sep = pick(rng, (".", "_", ""))
    return f"{pick(rng, FIRST)}{sep}{pick(rng, LAST)}{rint(rng, 1, 99)}@{pick(rng, DOMAINS)}"


def phone(rng: random.Random) -> str:
    """US formats ('(555) 013-2876', '555-013-2876') and international ones ('+34 612 345 678')."""
    line = f"01{_digits(rng, 2)}"
    forms = (
        f"(555) {line[:3]}-{line[3]}{_digits(rng, 3)}",
        f"555-{_digits(rng, 3)}-{_digits(rng, 4)}",
        f"555.{_digits(rng, 3)}.{_digits(rng, 4)}",
        f"+1 555 {_digits(rng, 3)} {_digits(rng, 4)}",
        f"+34 6{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}",
        f"+44 20{_digits(rng, 1)} {_digits(rng, 3)} {_digits(rng, 4)}",
        f"+49 30{_digits(rng, 1)} {_digits(rng, 3)} {_digits(rng, 4)}",
        f"+39 34{_digits(rng, 1)} {_digits(rng, 3)} {_digits(rng, 4)}",
        f"+351 91{_digits(rng, 1)} {_digits(rng, 3)} {_digits(rng, 3)}",
    )
    return pick(rng, forms)


def url(rng: random.Random) -> str:
    slug = pick(rng, SLUGS)
    forms = (
        f"https://www.{pick(rng, DOMAINS)}/{slug}",
        f"http://{pick(rng, DOMAINS)}/{slug}?id={rint(rng, 10, 9999)}",
        f"www.{pick(rng, DOMAINS)}/{slug}",
        f"https://{pick(rng, DOMAINS)}/{slug}/{rint(rng, 2, 99)}",
    )
    return pick(rng, forms)


QUESTION_SENTENCES = {
    "email": (
        "You can reply to me at {v}.",
        "My email is {v} if you need more details.",
        "Questions about this case can be sent to {v}.",
    ),
    "phone": (
        "You can call me on {v} if anything is unclear.",
        "The clinic can be reached at {v}.",
        "My number is {v}.",
    ),
    "url": (
        "I read about it at {v}.",
        "The leaflet I was given points to {v}.",
        "The full case is posted at {v}.",
    ),
}
ANSWER_SENTENCES = {
    "email": ("For follow-up questions, write to {v}.", "The study coordinator can be contacted at {v}."),
    "phone": ("To book a review, call {v}.", "The advice line is {v}."),
    "url": ("More information is available at {v}.", "See {v} for the full guideline."),
}

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")


def insert_sentence(rng: random.Random, text: str, sentence: str) -> str:
    """Insert ``sentence`` at a sentence boundary of ``text`` (before the last sentence when there is one)."""
    bounds = [m.end() for m in _SENTENCE_END.finditer(text)]
    if bounds and rng.random() < 0.7:
        i = bounds[-1]
        return text[:i] + sentence + " " + text[i:]
    return f"{text.rstrip()} {sentence}"


def plant_pii(rng: random.Random, item: Item, kind: str) -> tuple[Item, str, str]:
    """Put a PII value of ``kind`` (email, phone, url) in a question or answer; returns item, value, field."""
    value = {"email": email, "phone": phone, "url": url}[kind](rng)
    use_answer = isinstance(item, YesNoItem) or (not isinstance(item, McqaItem) and rng.random() < 0.4)
    target = answer_target(item) if use_answer else question_target(item)
    template = pick(rng, (ANSWER_SENTENCES if use_answer else QUESTION_SENTENCES)[kind])
    text = insert_sentence(rng, get_text(item, target), template.format(v=value))
    return set_text(item, target, text), value, target


SHORT_ANSWERS = ("ok", ".", "-", "no", "?", "k", "OK", "..", "y", "??", "-.")
EMPTY_ANSWERS = ("", " ", "\n", "  ")


def plant_empty(rng: random.Random, item: ChatItem) -> Item:
    return set_text(item, answer_target(item), pick(rng, EMPTY_ANSWERS))


def plant_short(rng: random.Random, item: Item) -> Item:
    return set_text(item, answer_target(item), pick(rng, SHORT_ANSWERS))


def plant_repeat(rng: random.Random, item: Item) -> Item:
    """The answer becomes the question, verbatim or with a trivial case change."""
    if isinstance(item, ChatItem) and item.alpaca_input is not None:
        item = replace(item, alpaca_input=None)
    question = get_text(item, question_target(item))
    echo = pick(rng, (question, question.lower(), question[:1].lower() + question[1:]))
    return set_text(item, answer_target(item), echo)


def long_review(rng: random.Random, limit: int = 30_500) -> str:
    """A rambling 'complete review' of many drugs and diseases, longer than ``limit`` characters."""
    paragraphs: list[str] = []
    size = 0
    while size <= limit:
        if rng.random() < 0.5:
            facts = list(drug_sentences(rng, pick(rng, DRUGS)).values())
        else:
            facts = list(disease_sentences(rng, pick(rng, DISEASES)).values())
        rng.shuffle(facts)
        paragraph = " ".join(facts)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def plant_too_long(rng: random.Random, item: Item) -> Item:
    """Make the row's total text exceed 30,000 characters through its answer (or PubMedQA contexts)."""
    text = long_review(rng)
    if isinstance(item, YesNoItem):
        return replace(
            item,
            contexts=(*item.contexts, *text.split("\n\n")),
            labels=(*item.labels, *["RESULTS"] * text.count("\n\n"), "RESULTS"),
        )
    if isinstance(item, PreferenceItem):
        return replace(item, chosen=f"{item.chosen}\n\n{text}")
    return set_text(item, answer_target(item), f"{get_text(item, answer_target(item))}\n\n{text}")
