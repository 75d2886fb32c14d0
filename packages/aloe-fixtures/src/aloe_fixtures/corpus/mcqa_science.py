"""Multiple-choice generators about anatomy (nerves, arteries, cranial nerves), microbiology, physiology."""

from __future__ import annotations

import random

from aloe_fixtures.corpus.facts import CranialNerve
from aloe_fixtures.corpus.facts_science import ARTERIES, CRANIAL_NERVES, HORMONES, NERVES, ORGANISMS
from aloe_fixtures.corpus.items import McqaItem
from aloe_fixtures.corpus.mcqa_common import assemble, distractors, vignette
from aloe_fixtures.corpus.phrasing import cap, patient, pick


def nerve_lesion(rng: random.Random, n: int, style: str) -> McqaItem | None:
    nerve = pick(rng, NERVES)
    wrong = distractors(rng, nerve.name, [x.name for x in NERVES if x is not nerve], n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        p = patient(rng, (18, 80))
        middle = [f"{cap(p.he)} recently had {nerve.cause}.", f"Examination shows {nerve.lesion}."]
        ask = pick(
            rng, ("Which nerve is most likely injured?", "Damage to which nerve best explains the deficit?")
        )
        question = vignette(rng, p, middle, ask)
    else:
        question = pick(
            rng,
            (
                f"In a patient with {nerve.lesion}, which of the following nerves is most likely injured?",
                f"After {nerve.cause}, a patient has {nerve.lesion}. Which of the following nerves was "
                "injured?",
                f"Injury to which of the following nerves would cause {nerve.lesion}?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"The {nerve.name} ({nerve.roots}) supplies {nerve.supplies}; injury causes {nerve.lesion}.",
            f"{cap(nerve.lesion)} points to the {nerve.name}, classically injured by {nerve.cause}.",
        ),
    )
    return assemble(
        rng, question, nerve.name, wrong, explanation, "Anatomy", "Peripheral nerves", f"nerve_lesion.{style}"
    )


def nerve_muscle(rng: random.Random, n: int, style: str) -> McqaItem | None:
    nerve = pick(rng, NERVES)
    wrong = distractors(rng, nerve.key_muscle, [x.key_muscle for x in NERVES if x is not nerve], n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        p = patient(rng, (18, 80))
        middle = [f"{cap(p.he)} is scheduled for a procedure with a risk of injury to the {nerve.name}."]
        ask = "Weakness of which muscle would indicate injury to this nerve?"
        question = vignette(rng, p, middle, ask)
    else:
        question = pick(
            rng,
            (
                f"Which of the following muscles is supplied by the {nerve.name}?",
                f"The {nerve.name} innervates which of the following muscles?",
                f"Injury to the {nerve.name} would most directly weaken which of the following muscles?",
            ),
        )
    explanation = f"The {nerve.name} supplies {nerve.supplies}, including the {nerve.key_muscle}."
    return assemble(
        rng,
        question,
        nerve.key_muscle,
        wrong,
        explanation,
        "Anatomy",
        "Peripheral nerves",
        f"nerve_muscle.{style}",
    )


def artery_occlusion(rng: random.Random, n: int, style: str) -> McqaItem | None:
    artery = pick(rng, ARTERIES)
    wrong = distractors(rng, artery.name, [a.name for a in ARTERIES if a is not artery], n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        p = patient(rng, (45, 85))
        middle = [f"Evaluation shows {artery.occlusion}."]
        ask = pick(
            rng,
            (
                "Which artery is most likely involved?",
                "Occlusion or injury of which vessel best explains these findings?",
            ),
        )
        question = vignette(rng, p, middle, ask)
    else:
        question = pick(
            rng,
            (
                f"A patient has {artery.occlusion}. Which of the following arteries is most likely involved?",
                f"Which of the following arteries is the main blood supply of {artery.territory}?",
                f"The territory of which of the following arteries includes {artery.territory}?",
            ),
        )
    explanation = f"The {artery.name} supplies {artery.territory}; its involvement causes {artery.occlusion}."
    return assemble(
        rng, question, artery.name, wrong, explanation, "Anatomy", "Blood supply", f"artery_occlusion.{style}"
    )


def _cn_label(cn: CranialNerve) -> str:
    return f"{cn.name} (cranial nerve {cn.number})"


def cranial_nerve(rng: random.Random, n: int, style: str) -> McqaItem | None:
    cn = pick(rng, CRANIAL_NERVES)
    wrong = distractors(rng, _cn_label(cn), [_cn_label(c) for c in CRANIAL_NERVES if c is not cn], n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        p = patient(rng, (20, 80))
        middle = [f"Neurological examination shows {cn.lesion}."]
        ask = "Which cranial nerve is most likely affected?"
        question = vignette(
            rng, p, middle, ask, complaint=pick(rng, (None, "double vision", "new neurological symptoms"))
        )
    else:
        question = pick(
            rng,
            (
                f"Which of the following cranial nerves {cn.function}?",
                f"A patient is found to have {cn.lesion}. Which of the following cranial nerves is affected?",
                f"The nerve that {cn.function} is which of the following?",
            ),
        )
    explanation = f"The {cn.name} (cranial nerve {cn.number}) {cn.function}; a lesion causes {cn.lesion}."
    return assemble(
        rng,
        question,
        _cn_label(cn),
        wrong,
        explanation,
        "Anatomy",
        "Cranial nerves",
        f"cranial_nerve.{style}",
    )


def organism(rng: random.Random, n: int, style: str) -> McqaItem | None:
    org = pick(rng, ORGANISMS)
    wrong = distractors(rng, org.name, [o.name for o in ORGANISMS if o is not org], n - 1)
    if wrong is None:
        return None
    if style == "vignette":
        p = patient(rng, (18, 80))
        middle = [
            f"Clinical evaluation is consistent with {org.disease}.",
            f"Laboratory testing shows {org.morphology}, and {org.feature}.",
        ]
        ask = pick(
            rng, ("Which organism is most likely responsible?", "What is the most likely causative organism?")
        )
        question = vignette(rng, p, middle, ask, fever=True)
    else:
        question = pick(
            rng,
            (
                f"Which of the following organisms appears as {org.morphology} and causes {org.disease}?",
                f"A patient with {org.disease} has {org.morphology} in a sample. Which organism is this "
                "most likely?",
                f"A patient has {org.disease}; testing shows {org.morphology}, and {org.feature}. The "
                "organism is most likely which of the following?",
            ),
        )
    explanation = (
        f"{org.name} appears as {org.morphology}; {org.feature}. It causes {org.disease} and is treated "
        f"with {org.treatment}."
    )
    return assemble(
        rng,
        question,
        org.name,
        wrong,
        explanation,
        "Microbiology",
        "Bacteriology and mycology",
        f"organism.{style}",
    )


def organism_morphology(rng: random.Random, n: int, style: str) -> McqaItem | None:
    org = pick(rng, ORGANISMS)
    wrong = distractors(rng, org.morphology, [o.morphology for o in ORGANISMS if o is not org], n - 1)
    if wrong is None:
        return None
    question = pick(
        rng,
        (
            f"Which of the following describes how {org.name} appears on laboratory examination?",
            f"Which of the following descriptions fits the organism {org.name}?",
            f"The causative organism of {org.disease}, {org.name}, is best described as which of the "
            "following?",
        ),
    )
    explanation = f"{org.name} is seen as {org.morphology}; {org.feature}."
    return assemble(
        rng,
        question,
        org.morphology,
        wrong,
        explanation,
        "Microbiology",
        "Bacteriology and mycology",
        "organism_morphology.short",  # one stem style whatever was asked
    )


def hormone(rng: random.Random, n: int, style: str) -> McqaItem | None:
    h = pick(rng, HORMONES)
    field = pick(rng, ("source", "action", "regulation"))
    correct = getattr(h, field)
    wrong = distractors(rng, correct, [getattr(x, field) for x in HORMONES if x is not h], n - 1)
    if wrong is None:
        return None
    question = {
        "source": pick(
            rng,
            (
                f"{cap(h.name)} is produced by which of the following cells?",
                f"Which of the following cells secrete {h.name} in the human body?",
                f"What is the main source of {h.name} in the body?",
            ),
        ),
        "action": pick(
            rng,
            (
                f"What is the main action of {h.name} in the body?",
                f"Which of the following statements describes the principal effect of {h.name}?",
            ),
        ),
        "regulation": pick(
            rng,
            (
                f"Release of {h.name} is mainly stimulated by which of the following?",
                f"What is the main stimulus for the secretion of {h.name}?",
            ),
        ),
    }[field]
    explanation = (
        f"{cap(h.name)} comes from {h.source}; it {h.action}. Its release responds to {h.regulation}."
    )
    return assemble(
        rng,
        question,
        correct,
        wrong,
        explanation,
        "Physiology",
        "Endocrine physiology",
        f"hormone_{field}.short",  # one stem style whatever was asked
    )


GENERATORS = (
    nerve_lesion,
    nerve_muscle,
    artery_occlusion,
    cranial_nerve,
    organism,
    organism_morphology,
    hormone,
)
