"""Multiple-choice generators about diseases (treatment, diagnosis, key finding) and laboratory values."""

from __future__ import annotations

import functools
import random

from aloe_fixtures.corpus.facts import Disease, Lab
from aloe_fixtures.corpus.facts_clinical import DISEASES, LABS
from aloe_fixtures.corpus.items import McqaItem
from aloe_fixtures.corpus.mcqa_common import assemble, disease_opening, distractors, vignette
from aloe_fixtures.corpus.phrasing import cap, patient, pick

_FEVER_SYSTEMS = {"infectious disease"}


def _sex(disease: Disease) -> str:
    return disease.sex


@functools.cache
def _unrelated_names(name: str) -> tuple[Disease, ...]:
    disease = next(d for d in DISEASES if d.name == name)
    return tuple(
        d for d in DISEASES if d.name != name and d.name not in disease.related and name not in d.related
    )


def _unrelated(disease: Disease) -> tuple[Disease, ...]:
    """Diseases that may serve as distractors for ``disease`` (not itself, not a related condition)."""
    return _unrelated_names(disease.name)


def _presenting(rng: random.Random, disease: Disease, with_finding: bool, ask: str) -> str:
    p = patient(rng, disease.age, _sex(disease))
    middle = []
    if with_finding:
        middle.append(
            pick(
                rng,
                (
                    f"Further evaluation shows {disease.finding}.",
                    f"Workup reveals {disease.finding}.",
                    f"Testing demonstrates {disease.finding}.",
                ),
            )
        )
    fever = disease.system in _FEVER_SYSTEMS and rng.random() < 0.6
    return vignette(rng, p, middle, ask, fever=fever, first=disease_opening(rng, p, disease))


def treatment(rng: random.Random, n: int, style: str) -> McqaItem | None:
    disease = pick(rng, DISEASES)
    wrong = distractors(rng, disease.treatment, disease.wrong_treatments, n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        ask = pick(
            rng,
            (
                "Which of the following is the most appropriate first-line treatment?",
                "What is the most appropriate initial management?",
                "Which treatment should be started first?",
                "Which of the following is the best next step in treatment?",
            ),
        )
        question = _presenting(rng, disease, True, ask)
    else:
        question = pick(
            rng,
            (
                f"Which of the following is the first-line treatment for {disease.name}?",
                f"A patient is diagnosed with {disease.name}. Which of the following is the recommended "
                "initial treatment?",
                f"Which of the following is the preferred initial therapy for a patient with {disease.name}?",
                f"In a patient with {disease.name}, which of the following should be used first?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"First-line treatment of {disease.name} is {disease.treatment}; {disease.treatment_detail}.",
            f"The picture is {disease.name} ({disease.finding}). Standard initial therapy is "
            f"{disease.treatment}, "
            f"and {disease.treatment_detail}.",
            f"{cap(disease.treatment)} is recommended first for {disease.name}. "
            f"{cap(disease.treatment_detail)}.",
        ),
    )
    return assemble(
        rng,
        question,
        disease.treatment,
        wrong,
        explanation,
        "Medicine",
        cap(disease.system),
        f"treatment.{style}",
    )


def diagnosis(rng: random.Random, n: int, style: str) -> McqaItem | None:
    disease = pick(rng, DISEASES)
    others = _unrelated(disease)
    wrong = distractors(
        rng,
        disease.name,
        [d.name for d in others],
        n - 1,
        [d.name for d in others if d.system == disease.system],
    )
    if wrong is None:
        return None
    if style == "vignette":
        ask = pick(
            rng,
            (
                "What is the most likely diagnosis?",
                "Which of the following is the most likely diagnosis?",
                "Which condition best explains these findings?",
            ),
        )
        question = _presenting(rng, disease, rng.random() < 0.7, ask)
    else:
        question = pick(
            rng,
            (
                f"A patient presents with {disease.presentation}. Which of the following is the most likely "
                "diagnosis?",
                f"{cap(disease.presentation)}, with {disease.finding}, suggests which diagnosis?",
                f"Which condition classically presents with {disease.presentation}?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"{cap(disease.presentation)} is the classic presentation of {disease.name}, and "
            f"{disease.finding} "
            f"supports it.",
            f"The findings point to {disease.name}. Its key diagnostic finding is {disease.finding}, and "
            "first-line "
            f"treatment is {disease.treatment}.",
        ),
    )
    return assemble(
        rng, question, disease.name, wrong, explanation, "Medicine", cap(disease.system), f"diagnosis.{style}"
    )


def key_finding(rng: random.Random, n: int, style: str) -> McqaItem | None:
    disease = pick(rng, DISEASES)
    others = _unrelated(disease)
    wrong = distractors(
        rng,
        disease.finding,
        [d.finding for d in others],
        n - 1,
        [d.finding for d in others if d.system == disease.system],
    )
    if wrong is None:
        return None
    if style == "vignette":
        p = patient(rng, disease.age, _sex(disease))
        middle = [f"{cap(disease.name)} is suspected."]
        ask = pick(
            rng,
            (
                "Which finding would most strongly support this diagnosis?",
                "Which of the following findings is most characteristic of this condition?",
            ),
        )
        question = vignette(rng, p, middle, ask, first=disease_opening(rng, p, disease))
    else:
        question = pick(
            rng,
            (
                f"Which of the following findings is most characteristic of {disease.name}?",
                f"In a patient with suspected {disease.name}, which of the following is the key diagnostic "
                "finding?",
                f"Which of the following investigation results best supports a diagnosis of {disease.name}?",
            ),
        )
    explanation = (
        f"{cap(disease.name)} is supported by {disease.finding}. It presents with {disease.presentation}."
    )
    return assemble(
        rng,
        question,
        disease.finding,
        wrong,
        explanation,
        "Medicine",
        cap(disease.system),
        f"key_finding.{style}",
    )


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def lab_value(rng: random.Random, lab: Lab) -> tuple[str, float]:
    """A random value and its status ('low', 'high', 'normal'), clearly away from the range limits."""
    width = lab.high - lab.low
    status = pick(rng, ("low", "high", "normal"))
    if status == "low":
        value = lab.low - width * rng.uniform(0.25, 0.8)
        if value <= 0:
            value = lab.low * rng.uniform(0.4, 0.7)
    elif status == "high":
        value = lab.high + width * rng.uniform(0.25, 1.0)
    else:
        value = lab.low + width * rng.uniform(0.2, 0.8)
    return status, round(value, lab.decimals)


def with_unit(number: str, lab: Lab) -> str:
    """'138 mEq/L', '7.2%', '7.31' (no unit for pH and INR)."""
    if not lab.unit:
        return number
    return f"{number}{lab.unit}" if lab.unit == "%" else f"{number} {lab.unit}"


def _lab_sentence(lab: Lab, value: float) -> str:
    return f"{lab.short} {with_unit(_fmt(value, lab.decimals), lab)}"


def adult(lab: Lab) -> str:
    """Who the reference range is for: hemoglobin ranges in the table are for adult women."""
    return "an adult woman" if lab.short == "hemoglobin" else "an adult"


NORMAL = "a value within the reference range"


def lab_term(rng: random.Random, n: int, style: str) -> McqaItem | None:
    lab = pick(rng, LABS)
    status, value = lab_value(rng, lab)
    correct = {"low": lab.low_term, "high": lab.high_term, "normal": NORMAL}[status]
    same = [t for t in (lab.low_term, lab.high_term, NORMAL) if t != correct]
    pool = [t for other in LABS if other is not lab for t in (other.low_term, other.high_term)]
    wrong = distractors(rng, correct, pool, n - 1, same)
    if wrong is None:
        return None
    shown = _lab_sentence(lab, value)
    sex = "female" if lab.short == "hemoglobin" else "any"
    if style == "vignette":
        p = patient(rng, (20, 80), sex)
        middle = [
            pick(
                rng,
                (
                    f"Laboratory studies show {shown}.",
                    f"Blood tests reveal {shown}.",
                    f"The {lab.name} result is {with_unit(_fmt(value, lab.decimals), lab)}.",
                ),
            )
        ]
        ask = pick(
            rng,
            ("Which term best describes this laboratory result?", "How should this result be classified?"),
        )
        question = vignette(rng, p, middle, ask, complaint=pick(rng, ("tiredness", "fatigue", "low energy")))
    else:
        question = pick(
            rng,
            (
                f"In {adult(lab)}, a {lab.name} of {with_unit(_fmt(value, lab.decimals), lab)} is best "
                "described as which of the following?",
                f"A {lab.name} of {with_unit(_fmt(value, lab.decimals), lab)} in {adult(lab)} indicates "
                "which of the "
                "following?",
            ),
        )
    rng_text = _range_text(lab.low, lab.high, lab)
    explanation = (
        f"The typical reference range for {lab.name} in {adult(lab)} is {rng_text}, so "
        f"{_fmt(value, lab.decimals)} is {'within the range' if status == 'normal' else status}"
        f"{'' if status == 'normal' else ' (' + correct + ')'}."
    )
    return assemble(
        rng, question, correct, wrong, explanation, "Biochemistry", "Laboratory medicine", f"lab_term.{style}"
    )


def _range_text(low: float, high: float, lab: Lab) -> str:
    return with_unit(f"{_fmt(low, lab.decimals)}-{_fmt(high, lab.decimals)}", lab)


def lab_range(rng: random.Random, n: int, style: str) -> McqaItem | None:
    lab = pick(rng, LABS)
    width = lab.high - lab.low
    correct = _range_text(lab.low, lab.high, lab)
    # Shifted and scaled copies of the range that do not overlap it; values stay below 1000 so that no
    # range reads like a phone number ("750-1000").
    candidates = [(lab.low + s * width, lab.high + s * width) for s in (-2.4, -1.8, -1.2, 1.2, 1.8, 2.4, 3.0)]
    if lab.decimals == 0:  # scaled copies read naturally only for whole-number ranges
        candidates += [(lab.low * f, lab.high * f) for f in (0.1, 0.25, 0.4, 2.5, 3.0)]
    pool = [
        _range_text(round(lo, lab.decimals), round(hi, lab.decimals), lab)
        for lo, hi in candidates
        if lo > 0 and hi < 1000 and (hi < lab.low or lo > lab.high)
    ]
    wrong = distractors(rng, correct, pool, n - 1)
    if wrong is None:
        return None
    question = pick(
        rng,
        (
            f"Which of the following is the typical reference range for {lab.name} in {adult(lab)}?",
            f"What is the normal {lab.name} in {adult(lab)}, to the nearest usual reference values?",
            f"Which range is the usual reference interval for {lab.name} in {adult(lab)}?",
        ),
    )
    explanation = (
        f"The usual reference range for {lab.name} in {adult(lab)} is {correct}; exact limits vary slightly "
        "between "
        f"laboratories. Values below it indicate {lab.low_term} and values above it {lab.high_term}."
    )
    return assemble(
        rng,
        question,
        correct,
        wrong,
        explanation,
        "Biochemistry",
        "Laboratory medicine",
        "lab_range.short",  # one stem style whatever was asked
    )


# Labs whose opposite-direction causes are safe distractors (none of them also causes the asked abnormality).
_CAUSE_LABS = (
    "serum sodium",
    "serum potassium",
    "fasting plasma glucose",
    "total serum calcium",
    "arterial pH",
    "arterial partial pressure of carbon dioxide",
    "platelet count",
)


def lab_cause(rng: random.Random, n: int, style: str) -> McqaItem | None:
    lab = pick(rng, [lab for lab in LABS if lab.name in _CAUSE_LABS])
    status = pick(rng, ("low", "high"))
    causes, opposite = (
        (lab.low_causes, lab.high_causes) if status == "low" else (lab.high_causes, lab.low_causes)
    )
    term = lab.low_term if status == "low" else lab.high_term
    correct = pick(rng, causes)
    wrong = distractors(rng, correct, opposite, n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        _, value = lab_value(rng, lab)
        while (value < lab.low) != (status == "low") or lab.low <= value <= lab.high:
            _, value = lab_value(rng, lab)
        p = patient(rng, (25, 80))
        middle = [f"Laboratory studies show {_lab_sentence(lab, value)}."]
        ask = "Which of the following is a recognized cause of this abnormality?"
        question = vignette(rng, p, middle, ask, complaint=pick(rng, ("weakness", "fatigue", "malaise")))
    else:
        question = pick(
            rng,
            (
                f"Which of the following can cause {term} in an adult?",
                f"A recognized cause of {term} is which of the following?",
                f"{cap(term)} may result from which of the following?",
            ),
        )
    explanation = (
        f"{cap(term)} can be caused by {', '.join(causes)}. The other options are associated with the "
        "opposite "
        f"change in {lab.short}."
    )
    return assemble(
        rng,
        question,
        correct,
        wrong,
        explanation,
        "Biochemistry",
        "Laboratory medicine",
        f"lab_cause.{style}",
    )


GENERATORS = (treatment, diagnosis, key_finding, lab_term, lab_range, lab_cause)
