"""Multiple-choice generators about drugs: class, mechanism, drug for a mechanism, adverse effects.

Each generator takes ``(rng, n_options, style)`` with style "vignette" (USMLE-like stem) or "short"
(MedMCQA-like one-liner) and returns an item, or None when the sampled fact has too few valid distractors.
"""

from __future__ import annotations

import functools
import random

from aloe_fixtures.corpus.facts import Drug
from aloe_fixtures.corpus.facts_drugs import BY_NAME, DRUGS, lists_effect, similar
from aloe_fixtures.corpus.items import McqaItem
from aloe_fixtures.corpus.mcqa_common import assemble, distractors, vignette
from aloe_fixtures.corpus.phrasing import article, cap, join_list, patient, pick, rint, sex_for

SUBJECT = "Pharmacology"


_NO_VIGNETTE = {
    "Reye syndrome",
    "tooth discoloration in children",
    "neural tube defects",
    "maculopapular rash in infectious mononucleosis",
}


def _topic(drug: Drug) -> str:
    return f"{cap(drug.group)} drugs"


@functools.cache
def _pools(name: str, field: str, effect: str = "") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(all, same-group) values of ``field`` over drugs that may be distractors for drug ``name``: not
    the same or a similar drug and, when ``effect`` is given, not listing that effect."""
    drug = BY_NAME[name]
    others = [d for d in DRUGS if not similar(d.name, name) and not (effect and lists_effect(d, effect))]
    return (
        tuple(getattr(d, field) for d in others),
        tuple(getattr(d, field) for d in others if d.group == drug.group),
    )


def _prescribed_stem(rng: random.Random, drug: Drug, ask: str, name_drug: bool = True) -> str:
    use = pick(rng, drug.uses)
    p = patient(rng, (25, 80), sex_for(use))
    given = drug.name if name_drug else "a new medication"
    middle = [
        pick(
            rng,
            (
                f"The physician prescribes {given} for {use}.",
                f"{cap(p.he)} is started on {given} for {use}.",
                f"After discussing the options, {given} is chosen to treat {use}.",
                f"The team decides to begin {given} for {use}.",
            ),
        )
    ]
    return vignette(rng, p, middle, ask)


def drug_class(rng: random.Random, n: int, style: str) -> McqaItem | None:
    drug = pick(rng, DRUGS)
    pool, prefer = _pools(drug.name, "cls")
    wrong = distractors(rng, drug.cls, pool, n - 1, prefer)
    if wrong is None:
        return None
    if style == "vignette":
        ask = pick(
            rng,
            (
                "To which pharmacological class does this medication belong?",
                "Which of the following best describes the class of the prescribed drug?",
                "The prescribed agent is a member of which drug class?",
                "Which drug class does this medication belong to?",
            ),
        )
        question = _prescribed_stem(rng, drug, ask)
    else:
        use = pick(rng, drug.uses)
        question = pick(
            rng,
            (
                f"{cap(drug.name)} belongs to which of the following classes of drugs?",
                f"Which of the following best describes the drug class of {drug.name}?",
                f"A patient with {use} is prescribed {drug.name}. Which class of drugs does this medicine "
                "belong to?",
                f"{cap(drug.name)} is used for {use}. It is best classified as which of the following?",
                f"Which group of medicines does {drug.name} belong to, given that it is used for {use}?",
                f"The pharmacological class of {drug.name}, a drug used for {use}, is which of the "
                "following?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"{cap(drug.name)} is {article(drug.cls)} {drug.cls}; it {drug.mechanism}.",
            f"{cap(drug.name)} belongs to the {drug.cls} class. It {drug.mechanism}, which is why it is "
            "used for "
            f"{pick(rng, drug.uses)}.",
            f"As {article(drug.cls)} {drug.cls}, {drug.name} {drug.mechanism}. Clinically, {drug.note}.",
        ),
    )
    return assemble(rng, question, drug.cls, wrong, explanation, SUBJECT, _topic(drug), f"drug_class.{style}")


def drug_mechanism(rng: random.Random, n: int, style: str) -> McqaItem | None:
    drug = pick(rng, DRUGS)
    pool, prefer = _pools(drug.name, "mechanism")
    wrong = distractors(rng, drug.mechanism, pool, n - 1, prefer)
    if wrong is None:
        return None
    if style == "vignette":
        ask = pick(
            rng,
            (
                "Which of the following best describes the mechanism of action of this drug?",
                "How does this medication produce its therapeutic effect?",
                "The prescribed drug acts primarily by which mechanism?",
            ),
        )
        question = _prescribed_stem(rng, drug, ask)
    else:
        use = pick(rng, drug.uses)
        question = pick(
            rng,
            (
                f"Which of the following is the mechanism of action of {drug.name}?",
                f"By which mechanism does {drug.name} act when it is used for {use}?",
                f"The therapeutic effect of {drug.name} in {use} results from which of the following "
                "actions?",
                f"Which statement correctly describes how {drug.name} works in the body?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"{cap(drug.name)} ({drug.cls}) {drug.mechanism}.",
            f"The correct answer describes {drug.name}: it {drug.mechanism}. This explains its use in "
            f"{pick(rng, drug.uses)}.",
            f"{cap(drug.name)} {drug.mechanism}. The other options describe drugs from different classes.",
        ),
    )
    return assemble(
        rng, question, drug.mechanism, wrong, explanation, SUBJECT, _topic(drug), f"drug_mechanism.{style}"
    )


def drug_for_mechanism(rng: random.Random, n: int, style: str) -> McqaItem | None:
    drug = pick(rng, DRUGS)
    pool, prefer = _pools(drug.name, "name")
    wrong = distractors(rng, drug.name, pool, n - 1, prefer)
    if wrong is None:
        return None
    if style == "vignette":
        use = pick(rng, drug.uses)
        p = patient(rng, (25, 80), sex_for(use))
        middle = [f"For {use}, {p.he} is started on a drug that {drug.mechanism}."]
        ask = pick(
            rng,
            (
                "Which of the following drugs was most likely prescribed?",
                "Which medication fits this description?",
                "Which of the following agents was started?",
            ),
        )
        question = vignette(rng, p, middle, ask)
    else:
        question = pick(
            rng,
            (
                f"Which of the following drugs {drug.mechanism}?",
                f"A drug that {drug.mechanism} is which of the following?",
                f"Which of these agents {drug.mechanism}?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"{cap(drug.name)} is {article(drug.cls)} {drug.cls} that {drug.mechanism}.",
            f"The description fits {drug.name}, {article(drug.cls)} {drug.cls}; {drug.note}.",
        ),
    )
    return assemble(
        rng, question, drug.name, wrong, explanation, SUBJECT, _topic(drug), f"drug_for_mechanism.{style}"
    )


def effect_to_drug(rng: random.Random, n: int, style: str) -> McqaItem | None:
    drug = pick(rng, [d for d in DRUGS if d.signature])
    effect = drug.signature or ""
    pool, prefer = _pools(drug.name, "name", effect)
    wrong = distractors(rng, drug.name, pool, n - 1, prefer)
    if wrong is None:
        return None
    use = pick(rng, drug.uses)
    if style == "vignette" and effect in _NO_VIGNETTE:
        style = "short"  # effects of children or pregnancy do not fit the adult vignette
    if style == "vignette":
        p = patient(rng, (25, 80), "male" if effect == "gynecomastia" else sex_for(use))
        weeks = rint(rng, 2, 16)
        middle = [f"{cap(p.he)} started a new medication for {use} {weeks} weeks ago and now has {effect}."]
        ask = pick(
            rng,
            (
                "Which of the following drugs is most likely responsible?",
                "Which medication was most likely started?",
                "This adverse effect is most characteristic of which drug?",
            ),
        )
        question = vignette(rng, p, middle, ask)
    else:
        question = pick(
            rng,
            (
                f"{cap(effect)} is a classic adverse effect of which of the following drugs?",
                f"Which of the following drugs is most characteristically associated with {effect}?",
                f"A patient treated for {use} develops {effect}. Which of the following drugs is the most "
                "likely culprit?",
                f"Which one of these drugs is best known for causing {effect} as a side effect?",
            ),
        )
    others = [a for a in drug.adverse if a != effect][:3]
    explanation = pick(
        rng,
        (
            f"{cap(effect)} is a characteristic adverse effect of {drug.name} ({drug.cls}).",
            f"{cap(drug.name)} is classically linked to {effect}; {drug.note}.",
            f"Among the options, only {drug.name} is typically associated with {effect}."
            + (f" Other effects of {drug.name} include {join_list(others)}." if others else ""),
        ),
    )
    return assemble(
        rng, question, drug.name, wrong, explanation, SUBJECT, _topic(drug), f"effect_to_drug.{style}"
    )


@functools.cache
def _foreign_signatures(name: str) -> tuple[str, ...]:
    """Signature effects of drugs from other groups that drug ``name`` does not list (safe distractors)."""
    drug = BY_NAME[name]
    return tuple(
        d.signature
        for d in DRUGS
        if d.signature
        and d.group != drug.group
        and not similar(d.name, name)
        and not lists_effect(drug, d.signature)
    )


def drug_to_effect(rng: random.Random, n: int, style: str) -> McqaItem | None:
    drug = pick(rng, DRUGS)
    effect = drug.signature or drug.adverse[0]
    pool = _foreign_signatures(drug.name)
    wrong = distractors(rng, effect, pool, n - 1)
    if wrong is None:
        return None
    use = pick(rng, drug.uses)
    if style == "vignette":
        ask = pick(
            rng,
            (
                "Which adverse effect is most characteristic of this drug?",
                "The patient should be counselled about which characteristic adverse effect?",
                "Which of the following is a classic adverse effect of the prescribed medication?",
            ),
        )
        question = _prescribed_stem(rng, drug, ask)
    else:
        question = pick(
            rng,
            (
                f"Which of the following adverse effects is most characteristic of {drug.name}?",
                f"A classic adverse effect of {drug.name} is which of the following?",
                f"A patient starting {drug.name} for {use} should be warned about which of the following "
                "adverse effects?",
                f"Which of the following is a well-known side effect of {drug.name}?",
            ),
        )
    explanation = pick(
        rng,
        (
            f"{cap(drug.name)} classically causes {effect}. It {drug.mechanism}.",
            f"{cap(effect)} is a recognized adverse effect of {drug.name}; {drug.note}.",
            f"The characteristic adverse effect of {drug.name} is {effect}. The other options belong to "
            "drugs "
            f"from other classes.",
        ),
    )
    return assemble(
        rng, question, effect, wrong, explanation, SUBJECT, _topic(drug), f"drug_to_effect.{style}"
    )


GENERATORS = (drug_class, drug_mechanism, drug_for_mechanism, effect_to_drug, drug_to_effect)
