"""Helpers shared by the multiple-choice generators: option assembly, distractor sampling, vignettes."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

from aloe_core.text import normalize_for_matching
from aloe_fixtures.corpus.facts import Disease
from aloe_fixtures.corpus.items import McqaItem
from aloe_fixtures.corpus.phrasing import (
    HISTORIES,
    SETTINGS,
    Patient,
    cap,
    duration,
    pick,
    rint,
    routine_labs,
    social,
    vitals,
)


@functools.lru_cache(maxsize=1 << 14)
def _key(option: str) -> str:
    return normalize_for_matching(option)


def distractors(
    rng: random.Random, correct: str, pool: Sequence[str], k: int, prefer: Sequence[str] = ()
) -> list[str] | None:
    """``k`` distinct wrong options, taken first from ``prefer`` then from ``pool`` (both shuffled).

    Options that normalise equal to the correct one or to each other are skipped; None when fewer than
    ``k`` remain (the caller then tries another fact).
    """
    seen = {_key(correct)}
    chosen: list[str] = []
    for source in (prefer, pool):
        source = source if isinstance(source, list | tuple) else list(source)
        # Random draws without replacement, stopping as soon as k are found (cheaper than a full shuffle).
        for i in _random_order(rng, len(source)):
            key = _key(source[i])
            if key in seen:
                continue
            seen.add(key)
            chosen.append(source[i])
            if len(chosen) == k:
                return chosen
    return None


def _random_order(rng: random.Random, n: int):
    """Indices 0..n-1 in random order, generated lazily (partial Fisher-Yates)."""
    order = list(range(n))
    for i in range(n):
        j = i + int(rng.random() * (n - i))
        order[i], order[j] = order[j], order[i]
        yield order[i]


INSTRUCTIONS = (
    "Choose the single best answer from the options listed below.",
    "Read all of the options carefully before you choose the best one.",
    "Only one of the options below is correct, so pick the best one.",
    "Pick the best answer and think about why the other options are wrong.",
    "Select the one option that is the most accurate in this situation.",
    "There is only one best answer here, so read every option first.",
    "Answer with the letter of the option that fits the question best.",
    "Consider each of the options carefully before answering the question.",
)


def assemble(
    rng: random.Random,
    question: str,
    correct: str,
    wrong: Sequence[str],
    explanation: str,
    subject: str,
    topic: str,
    template: str,
    context: Sequence[str] = (),
) -> McqaItem:
    """Shuffle the correct option among ``wrong`` and build the item (option texts capitalised).

    Short-style questions get an exam instruction appended: a one-line stem followed by Latin-heavy
    option names is otherwise too little English for language identification to be reliable.
    """
    if template.endswith(".short"):
        question = f"{question} {pick(rng, INSTRUCTIONS)}"
    options = [correct, *wrong]
    rng.shuffle(options)
    return McqaItem(
        question=question,
        options=tuple(cap(o) for o in options),
        answer=options.index(correct),
        explanation=explanation,
        subject=subject,
        topic=topic,
        context=tuple(context),
        template=template,
    )


VISIT_SETTINGS = (
    "is seen in the outpatient clinic",
    "comes to the primary care office",
    "comes to the physician",
    "is seen for a scheduled follow-up visit",
    "attends a telehealth consultation",
    "is referred to the specialist clinic",
    "is reviewed on the medical ward",
)
VISIT_PURPOSES = (
    "",
    " to discuss treatment",
    " for a medication review",
    " for a routine review",
    " to review test results",
    " after recent hospital discharge",
)


BROUGHT_SETTINGS = ("is brought to the emergency department", "is brought to the hospital by ambulance")
CHILD_SETTINGS = (
    "is brought to the physician by {his} parents",
    "is brought to the pediatric clinic by {his} mother",
    "is brought to the emergency department by {his} father",
)


def opening(
    rng: random.Random,
    p: Patient,
    complaint: str | None = None,
    condition: str | None = None,
    onset: tuple[str, int, int] | None = None,
    brought: bool = False,
) -> str:
    """First sentence of a vignette: who, where, and a complaint (with a duration) or a known condition."""
    if condition is not None:
        return f"{p.intro()} with {condition} {pick(rng, VISIT_SETTINGS)}{pick(rng, VISIT_PURPOSES)}."
    if p.age < 13:
        setting = pick(rng, CHILD_SETTINGS).format(his=p.his)
    elif brought:
        setting = pick(rng, BROUGHT_SETTINGS)
    else:
        setting = pick(rng, SETTINGS)
    if complaint is None:
        return f"{p.intro()} {setting}."
    dur = f" {duration(rng, onset)}" if onset is not None or not brought else ""
    form = pick(
        rng,
        (
            "{who} {setting} because of {reason}{dur}.",
            "{who} {setting} with {reason}{dur}.",
            "{who} {setting} for evaluation of {reason}{dur}.",
        ),
    )
    return form.format(who=p.intro(), setting=setting, reason=complaint, dur=dur)


def background(rng: random.Random, p: Patient, fever: bool = False) -> list[str]:
    """One to four sentences: history and social history (shuffled), then vital signs, then routine labs."""
    story = [f"{cap(p.he)} {pick(rng, HISTORIES)}.", social(rng, p)]
    rng.shuffle(story)
    sentences = story[: rint(rng, 1, 2)]
    if rng.random() < 0.8:
        sentences.append(vitals(rng, fever=fever, tachy=fever and rng.random() < 0.5))
    if rng.random() < 0.4:
        sentences.append(routine_labs(rng))
    return sentences


def vignette(
    rng: random.Random,
    p: Patient,
    middle: Sequence[str],
    ask: str,
    complaint: str | None = None,
    condition: str | None = None,
    fever: bool = False,
    first: str | None = None,
) -> str:
    """A USMLE-style stem: opening (``first`` or a generic one), background, item sentences, question."""
    start = first if first is not None else opening(rng, p, complaint, condition)
    parts = [start, *background(rng, p, fever), *middle, ask]
    return " ".join(part.strip() for part in parts if part)


def disease_opening(rng: random.Random, p: Patient, disease: Disease) -> str:
    """The opening of a vignette about ``disease``: its presentation, a fitting duration and its clue."""
    text = opening(rng, p, disease.presentation, onset=disease.onset, brought=disease.brought)
    if disease.clue:
        text += f" {cap(p.he)} {disease.clue}."
    return text
