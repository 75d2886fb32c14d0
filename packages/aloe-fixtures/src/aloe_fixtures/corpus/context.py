"""Personal context for prompts (first-person details with numbers) and the answer sentences echoing it.

A real patient or student writes "I'm 67, I weigh 82 kg, my sodium was 131"; a careful answer picks up
those details. Both sides carry random values, which is what keeps thousands of answers about the same
drug or disease apart in word 5-grams. Echo sentences only state what follows from the values (a reading
above or below a range, an interaction to mention), never new medical claims.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aloe_fixtures.corpus.facts_clinical import LABS
from aloe_fixtures.corpus.facts_drugs import DRUGS
from aloe_fixtures.corpus.mcqa_clinical import adult, lab_value, with_unit
from aloe_fixtures.corpus.phrasing import pick, rint

Detail = tuple[str, str]  # (prompt sentence, answer echo)

_FEELINGS = (
    "tired",
    "dizzy",
    "more thirsty than usual",
    "low in energy",
    "a bit nauseous",
    "short of sleep",
    "achy",
    "anxious about it",
)


def _age(rng: random.Random) -> Detail:
    age = rint(rng, 19, 90)
    return pick(rng, (f"I'm {age}.", f"I am {age} years old.", f"For context, I'm {age}.")), pick(
        rng,
        (
            f"At {age}, the main advice is the same, although doses and kidney function are reviewed more "
            "carefully "
            f"with age.",
            f"Your age ({age}) is one of the things your prescriber weighs up.",
            f"Being {age} does not change the basic facts, but it can change the details of the plan.",
        ),
    )


def _weight(rng: random.Random) -> Detail:
    kg = rint(rng, 48, 130)
    return f"I weigh {kg} kg.", pick(
        rng,
        (
            f"Body weight ({kg} kg in your case) is one of the factors considered when a dose is chosen.",
            f"Mention your weight of {kg} kg if it has changed recently, as that can matter for dosing.",
        ),
    )


def _pressure(rng: random.Random) -> Detail:
    sys_, dia = rint(rng, 100, 176), rint(rng, 60, 106)
    if sys_ >= 140 or dia >= 90:
        verdict = "above the usual target"
    elif sys_ >= 120 or dia >= 80:
        verdict = "a little above the ideal range"
    else:
        verdict = "in the normal range"
    return (
        pick(
            rng,
            (
                f"My blood pressure at home was {sys_}/{dia} this morning.",
                f"My last blood pressure reading was {sys_}/{dia}.",
            ),
        ),
        f"A reading of {sys_}/{dia} mm Hg is {verdict}; a log of several readings is more useful than one.",
    )


def _lab(rng: random.Random) -> Detail:
    lab = pick(rng, LABS)
    status, value = lab_value(rng, lab)
    shown = with_unit(f"{value:.{lab.decimals}f}", lab)
    verdict = {"low": "below", "high": "above", "normal": "within"}[status]
    return (
        f"My last {lab.short} result was {shown}.",
        f"A {lab.short} of {shown} is {verdict} the usual range for {adult(lab)}, so mention it when you "
        f"discuss this.",
    )


def _other_drug(rng: random.Random) -> Detail:
    d = pick(rng, DRUGS)
    use = pick(rng, d.uses)
    return (
        f"I also take {d.name} for {use}.",
        f"Because you also take {d.name}, ask your pharmacist to check for interactions.",
    )


def _feeling(rng: random.Random) -> Detail:
    days, feeling = rint(rng, 2, 30), pick(rng, _FEELINGS)
    return (
        f"I've been feeling {feeling} for {days} days.",
        f"Feeling {feeling} for {days} days is worth mentioning to your doctor as well.",
    )


def _appointment(rng: random.Random) -> Detail:
    weeks = rint(rng, 2, 12)
    return (
        f"My next appointment is in {weeks} weeks.",
        f"If waiting {weeks} weeks feels too long, ask for an earlier review or speak to a pharmacist.",
    )


def _alcohol(rng: random.Random) -> Detail:
    units = rint(rng, 2, 28)
    return (
        f"I drink about {units} units of alcohol a week.",
        f"Around {units} units of alcohol a week is worth mentioning, since alcohol interacts with many "
        f"medicines.",
    )


# Age is not among the defaults: most prompts state it already, and a second, different age would clash.
PERSONAL: tuple[Callable[[random.Random], Detail], ...] = (
    _weight,
    _pressure,
    _lab,
    _other_drug,
    _feeling,
    _appointment,
    _alcohol,
)
AGE, FEELING, APPOINTMENT = (_age,), (_feeling,), (_appointment,)


def _exam(rng: random.Random) -> Detail:
    days = rint(rng, 2, 60)
    return (
        f"My exam is in {days} days.",
        pick(
            rng,
            (
                f"With {days} days to go, turning these facts into flashcards works well.",
                f"You have {days} days, so revisit this topic a couple of times before the exam.",
            ),
        ),
    )


def _questions(rng: random.Random) -> Detail:
    done, total = rint(rng, 10, 400), rint(rng, 401, 3000)
    return (
        f"I've done {done} of {total} practice questions so far.",
        f"After {done} questions, mixing in this topic with the rest of your practice set will help.",
    )


def _year(rng: random.Random) -> Detail:
    year = rint(rng, 1, 6)
    return (
        f"I'm in year {year} of my course.",
        f"For year {year}, knowing the mechanism and the classic adverse effect is usually enough.",
    )


STUDY: tuple[Callable[[random.Random], Detail], ...] = (_exam, _questions, _year)


def details(rng: random.Random, kinds=PERSONAL, low: int = 1, high: int = 3) -> tuple[str, list[str]]:
    """Between ``low`` and ``high`` distinct details: (prompt sentences joined, their answer echoes)."""
    chosen = rng.sample(list(kinds), rint(rng, low, min(high, len(kinds))))
    pairs = [make(rng) for make in chosen]
    return " ".join(p for p, _ in pairs), [e for _, e in pairs]
