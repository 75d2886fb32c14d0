"""Whole rows written in Spanish, French, German, Italian or Portuguese (the ``non_english`` defect).

Each builder returns an item of the same family as the file it goes to, written entirely in one language
from :mod:`~aloe_fixtures.corpus.multilingual_data`, with random ages, vital signs and study numbers so the
rows are distinct from each other.
"""

from __future__ import annotations

import random

from aloe_fixtures.corpus.items import ChatItem, McqaItem, PreferenceItem, YesNoItem
from aloe_fixtures.corpus.mcqa_common import distractors
from aloe_fixtures.corpus.multilingual_data import LANGUAGES, Language, LocalDrug
from aloe_fixtures.corpus.phrasing import cap, pick, rint

LANGUAGE_CODES = tuple(LANGUAGES)


def _values(rng: random.Random, lang: Language, drug: LocalDrug) -> dict[str, object]:
    """Every placeholder a template may use, filled with this drug and random numbers."""
    female = rng.random() < 0.5
    age = rint(rng, 25, 85)
    return {
        "drug": drug.name,
        "cls": drug.cls,
        "use": drug.use,
        "effect": drug.effect,
        "age": age,
        "months": rint(rng, 2, 40),
        "weeks": rint(rng, 2, 16),
        "sys": rint(rng, 110, 165),
        "dia": rint(rng, 65, 98),
        "pulse": rint(rng, 58, 104),
        "e": "e" if female else "",
        "intro": (lang.woman if female else lang.man).format(age=age),
    }


def _decimal(value: float, digits: int = 2) -> str:
    """Decimal comma, as written in all five languages."""
    return f"{value:.{digits}f}".replace(".", ",")


def mcqa_item(rng: random.Random, code: str, n_options: int) -> McqaItem:
    lang = LANGUAGES[code]
    drug = pick(rng, lang.drugs)
    v = _values(rng, lang, drug)
    ask_class = rng.random() < 0.5
    if ask_class:
        correct, pool, ask = drug.cls_option, [d.cls_option for d in lang.drugs], pick(rng, lang.ask_class)
    else:
        correct, pool, ask = drug.effect, [d.effect for d in lang.drugs], pick(rng, lang.ask_effect)
    wrong = distractors(rng, correct, pool, n_options - 1) or []
    options = [correct, *wrong]
    rng.shuffle(options)
    question = f"{lang.vignette.format(**v)} {ask}"
    return McqaItem(
        question=question,
        options=tuple(cap(o) for o in options),
        answer=options.index(correct),
        explanation=cap(lang.explanation.format(**v)),
        subject="Pharmacology",
        topic="Drug classes" if ask_class else "Adverse effects",
        template=f"non_english.{code}",
    )


def yesno_item(rng: random.Random, code: str) -> YesNoItem:
    lang = LANGUAGES[code]
    drug = pick(rng, lang.drugs)
    v = _values(rng, lang, drug)
    n = rint(rng, 300, 9000)
    k = rint(rng, n // 20, n // 5)
    ratio = rng.uniform(1.6, 3.5)
    low = ratio * rng.uniform(0.55, 0.8)
    high = ratio + (ratio - low) * rng.uniform(1.1, 1.5)
    start = rint(rng, 2004, 2014)
    v |= {
        "n": n,
        "k": k,
        "pct": _decimal(100 * k / n, 1),
        "ratio": _decimal(ratio),
        "low": _decimal(low),
        "high": _decimal(high),
        "y1": start,
        "y2": start + rint(rng, 3, 8),
    }
    return YesNoItem(
        question=cap(pick(rng, lang.pubmed_question).format(**v)),
        contexts=tuple(cap(c.format(**v)) for c in lang.pubmed_contexts),
        labels=("BACKGROUND", "METHODS", "RESULTS"),
        meshes=("Humans", "Adult", drug.name),
        decision="yes",
        long_answer=cap(lang.pubmed_answer.format(**v)),
        year=rint(rng, 2008, 2023),
        template=f"non_english.{code}",
    )


def _slots(rng: random.Random, slots: tuple[tuple[str, ...], ...], v: dict[str, object]) -> str:
    return " ".join(cap(pick(rng, variants).format(**v)) for variants in slots)


def _with_context(
    rng: random.Random, lang: Language, v: dict[str, object], prompt: str, answer: str
) -> tuple[str, str]:
    """Usually prefix a personal detail (a reading, an appointment) and echo it at the end of the answer."""
    if not lang.context or rng.random() < 0.25:
        return prompt, answer
    detail, echo = pick(rng, lang.context)
    return f"{detail.format(**v)} {prompt}", f"{answer} {echo.format(**v)}"


def chat_item(rng: random.Random, code: str, fmt: str) -> ChatItem:
    lang = LANGUAGES[code]
    drug = pick(rng, lang.drugs)
    v = _values(rng, lang, drug)
    user = cap(pick(rng, lang.chat_user).format(**v))
    answer = _slots(rng, lang.chat_answer, v)
    user, answer = _with_context(rng, lang, v, user, answer)
    messages: list[tuple[str, str]] = []
    if fmt != "alpaca" and rng.random() < 0.35:
        messages.append(("system", pick(rng, lang.system)))
    messages += [("user", user), ("assistant", answer)]
    return ChatItem(tuple(messages), f"non_english.{code}")


def preference_item(rng: random.Random, code: str) -> PreferenceItem:
    lang = LANGUAGES[code]
    drug = pick(rng, lang.drugs)
    v = _values(rng, lang, drug)
    prompt, chosen = _with_context(
        rng, lang, v, cap(pick(rng, lang.pref_prompt).format(**v)), _slots(rng, lang.pref_chosen, v)
    )
    return PreferenceItem(
        prompt=prompt,
        chosen=chosen,
        rejected=pick(rng, lang.pref_rejected),
        category="unsafe_advice",
    )
