"""Preference pairs: a prompt, a chosen (correct, careful) answer and a rejected answer.

Categories (``PreferenceItem.category``):

* ``factual``: the rejected answer states a wrong fact (another drug's class, a wrong first-line treatment,
  an effect the drug does not cause, a shifted reference range, the wrong nerve) with confidence;
* ``unhelpful``: the rejected answer evades or gives nothing usable;
* ``unsafe_advice``: a patient asks about stopping or doubling a medicine, an interaction, or red-flag
  symptoms; the rejected answer is overconfident, unsafe advice with no caveats;
* ``safety_refusal``: a red-teaming prompt (dangerous dosing, harming someone, misuse); the chosen answer
  refuses and offers a safe alternative, the rejected one complies vaguely. Neither contains doses,
  amounts or methods: the rejected text stays non-actionable by construction.

Most prompts also carry personal details (readings, other medicines, an appointment date) that the chosen
answer picks up, see :mod:`aloe_fixtures.corpus.context`.
"""

from __future__ import annotations

import random

from aloe_fixtures.corpus.context import PERSONAL, details
from aloe_fixtures.corpus.items import PreferenceItem
from aloe_fixtures.corpus.mix import Mix
from aloe_fixtures.corpus.phrasing import cumulative, pick, rint, weighted
from aloe_fixtures.corpus.preference_facts import FACTUAL
from aloe_fixtures.corpus.preference_safety import SAFETY, SAFETY_DETAILS, UNSAFE, UNSAFE_WITHOUT_DETAILS

EVASIONS = (
    "I'm not able to help with medical questions. Please ask a doctor.",
    "It depends. Everyone is different, so it is hard to say.",
    "You can probably find that online if you search for it.",
    "That's a complicated topic and there are many opinions about it.",
    "I don't really know, sorry. Maybe check with someone.",
    "Medicine is complex, so I'd rather not say anything specific.",
)


def with_context(rng: random.Random, item: PreferenceItem, kinds=PERSONAL) -> PreferenceItem:
    """Prefix the prompt with one to three personal details and close the chosen answer with echoes."""
    prompt, echoes = details(rng, kinds)
    chosen = " ".join([item.chosen, *rng.sample(echoes, rint(rng, 1, len(echoes)))])
    return PreferenceItem(f"{prompt} {item.prompt}", chosen, item.rejected, item.category)


def _factual(rng: random.Random) -> PreferenceItem:
    prompt, chosen, rejected = pick(rng, FACTUAL)(rng)
    item = PreferenceItem(prompt, chosen, rejected, "factual")
    return with_context(rng, item) if rng.random() < 0.75 else item


def _unhelpful(rng: random.Random) -> PreferenceItem:
    item = _factual(rng)
    return PreferenceItem(item.prompt, item.chosen, pick(rng, EVASIONS), "unhelpful")


def _unsafe(rng: random.Random) -> PreferenceItem:
    make = pick(rng, UNSAFE)
    item = PreferenceItem(*make(rng), "unsafe_advice")
    return item if make in UNSAFE_WITHOUT_DETAILS else with_context(rng, item)


def _safety(rng: random.Random) -> PreferenceItem:
    make = pick(rng, SAFETY)
    item = PreferenceItem(*make(rng), "safety_refusal")
    kinds = SAFETY_DETAILS.get(make)
    return item if kinds is None else with_context(rng, item, kinds)


_CATEGORIES = (_factual, _unhelpful, _unsafe, _safety)
_WEIGHTS = (0.4, 0.15, 0.25, 0.2)
_CATEGORY_CUM = cumulative(_WEIGHTS)


def make_mix() -> Mix:
    """An adaptive mix over the four categories (see :mod:`aloe_fixtures.corpus.mix`)."""
    return Mix(_CATEGORIES, _WEIGHTS)


def generate(rng: random.Random, mix: Mix | None = None) -> PreferenceItem:
    """One pair; categories in proportions 40% factual, 15% unhelpful, 25% unsafe advice, 20% safety
    (shifted by ``mix`` towards categories with room left at large sizes)."""
    make = mix.choose(rng) if mix is not None else weighted(rng, _CATEGORIES, _CATEGORY_CUM)
    return make(rng)
