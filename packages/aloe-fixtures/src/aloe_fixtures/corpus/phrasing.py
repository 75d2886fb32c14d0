"""Small random building blocks shared by the generators: patients, vital signs, settings, connectives.

Why random numbers everywhere: a corpus of a few hundred facts must still give tens of thousands of rows
that are pairwise far apart in word 5-grams (the dedup ground truth depends on it). Ages, durations and
vital signs vary per row and touch most 5-grams of a vignette, which keeps unrelated rows apart, and the
same details are woven into answers.

All numbers are written so that no clean text looks like a phone number: at most four digits in a row and
never two bare numbers separated only by a space, dot or hyphen except for short ranges ("135-145").
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def pick(rng: random.Random, seq):
    """One element of a non-empty sequence (like ``rng.choice``, but several times cheaper)."""
    return seq[int(rng.random() * len(seq))]


def rint(rng: random.Random, low: int, high: int) -> int:
    """A random integer in [low, high] (like ``rng.randint``, but several times cheaper)."""
    return low + int(rng.random() * (high - low + 1))


def weighted(rng: random.Random, options: tuple, cum_weights: tuple[float, ...]):
    """One of ``options`` drawn with precomputed cumulative weights (cheaper than ``rng.choices``)."""
    x = rng.random() * cum_weights[-1]
    for option, bound in zip(options, cum_weights, strict=True):
        if x < bound:
            return option
    return options[-1]


def cumulative(weights) -> tuple[float, ...]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


def cap(text: str) -> str:
    """Upper-case the first character only (``str.capitalize`` would lower-case the rest, e.g. 'ACE')."""
    return text[:1].upper() + text[1:] if text else text


def article(word: str) -> str:
    """'a' or 'an' for the phrase ``word`` (by its first letter; good enough for our vocabulary)."""
    first = word[:1].lower()
    if (
        word[:2].isupper() and first in "aefhilmnorsx"
    ):  # initialisms read letter by letter: "an ACE", "an SSRI"
        return "an"
    return "an" if first in "aeiou" else "a"


def join_list(items: list[str], conj: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


@dataclass(frozen=True)
class Patient:
    age: int
    sex: str  # "male" or "female"

    @property
    def noun(self) -> str:
        if self.age < 13:
            return "boy" if self.sex == "male" else "girl"
        if self.age < 18:
            return "teenage boy" if self.sex == "male" else "teenage girl"
        return "man" if self.sex == "male" else "woman"

    @property
    def he(self) -> str:
        return "he" if self.sex == "male" else "she"

    @property
    def his(self) -> str:
        return "his" if self.sex == "male" else "her"

    @property
    def him(self) -> str:
        return "him" if self.sex == "male" else "her"

    def intro(self) -> str:
        """'A 54-year-old woman' / 'An 18-year-old man' / 'An 8-year-old boy'."""
        age = f"{self.age}-year-old"
        return f"{cap(article_for_number(self.age))} {age} {self.noun}"


def article_for_number(n: int) -> str:
    """'an' before numbers read with a vowel sound (8, 11, 18, 80-89), else 'a'."""
    return "an" if n in (8, 11, 18) or 80 <= n <= 89 else "a"


def patient(rng: random.Random, age: tuple[int, int] = (18, 85), sex: str = "any") -> Patient:
    chosen = sex if sex in ("male", "female") else pick(rng, ("male", "female"))
    return Patient(rint(rng, age[0], age[1]), chosen)


SETTINGS = (
    "comes to the emergency department",
    "is seen in the outpatient clinic",
    "presents to the primary care office",
    "is evaluated at an urgent care center",
    "comes to the physician",
    "is seen for a scheduled follow-up visit",
    "is evaluated in the hospital",
    "presents to a walk-in clinic",
    "is referred to the specialist clinic",
    "attends a telehealth consultation",
)

HISTORIES = (
    "has no significant past medical history",
    "had an appendectomy many years ago",
    "has seasonal allergic rhinitis",
    "has mild osteoarthritis of the knees",
    "had a tonsillectomy in childhood",
    "has chronic lower back pain managed with physiotherapy",
    "had a cholecystectomy several years ago",
    "has well-controlled hyperlipidemia managed with diet",
    "has a history of a healed wrist fracture",
    "has occasional tension headaches",
    "had a knee arthroscopy in the past",
    "has mild eczema",
)

SOCIAL = (
    "{He} works as a teacher.",
    "{He} works in a warehouse.",
    "{He} is a retired accountant.",
    "{He} works night shifts as a nurse.",
    "{He} is a university student.",
    "{He} drinks alcohol occasionally.",
    "{He} does not smoke.",
    "{He} quit smoking {n} years ago.",
    "{He} walks for exercise {n} times a week.",
    "{He} lives with {his} partner.",
    "{He} lives alone.",
    "{He} recently returned from a trip abroad.",
    "{He} works as a bus driver.",
    "{He} is a self-employed carpenter.",
    "{He} runs a small bakery.",
)


def social(rng: random.Random, p: Patient) -> str:
    text = pick(rng, SOCIAL).format(He=cap(p.he), his=p.his, n=rint(rng, 2, 9))
    return text


def duration(rng: random.Random, onset: tuple[str, int, int] | None = None) -> str:
    """'for 3 days', 'over the past 2 weeks', 'that began 5 hours ago'; ``onset`` = (unit, min, max)."""
    if onset is None:
        unit = pick(rng, ("hours", "days", "days", "weeks", "weeks", "months"))
        onset = (unit, *{"hours": (2, 20), "days": (2, 12), "weeks": (2, 10), "months": (2, 11)}[unit])
    unit, low, high = onset
    n = rint(rng, low, high)
    if n == 1:
        unit = unit[:-1]
    form = pick(
        rng, ("for {n} {u}", "over the past {n} {u}", "for the last {n} {u}", "that began {n} {u} ago")
    )
    return form.format(n=n, u=unit)


def sex_for(text: str) -> str:
    """The patient sex a condition or indication implies ('female', 'male' or 'any')."""
    lowered = text.lower()
    if any(k in lowered for k in ("pregnan", "ovary", "dysmenorrhea", "breast", "vulvovaginal", "vaginosis")):
        return "female"
    if any(k in lowered for k in ("prostat", "erectile", "androgenetic")):
        return "male"
    return "any"


def vitals(rng: random.Random, fever: bool = False, tachy: bool = False, low_bp: bool = False) -> str:
    """A sentence of vital signs with plausible random values."""
    temp = round(rng.uniform(38.2, 39.6), 1) if fever else round(rng.uniform(36.5, 37.3), 1)
    pulse = rint(rng, 102, 128) if tachy else rint(rng, 62, 96)
    resp = rint(rng, 18, 26) if tachy else rint(rng, 12, 18)
    sys = rint(rng, 82, 96) if low_bp else rint(rng, 108, 148)
    dia = rint(rng, 46, 60) if low_bp else rint(rng, 64, 92)
    forms = (
        "Temperature is {t}°C, pulse is {p}/min, respirations are {r}/min, and blood pressure is {s}/{d} mm "
        "Hg.",
        "Vital signs are: temperature {t}°C, heart rate {p}/min, respiratory rate {r}/min, blood pressure "
        "{s}/{d} mm Hg.",
        "Vital signs show a temperature of {t}°C, a pulse of {p}/min, {r} breaths per minute and a blood "
        "pressure of {s}/{d} mm Hg.",
        "On examination the temperature is {t}°C, the pulse {p} beats per minute and the blood pressure "
        "{s}/{d} mm Hg.",
        "Blood pressure is {s}/{d} mm Hg, heart rate {p}/min and temperature {t}°C.",
    )
    form = pick(rng, forms)
    return form.format(t=temp, p=pulse, r=resp, s=sys, d=dia)


def routine_labs(rng: random.Random) -> str:
    """A sentence of unremarkable laboratory values (random within normal limits)."""
    hb = round(rng.uniform(12.6, 15.4), 1)
    wbc = round(rng.uniform(4.8, 9.9), 1)
    plt = rint(rng, 170, 380)
    na = rint(rng, 136, 144)
    k = round(rng.uniform(3.6, 4.8), 1)
    cr = round(rng.uniform(0.6, 1.1), 1)
    forms = (
        "Hemoglobin is {hb} g/dL, leukocyte count {wbc} x10^9/L and platelet count {plt} x10^9/L.",
        "Serum sodium is {na} mEq/L, potassium {k} mEq/L and creatinine {cr} mg/dL.",
        "A basic metabolic panel shows sodium {na} mEq/L, potassium {k} mEq/L and creatinine {cr} mg/dL.",
        "A complete blood count shows hemoglobin {hb} g/dL and a leukocyte count of {wbc} x10^9/L.",
    )
    return pick(rng, forms).format(hb=hb, wbc=wbc, plt=plt, na=na, k=k, cr=cr)


RELATIONS = (
    ("my mother", "she", "her"),
    ("my father", "he", "his"),
    ("my husband", "he", "his"),
    ("my wife", "she", "her"),
    ("my grandmother", "she", "her"),
    ("my grandfather", "he", "his"),
    ("my sister", "she", "her"),
    ("my brother", "he", "his"),
    ("my partner", "they", "their"),
    ("my neighbour", "she", "her"),
    ("my uncle", "he", "his"),
    ("my aunt", "she", "her"),
)


def number_word(n: int) -> str:
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if 0 <= n < len(words) else str(n)
